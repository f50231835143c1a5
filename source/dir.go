package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/pgaf-gitops/reconciler/desired"
)

// DefaultDebounce is how long a watched directory must stay quiet before a
// change is reported: an editor's save (write, rename, chmod) is one change.
const DefaultDebounce = 300 * time.Millisecond

// Dir is a desired-state source on the local filesystem: a YAML file, or a
// directory whose *.yaml and *.yml files form the desired state (as
// desired.Load reads it). Commit is always "": the revision is a hash of
// the contents.
type Dir struct {
	Path string
}

// NewDir returns the source for path (made absolute).
func NewDir(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &ConfigError{Field: "path", Err: err}
	}
	return &Dir{Path: abs}, nil
}

// String is the path.
func (d *Dir) String() string { return d.Path }

// Fetch reads the files. A missing path or an unreadable file is a
// *FetchError (transient: another tool may be rewriting the checkout).
func (d *Dir) Fetch(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, err := d.read()
	if err != nil {
		return nil, &FetchError{Source: d.Path, Op: "read", Err: err}
	}
	if len(files) == 0 {
		return nil, &PathError{Path: d.Path, Msg: "no .yaml or .yml files in this directory"}
	}
	return &Snapshot{Revision: digest(files), Files: files}, nil
}

func (d *Dir) read() (map[string][]byte, error) {
	fi, err := os.Stat(d.Path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		b, err := readLimited(d.Path)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{d.Path: b}, nil
	}
	entries, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !d.wanted(e.Name()) || e.IsDir() {
			continue
		}
		full := filepath.Join(d.Path, e.Name())
		b, err := readLimited(full)
		if err != nil {
			return nil, err
		}
		files[full] = b
	}
	return files, nil
}

// wanted reports whether a name in the directory is part of the state.
func (d *Dir) wanted(name string) bool {
	return !strings.HasPrefix(name, ".") && desired.IsYAMLName(name)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, desired.MaxFileSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// digest is "sha256:" and the hash of the sorted names and contents.
func digest(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Watch calls changed once after each burst of filesystem events on the
// desired-state files, when debounce has passed without a new event. It
// watches the directory (for a single file, its parent, filtered by name),
// so files replaced by rename, as editors save them, are seen. It returns
// when ctx is done, or with an error if the watch cannot be set up.
func (d *Dir) Watch(ctx context.Context, debounce time.Duration, changed func()) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", d.Path, err)
	}
	defer w.Close()
	dir, only := d.Path, ""
	if fi, err := os.Stat(d.Path); err == nil && !fi.IsDir() {
		dir, only = filepath.Dir(d.Path), filepath.Base(d.Path)
	}
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch: event channel closed")
			}
			name := filepath.Base(ev.Name)
			if only != "" && name != only {
				continue
			}
			if only == "" && !d.wanted(name) {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch: error channel closed")
			}
			// Overflow and the like: report a change, the fetch rereads all.
			_ = err
			timer.Reset(debounce)
		case <-timer.C:
			changed()
		}
	}
}
