package desired

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Parse reads a desired state from in-memory files, keyed by the name to
// print in messages (a path, or a path inside a git commit). The files are
// read in sorted name order and together form one desired state: their vms
// and clusters lists are concatenated, and a top-level key may appear in
// several files.
//
// An empty file, or one holding only comments or an empty document,
// contributes nothing; a file holding more than one YAML document is an
// error. Aliases (*name) and merge keys (<<) are refused.
//
// The returned State has its defaults applied (ApplyDefaults) and is valid.
// If anything is wrong, Parse returns a nil State and an Errors value
// listing every problem found.
func Parse(files map[string][]byte) (*State, error) {
	if len(files) == 0 {
		return nil, Errors{{Message: "no desired-state files"}}
	}
	l := newLoader()
	for _, name := range sortedKeys(files) {
		l.parseFile(name, files[name])
	}
	ApplyDefaults(&l.st)
	l.validate()
	if len(l.errs) > 0 {
		sortErrors(l.errs)
		return nil, l.errs
	}
	st := l.st
	return &st, nil
}

// Load reads the desired state from path: a YAML file, or a directory whose
// *.yaml and *.yml files (not those in subdirectories, nor hidden ones
// starting with '.') form one desired state, as Parse describes.
//
// A desired state that is invalid gives an Errors value; a file that cannot
// be read gives the I/O error, wrapped.
func Load(path string) (*State, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("desired: %w", err)
	}
	if !fi.IsDir() {
		b, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("desired: %w", err)
		}
		return Parse(map[string][]byte{path: b})
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("desired: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !IsYAMLName(name) {
			continue
		}
		full := filepath.Join(path, name)
		b, err := readFile(full)
		if err != nil {
			return nil, fmt.Errorf("desired: %w", err)
		}
		files[full] = b
	}
	if len(files) == 0 {
		return nil, Errors{{File: path, Message: "no .yaml or .yml files in this directory"}}
	}
	return Parse(files)
}

// readFile reads at most one byte more than MaxFileSize, enough for Parse
// to refuse a file that is too large without reading all of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// IsYAMLName reports whether a file name is one Load reads from a
// directory. Sources that list files themselves (a git tree) use it too.
func IsYAMLName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains([]string{".yaml", ".yml"}, ext)
}
