package actuators

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// hostileArgs are strings a shell would split, expand or execute if they
// were not quoted. shellArgv must return each of them byte for byte.
var hostileArgs = []string{
	"",
	" ",
	"two words",
	"  leading and trailing  ",
	"tab\there",
	"new\nline",
	"trailing newline\n",
	"'",
	"''",
	`"`,
	`it's "quoted"`,
	`'\''`,
	`back\slash\`,
	"$HOME",
	"${HOME:-x}",
	"$(touch /tmp/pgaf-quote-pwned)",
	"`touch /tmp/pgaf-quote-pwned`",
	"$((1+1))",
	"*",
	"/*",
	"?",
	"[a-z]*",
	"{a,b}",
	"~",
	"~root",
	"a;b",
	"a && b || c",
	"a|b",
	"a>b",
	"<a",
	"&",
	"#comment",
	"!",
	"!!",
	"x=y",
	"-n",
	"-e",
	"--",
	"%1",
	"ünïcödé ✓ 日本語",
	"\xff\xfe invalid utf-8",
	"\x01\x1b[31mcontrol\x7f",
	"\\",
	"a\\nb",
}

// shellArgv runs `sh -c "printf '%s\0' <quoted args>"` through a real
// /bin/sh and returns the arguments printf received.
func shellArgv(t *testing.T, args []string) []string {
	t.Helper()
	cmd := Join(append([]string{"printf", `%s\0`}, args...))
	out, err := exec.Command("/bin/sh", "-c", cmd).Output()
	if err != nil {
		t.Fatalf("/bin/sh -c %q: %v", cmd, err)
	}
	return splitNUL(out)
}

func splitNUL(out []byte) []string {
	if len(out) == 0 {
		return nil
	}
	if out[len(out)-1] != 0 {
		return []string{"<missing final NUL>" + string(out)}
	}
	parts := bytes.Split(out[:len(out)-1], []byte{0})
	res := make([]string, len(parts))
	for i, p := range parts {
		res[i] = string(p)
	}
	return res
}

func TestQuoteThroughRealShell(t *testing.T) {
	for _, a := range hostileArgs {
		got := shellArgv(t, []string{a})
		if len(got) != 1 || got[0] != a {
			t.Errorf("Quote(%q) = %s: shell received %q", a, Quote(a), got)
		}
	}
	// All at once: word boundaries must survive too.
	got := shellArgv(t, hostileArgs)
	if len(got) != len(hostileArgs) {
		t.Fatalf("shell received %d args, want %d: %q", len(got), len(hostileArgs), got)
	}
	for i := range got {
		if got[i] != hostileArgs[i] {
			t.Errorf("arg %d: shell received %q, want %q", i, got[i], hostileArgs[i])
		}
	}
}

func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "''"},
		{"safe_word", "docker", "docker"},
		{"safe_path_and_flags", "--pgdata=/var/lib/x", "'--pgdata=/var/lib/x'"},
		{"label_filter", "label=pgaf.vm=vm1", "'label=pgaf.vm=vm1'"},
		{"space", "a b", "'a b'"},
		{"single_quote", "it's", `'it'\''s'`},
		{"dollar", "$x", "'$x'"},
		{"newline", "a\nb", "'a\nb'"},
		{"glob", "*", "'*'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	got := Join([]string{"docker", "ps", "--filter", "label=pgaf.vm=vm 1"})
	want := "docker ps --filter 'label=pgaf.vm=vm 1'"
	if got != want {
		t.Errorf("Join = %s, want %s", got, want)
	}
	if strings.Contains(Join(nil), " ") {
		t.Errorf("Join(nil) = %q", Join(nil))
	}
}
