package report

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
)

// sizeRunner answers the du of observe.VolumeSizeCommand per volume.
type sizeRunner struct {
	mu    sync.Mutex
	calls []string
}

func (s *sizeRunner) Run(_ context.Context, vm string, argv []string) ([]byte, error) {
	s.mu.Lock()
	s.calls = append(s.calls, vm+" "+strings.Join(argv, " "))
	s.mu.Unlock()
	for _, a := range argv {
		switch a {
		case "main-node4-data:/v:ro":
			return []byte("74310785\t/v\n"), nil
		case "main-node5-data:/v:ro":
			return nil, errors.New("ssh: connection refused")
		}
	}
	return nil, errors.New("unexpected command")
}

func TestStatusMeasuresOrphanedVolumes(t *testing.T) {
	rep := Report{Clusters: []Cluster{{Name: "main", Orphans: []Orphan{
		{VM: "vm4", Volume: "main-node4-data", Node: "node4", SizeBytes: -1, image: "pgaf/postgres:15-2.0"},
		{VM: "vm2", Volume: "main-node5-data", Node: "node5", SizeBytes: -1, image: "pgaf/postgres:15-2.0"},
	}}}}
	r := &sizeRunner{}
	MeasureOrphans(t.Context(), r, &rep, time.Second)
	if len(r.calls) != 2 {
		t.Fatalf("%d measures, want 2: %v", len(r.calls), r.calls)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"orphaned volume main-node4-data on vm4 (node node4, 74310785 bytes, 70.9 MiB)",
		"orphaned volume main-node5-data on vm2 (node node5, size unknown: measure volume main-node5-data on vm2: ssh: connection refused)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	var _ observe.Runner = r
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 74310785: "70.9 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
