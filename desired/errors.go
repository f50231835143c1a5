package desired

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in the desired state, at a place in a file.
//
// Line and Col are 1-based. A problem that belongs to a whole file or
// directory rather than to a place in it (a directory without YAML files, a
// file too large to read) has Line 0 and prints as "FILE: message".
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

// Error prints the problem as FILE:LINE:COL: message, the form editors and
// CI annotations understand.
func (e *Error) Error() string {
	if e.Line <= 0 && e.File == "" {
		return e.Message
	}
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message)
}

// Errors is every problem found in a desired state. Load and Parse return it
// (and only it) when the desired state is invalid, so a caller can tell an
// invalid commit (wait for the next one) from an I/O failure (retry) with
// errors.As.
type Errors []*Error

// Error prints one problem per line, sorted by file, line and column.
func (es Errors) Error() string {
	sorted := slices.Clone(es)
	sortErrors(sorted)
	var b strings.Builder
	for i, e := range sorted {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap gives errors.As and errors.Is access to each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders problems by file, line and column, keeping the order in
// which they were found for problems at the same place.
func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
		)
	})
}
