package desired

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest desired-state file accepted. A fleet of a
// thousand clusters fits in well under a megabyte.
const MaxFileSize = 4 << 20

// pos is a place in a file.
type pos struct {
	File      string
	Line, Col int
}

// loader decodes YAML nodes into a State, remembering where every value came
// from so that validation can point at it.
type loader struct {
	st   State
	errs Errors
	// pos maps a path ("clusters/0/nodes/1/port") to where its value is.
	// Paths index the concatenated lists, so they are unique across files.
	pos map[string]pos
	// bad holds paths whose value could not be decoded; validation skips
	// them rather than reporting a second, derived problem.
	bad map[string]bool
	// incomplete is set when a file could not be parsed at all: references
	// into it (a VM it may define) cannot be checked.
	incomplete bool
	file       string
	firstFile  string
}

// isBad reports whether path or one of its parents failed to decode.
func (l *loader) isBad(path string) bool {
	for {
		if l.bad[path] {
			return true
		}
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}

func newLoader() *loader {
	return &loader{pos: map[string]pos{}, bad: map[string]bool{}}
}

func (l *loader) errorf(p pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: p.File, Line: p.Line, Col: p.Col, Message: fmt.Sprintf(format, args...)})
}

func (l *loader) at(n *yaml.Node) pos { return pos{File: l.file, Line: n.Line, Col: n.Column} }

// record notes where the value of path is.
func (l *loader) record(path string, n *yaml.Node) { l.pos[path] = l.at(n) }

// posOf is where path's value is, or else where its nearest recorded parent
// is (a defaulted field has no place of its own).
func (l *loader) posOf(path string) pos {
	for {
		if p, ok := l.pos[path]; ok {
			return p
		}
		i := strings.LastIndexByte(path, '/')
		if i < 0 {
			return pos{File: l.firstFile}
		}
		path = path[:i]
	}
}

var (
	intLikeRE = regexp.MustCompile(`^[-+]?[0-9]+$`)
	decimalRE = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)
)

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile decodes one file into l.st. An empty file (or one holding only
// comments, or an empty document) contributes nothing.
func (l *loader) parseFile(name string, data []byte) {
	l.file = name
	if l.firstFile == "" {
		l.firstFile = name
	}
	if len(data) > MaxFileSize {
		l.errorf(pos{File: name}, "file is larger than the limit of %d bytes", MaxFileSize)
		l.incomplete = true
		return
	}
	defer func() {
		// The YAML parser is not ours; whatever it does, Load must not panic.
		if r := recover(); r != nil {
			l.errorf(pos{File: name, Line: 1, Col: 1}, "invalid YAML: parser failed: %v", r)
			l.incomplete = true
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for docs := 0; ; docs++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			l.syntaxError(err)
			return
		}
		if docs > 0 {
			p := l.at(&doc)
			if len(doc.Content) > 0 {
				p = l.at(doc.Content[0])
			}
			l.errorf(p, "a second YAML document in one file: put each document in its own file")
			return
		}
		if len(doc.Content) > 0 {
			l.root(doc.Content[0])
		}
	}
}

// parserProblems are the problems yaml's parser (not its scanner) reports.
// For these the library prints a 0-based line (and none for line 0), and
// the line is often where the enclosing collection starts rather than where
// the problem is.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func (l *loader) syntaxError(err error) {
	l.incomplete = true
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			line = n
		}
		msg = m[2]
	}
	if parserProblems[msg] {
		// The library omits "line N" when the 0-based line is 0.
		l.errorf(pos{File: l.file, Line: line + 1, Col: 1}, "invalid YAML: %s (on this line or after it)", msg)
		return
	}
	l.errorf(pos{File: l.file, Line: max(line, 1), Col: 1}, "invalid YAML: %s", msg)
}

// field is one allowed key of a mapping and what to do with its value.
type field struct {
	key string
	fn  func(v *yaml.Node)
}

// mapping walks a mapping node, reporting unknown and duplicate keys and
// handing each known key's value to its field. A null value is an empty
// mapping. It reports whether n was a mapping (or null).
func (l *loader) mapping(n *yaml.Node, what string, fields []field) bool {
	if !l.usable(n, what) {
		return false
	}
	if isNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(l.at(n), "%s: expected a mapping, got %s", what, describe(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, ok := l.key(k, what)
		if !ok {
			continue
		}
		if first, dup := seen[key]; dup {
			l.errorf(l.at(k), "duplicate key %q in %s (first at line %d)", key, what, first.Line)
			continue
		}
		seen[key] = k
		var f *field
		for j := range fields {
			if fields[j].key == key {
				f = &fields[j]
				break
			}
		}
		if f == nil {
			l.unknownKey(k, key, what, fields)
			continue
		}
		f.fn(v)
	}
	return true
}

// key reads a mapping key, which must be a plain scalar.
func (l *loader) key(k *yaml.Node, what string) (string, bool) {
	if !l.usable(k, what) {
		return "", false
	}
	if k.Kind != yaml.ScalarNode {
		l.errorf(l.at(k), "%s: expected a key name, got %s", what, describe(k))
		return "", false
	}
	if k.ShortTag() == "!!merge" {
		l.errorf(l.at(k), "%s: merge keys (<<) are not supported: write the keys out", what)
		return "", false
	}
	return k.Value, true
}

func (l *loader) unknownKey(k *yaml.Node, key, what string, fields []field) {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	if s := closest(key, names); s != "" {
		l.errorf(l.at(k), "unknown key %q in %s; did you mean %q?", key, what, s)
		return
	}
	l.errorf(l.at(k), "unknown key %q in %s (allowed: %s)", key, what, strings.Join(names, ", "))
}

// usable rejects aliases: they are never followed, so an alias bomb costs
// nothing, and a desired state reads better with every value written out.
func (l *loader) usable(n *yaml.Node, what string) bool {
	if n.Kind == yaml.AliasNode {
		l.errorf(l.at(n), "%s: aliases (*%s) are not supported: write the value out", what, n.Value)
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type and value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 40 {
		v = string([]rune(v)[:40]) + "..."
	}
	switch t := n.ShortTag(); t {
	case "!!str":
		return "string " + strconv.Quote(v)
	case "!!int":
		return "integer " + v
	case "!!float":
		return "float " + v
	case "!!bool":
		return "boolean " + v
	case "!!null":
		return "null"
	case "!!timestamp":
		return "timestamp " + v
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a value tagged %s", t)
	}
}

// scalar checks that v is a plain, usable scalar and records its place.
func (l *loader) scalar(v *yaml.Node, key, path string) bool {
	l.record(path, v)
	if !l.usable(v, key) {
		l.bad[path] = true
		return false
	}
	if v.Kind != yaml.ScalarNode {
		l.errorf(l.at(v), "%s: expected a scalar value, got %s", key, describe(v))
		l.bad[path] = true
		return false
	}
	return true
}

// str decodes a non-empty string. Null leaves dst unset (a default may
// apply); an empty string is refused rather than silently defaulted.
func (l *loader) str(v *yaml.Node, key, path string, dst *string) {
	l.strOpt(v, key, path, dst)
	if *dst == "" && !l.bad[path] && !isNull(v) && v.Kind == yaml.ScalarNode {
		l.errorf(l.at(v), "%s: must not be empty (leave the key out to get the default)", key)
		l.bad[path] = true
	}
}

// strOpt decodes a string that may be empty.
func (l *loader) strOpt(v *yaml.Node, key, path string, dst *string) {
	if !l.scalar(v, key, path) || isNull(v) {
		return
	}
	if v.ShortTag() != "!!str" {
		l.errorf(l.at(v), "%s: expected a string, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	*dst = v.Value
}

// text decodes any scalar as the text written (for opaque tokens and
// PostgreSQL parameter values, where `on` and `200` are as good as strings).
func (l *loader) text(v *yaml.Node, key, path string, dst *string) {
	if !l.scalar(v, key, path) || isNull(v) {
		return
	}
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		*dst = v.Value
	default:
		l.errorf(l.at(v), "%s: expected a string, got %s", key, describe(v))
		l.bad[path] = true
	}
}

// integer decodes an int in lo..hi. Null leaves dst unset. The range is
// checked here because a zero would otherwise be taken for "unset" and
// defaulted.
func (l *loader) integer(v *yaml.Node, key, path string, dst *int, lo, hi int) {
	if !l.scalar(v, key, path) || isNull(v) {
		return
	}
	if v.ShortTag() == "!!float" && intLikeRE.MatchString(v.Value) {
		// yaml reads an integer too large for int64 as a float.
		l.errorf(l.at(v), "%s: %s is out of range %d..%d", key, v.Value, lo, hi)
		l.bad[path] = true
		return
	}
	if v.ShortTag() != "!!int" {
		l.errorf(l.at(v), "%s: expected an integer, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	if !decimalRE.MatchString(v.Value) {
		// YAML reads 0755 as octal and 0x1F as hex: a port written 05432
		// would silently become 2842.
		l.errorf(l.at(v), "%s: write %s as a plain decimal integer (YAML reads a leading 0 as octal, 0x as hex)", key, v.Value)
		l.bad[path] = true
		return
	}
	var i int64
	if err := v.Decode(&i); err != nil || i < -1<<31 || i > 1<<31-1 {
		l.errorf(l.at(v), "%s: %s is out of range %d..%d", key, v.Value, lo, hi)
		l.bad[path] = true
		return
	}
	if i < int64(lo) || i > int64(hi) {
		l.errorf(l.at(v), "%s: %d is out of range %d..%d", key, i, lo, hi)
		l.bad[path] = true
		return
	}
	*dst = int(i)
}

// boolean decodes true or false. Null leaves dst nil.
func (l *loader) boolean(v *yaml.Node, key, path string, dst **bool) {
	if !l.scalar(v, key, path) || isNull(v) {
		return
	}
	if v.ShortTag() != "!!bool" {
		l.errorf(l.at(v), "%s: expected true or false, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		l.errorf(l.at(v), "%s: expected true or false, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	*dst = &b
}

// duration decodes a Go duration string such as "5m" or "90s".
func (l *loader) duration(v *yaml.Node, key, path string, dst *Duration) {
	if !l.scalar(v, key, path) || isNull(v) {
		return
	}
	if v.ShortTag() != "!!str" {
		l.errorf(l.at(v), "%s: expected a duration such as \"5m\" or \"90s\", got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	var d Duration
	if err := d.UnmarshalText([]byte(v.Value)); err != nil {
		l.errorf(l.at(v), "%s: expected a duration such as \"5m\" or \"90s\", got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	if d.Duration <= 0 {
		l.errorf(l.at(v), "%s: must be positive, got %s", key, v.Value)
		l.bad[path] = true
		return
	}
	*dst = d
}

// sequence walks a list node, calling fn for each item with its index.
// Null is an empty list.
func (l *loader) sequence(v *yaml.Node, key, path string, fn func(i int, item *yaml.Node)) {
	l.record(path, v)
	if !l.usable(v, key) || isNull(v) {
		return
	}
	if v.Kind != yaml.SequenceNode {
		l.errorf(l.at(v), "%s: expected a list, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	for i, item := range v.Content {
		if !l.usable(item, key) {
			continue // no element at all rather than one with derived problems
		}
		fn(i, item)
	}
}

// strList decodes a list of strings; dst is non-nil afterwards. The place
// of each kept item is recorded at path/INDEX, INDEX counting kept items.
func (l *loader) strList(v *yaml.Node, key, path string, dst *[]string) {
	out := []string{}
	l.sequence(v, key, path, func(_ int, item *yaml.Node) {
		var s string
		p := fmt.Sprintf("%s/%d", path, len(out))
		l.str(item, key, p, &s)
		switch {
		case l.bad[p]:
			delete(l.bad, p) // the next kept item takes this index
		case isNull(item):
			l.errorf(l.at(item), "%s: expected a string, got null", key)
		default:
			out = append(out, s)
		}
	})
	*dst = out
}

// strMap decodes a mapping of names to scalar values; dst is non-nil
// afterwards. It records each key's place at path/KEY#key and each value's
// at path/KEY.
func (l *loader) strMap(v *yaml.Node, key, path string, dst *map[string]string) {
	out := map[string]string{}
	*dst = out
	l.record(path, v)
	if !l.usable(v, key) || isNull(v) {
		return
	}
	if v.Kind != yaml.MappingNode {
		l.errorf(l.at(v), "%s: expected a mapping, got %s", key, describe(v))
		l.bad[path] = true
		return
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		name, ok := l.key(k, key)
		if !ok {
			continue
		}
		if first, dup := seen[name]; dup {
			l.errorf(l.at(k), "duplicate key %q in %s (first at line %d)", name, key, first.Line)
			continue
		}
		seen[name] = k
		p := path + "/" + name
		l.pos[p+"#key"] = l.at(k)
		var s string
		l.text(val, key+"."+name, p, &s)
		if l.bad[p] {
			continue
		}
		if isNull(val) {
			l.errorf(l.at(val), "%s.%s: expected a value, got null", key, name)
			l.bad[p] = true
			continue
		}
		out[name] = s
	}
}

// closest suggests the allowed name nearest to s, if one is close enough to
// be a typo.
func closest(s string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := levenshtein(strings.ToLower(s), n); d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(s) <= 4 {
		limit = 1
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // a key this long is no typo of ours
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
