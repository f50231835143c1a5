package desired

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic; an
// error must be a non-empty Errors whose entries all have a message; and a
// state it accepts must render to YAML that loads back to an equal state.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "../examples/cluster.yaml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(twoVMs + minimalCluster))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure too: the worker dies and the fuzzer keeps
		// the input. The limit is generous for inputs of a few kilobytes
		// on a loaded machine.
		wd := time.AfterFunc(20*time.Second, func() { panic("Parse took more than 20s") })
		defer wd.Stop()
		st, err := Parse(map[string][]byte{"fuzz.yaml": data})
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is %T %v, want a non-empty Errors", err, err)
			}
			for _, e := range errs {
				if e.Message == "" || e.File != "fuzz.yaml" {
					t.Fatalf("malformed error %+v", e)
				}
			}
			if st != nil {
				t.Fatalf("Parse returned a state with an error")
			}
			return
		}
		var out bytes.Buffer
		if err := Render(&out, st); err != nil {
			t.Fatalf("Render: %v", err)
		}
		back, err := Parse(map[string][]byte{"rendered.yaml": out.Bytes()})
		if err != nil {
			t.Fatalf("rendered state does not load: %v\n%s", err, out.String())
		}
		if diff := cmp.Diff(st, back); diff != "" {
			t.Fatalf("round trip changed the state (-before +after):\n%s", diff)
		}
	})
}
