package observe

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVolumeSize(t *testing.T) {
	r := &fakeRunner{out: map[string][]byte{"vm1": []byte("74310785\t/v\n")}, err: map[string]error{"vm2": errors.New("ssh: connection refused")}}
	n, err := VolumeSize(t.Context(), r, "vm1", "main-node4-data", "pgaf/postgres:15-2.0")
	if err != nil || n != 74310785 {
		t.Fatalf("got %d, %v; want 74310785", n, err)
	}
	if d := cmp.Diff(VolumeSizeCommand("main-node4-data", "pgaf/postgres:15-2.0"), r.calls[0].Argv); d != "" {
		t.Errorf("argv (-want +got):\n%s", d)
	}
	if n, err := VolumeSize(t.Context(), r, "vm2", "v", "img"); err == nil || n != -1 {
		t.Errorf("unreachable VM: got %d, %v; want -1 and an error", n, err)
	}
	r.out["vm3"] = []byte("du: cannot access\n")
	if _, err := VolumeSize(t.Context(), r, "vm3", "v", "img"); err == nil {
		t.Error("garbage output accepted")
	}
}

// fakeRunner answers each VM with canned output or an error, and records
// every argv it was given.
type fakeRunner struct {
	out   map[string][]byte
	err   map[string]error
	calls []fakeCall
}

type fakeCall struct {
	VM   string
	Argv []string
}

func (f *fakeRunner) Run(_ context.Context, vm string, argv []string) ([]byte, error) {
	f.calls = append(f.calls, fakeCall{vm, argv})
	return f.out[vm], f.err[vm]
}
