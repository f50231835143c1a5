package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestDirFetchReadsLikeLoad(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"a.yaml": "a: 1\n", "b.yml": "b: 2\n", ".h.yaml": "h\n", "n.txt": "n\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 2 || s.Commit != "" || len(s.Revision) != len("sha256:")+64 {
		t.Fatalf("snapshot %+v", s)
	}
	again, _ := d.Fetch(context.Background())
	if again.Revision != s.Revision {
		t.Error("same content, different revision")
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, _ := d.Fetch(context.Background())
	if changed.Revision == s.Revision {
		t.Error("changed content, same revision")
	}
	gone, _ := NewDir(filepath.Join(dir, "missing"))
	var fe *FetchError
	if _, err := gone.Fetch(context.Background()); !errors.As(err, &fe) {
		t.Errorf("missing path: %v, want *FetchError", err)
	}
}

// TestDirWatchDebounces saves a file the way editors do (write a temp file,
// rename it over the original, chmod) several times in a burst: one change.
func TestDirWatchDebounces(t *testing.T) {
	tests := []struct {
		name   string
		single bool // watch one file rather than the directory
	}{
		{"directory", false},
		{"single_file", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "desired.yaml")
			if err := os.WriteFile(target, []byte("v: 0\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			path := dir
			if tc.single {
				path = target
			}
			d, _ := NewDir(path)
			ctx, cancel := context.WithCancel(context.Background())
			var n atomic.Int32
			changes := make(chan struct{}, 10)
			done := make(chan error, 1)
			go func() {
				done <- d.Watch(ctx, 200*time.Millisecond, func() { n.Add(1); changes <- struct{}{} })
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("watch: %v", err)
				}
			}()
			// fsnotify has no "ready" signal: write until the first change lands.
			save := func(i int) {
				tmp := filepath.Join(dir, ".desired.yaml.swp")
				if err := os.WriteFile(tmp, []byte{byte('0' + i)}, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, target); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(target, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.After(5 * time.Second)
		ready:
			for {
				save(0)
				select {
				case <-changes:
					break ready
				case <-time.After(300 * time.Millisecond):
				case <-deadline:
					t.Fatal("no change reported")
				}
			}
			n.Store(0)
			for i := 1; i <= 5; i++ {
				save(i)
				time.Sleep(20 * time.Millisecond) // a burst, well inside the debounce
			}
			select {
			case <-changes:
			case <-time.After(3 * time.Second):
				t.Fatal("burst not reported")
			}
			// Another unrelated file does not count.
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			select {
			case <-changes:
				t.Errorf("%d changes for one burst and an unrelated file, want 1", n.Load())
			case <-time.After(600 * time.Millisecond):
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d changes, want 1", got)
			}
		})
	}
}
