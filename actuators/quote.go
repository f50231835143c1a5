package actuators

import "strings"

// Quote returns s quoted for a POSIX shell, so that the shell reads it back
// as exactly one word with exactly the bytes of s. Words made only of safe
// characters are left as they are (for readable logs); everything else is
// wrapped in single quotes, inside which a POSIX shell interprets nothing.
// A single quote inside s closes the quoted part, adds an escaped quote and
// reopens it; the empty string becomes a pair of quotes:
//
//	it's  ->  'it'\''s'
//	(empty) -> ''
//
// A NUL byte cannot be passed in an argument at all; callers that execute
// commands reject it (see SSHExecutor.Run).
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every element of argv with Quote and joins them with spaces:
// the result is a command line a POSIX shell splits back into argv.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// isSafe reports whether every byte of s is one a shell treats literally
// everywhere in a word. '=' is excluded so that a first word is never an
// assignment, '~' and glob characters are excluded, and so is '%' (job
// specs in some shells).
func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '/', c == ':', c == ',', c == '+', c == '@':
		default:
			return false
		}
	}
	return true
}
