package actuators

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/pgaf-gitops/reconciler/internal/testenv"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSSHRunCommand(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	ctx := testCtx(t, 2*time.Minute)

	out, err := e.Run(ctx, "vm1", []string{"echo", "hello"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(out) != "hello\n" {
		t.Errorf("stdout = %q, want %q", out, "hello\n")
	}

	t.Run("hostile_arguments_arrive_byte_identical", func(t *testing.T) {
		// The remote login shell (bash for root) splits the command line:
		// printf must receive exactly the strings we sent.
		out, err := e.Run(ctx, "vm1", append([]string{"printf", `%s\0`}, hostileArgs...))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := splitNUL(out)
		if len(got) != len(hostileArgs) {
			t.Fatalf("remote received %d args, want %d: %q", len(got), len(hostileArgs), got)
		}
		for i := range got {
			if got[i] != hostileArgs[i] {
				t.Errorf("arg %d: remote received %q, want %q", i, got[i], hostileArgs[i])
			}
		}
		if _, err := os.Stat("/tmp/pgaf-quote-pwned"); err == nil {
			t.Errorf("a hostile argument was executed: /tmp/pgaf-quote-pwned exists")
		}
	})

	t.Run("stdin", func(t *testing.T) {
		in := "line one\n$(not run) 'quoted'\n\x00binary\xff"
		out, err := e.RunInput(ctx, "vm1", []string{"cat"}, strings.NewReader(in))
		if err != nil {
			t.Fatalf("RunInput: %v", err)
		}
		if string(out) != in {
			t.Errorf("cat echoed %q, want %q", out, in)
		}
	})

	t.Run("nul_in_argument_refused", func(t *testing.T) {
		if _, err := e.Run(ctx, "vm1", []string{"echo", "a\x00b"}); err == nil {
			t.Errorf("Run with a NUL byte in an argument succeeded")
		}
	})

	t.Run("unknown_vm", func(t *testing.T) {
		_, err := e.Run(ctx, "nope", []string{"true"})
		if err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("Run on an unknown VM: err = %v, want one naming it", err)
		}
	})
}

func TestSSHReusesOneConnection(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	ctx := testCtx(t, 2*time.Minute)
	start := time.Now()
	for i := range 20 {
		out, err := e.Run(ctx, "vm1", []string{"echo", strconv.Itoa(i)})
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if want := strconv.Itoa(i) + "\n"; string(out) != want {
			t.Fatalf("command %d: stdout %q, want %q", i, out, want)
		}
	}
	t.Logf("20 commands took %v (%v each, first one dials)", time.Since(start), time.Since(start)/20)
	if d := e.Dials(); d != 1 {
		t.Errorf("20 commands dialled %d times, want 1", d)
	}
	// The server's side of the story: one authentication.
	if n := strings.Count(s.LogText(), "Accepted publickey"); n != 1 {
		t.Errorf("sshd accepted %d logins for 20 commands, want 1", n)
	}
}

func TestSSHConcurrentCommands(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	ctx := testCtx(t, 2*time.Minute)
	const n = 40 // more than sshd's MaxSessions (10) on the one connection
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := fmt.Sprintf("cmd-%d", i)
			out, err := e.Run(ctx, "vm1", []string{"sh", "-c", `sleep 0.05; echo "$1"`, "sh", want})
			if err != nil {
				errs <- fmt.Errorf("command %d: %w", i, err)
				return
			}
			if string(out) != want+"\n" {
				errs <- fmt.Errorf("command %d: stdout %q, want %q", i, out, want+"\n")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := e.Dials(); d != 1 {
		t.Errorf("%d concurrent commands dialled %d times, want 1", n, d)
	}
}

func TestSSHHostKeyRefused(t *testing.T) {
	s := startSSHD(t)
	marker := filepath.Join(t.TempDir(), "ran")
	tests := []struct {
		name    string
		mod     func(*SSHConfig, *Host)
		problem HostKeyProblem
	}{
		{"unknown_host", func(c *SSHConfig, h *Host) {
			c.KnownHostsFiles = []string{s.KnownHosts("empty_known_hosts")}
		}, HostKeyUnknown},
		{"changed_host_key", func(c *SSHConfig, h *Host) {
			c.KnownHostsFiles = []string{s.KnownHosts("other_known_hosts", testenv.RandomKey(t))}
		}, HostKeyChanged},
		{"changed_host_key_of_another_type", func(c *SSHConfig, h *Host) {
			// known_hosts has an RSA key; the server offers none: the
			// refusal must still name the key it does offer.
			c.KnownHostsFiles = []string{s.KnownHosts("rsa_known_hosts", rsaKey(t))}
		}, HostKeyChanged},
		{"wrong_pin", func(c *SSHConfig, h *Host) {
			c.KnownHostsFiles = nil
			h.HostKeyFingerprint = ssh.FingerprintSHA256(testenv.RandomKey(t))
		}, HostKeyPinMismatch},
		{"wrong_pin_wins_over_known_hosts", func(c *SSHConfig, h *Host) {
			h.HostKeyFingerprint = ssh.FingerprintSHA256(testenv.RandomKey(t))
		}, HostKeyPinMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s.Executor(t, "vm-"+tt.name, tt.mod)
			_, err := e.Run(testCtx(t, 2*time.Minute), "vm-"+tt.name, []string{"touch", marker})
			var hk *HostKeyError
			if !errors.As(err, &hk) {
				t.Fatalf("err = %v (%T), want *HostKeyError", err, err)
			}
			if hk.Problem != tt.problem {
				t.Errorf("problem = %q, want %q", hk.Problem, tt.problem)
			}
			if hk.Fingerprint != s.HostFP {
				t.Errorf("fingerprint = %q, want the server's %q", hk.Fingerprint, s.HostFP)
			}
			for _, want := range []string{"vm-" + tt.name, s.HostFP} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatalf("the command ran on a host whose key was refused")
			}
			if e.Dials() != 0 {
				t.Errorf("Dials = %d after a refused key, want 0", e.Dials())
			}
		})
	}
}

// The server has an ed25519 and an ECDSA host key. A known_hosts file
// that lists either one must be enough: the client asks for the types it
// can verify.
func TestSSHKnownHostsWithOneOfSeveralServerKeys(t *testing.T) {
	s := startSSHD(t)
	tests := []struct {
		name string
		key  ssh.PublicKey
	}{
		{"ed25519_only", s.HostKey},
		{"ecdsa_only", s.ECDSAKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := s.Executor(t, "vm1", func(c *SSHConfig, h *Host) {
				c.KnownHostsFiles = []string{s.KnownHosts(tt.name, tt.key)}
			})
			if _, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"true"}); err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

func rsaKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestSSHPinnedFingerprintAccepted(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", func(c *SSHConfig, h *Host) {
		c.KnownHostsFiles = nil
		h.HostKeyFingerprint = s.HostFP
	})
	out, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"echo", "pinned"})
	if err != nil {
		t.Fatalf("Run with the right pin: %v", err)
	}
	if string(out) != "pinned\n" {
		t.Errorf("stdout = %q", out)
	}
}

func TestSSHAgentAuth(t *testing.T) {
	s := startSSHD(t)
	// A real agent protocol server holding the client key.
	b, err := os.ReadFile(s.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close agent listener: %v", err)
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	e := s.Executor(t, "vm1", func(c *SSHConfig, h *Host) {
		c.KeyFiles = nil
		c.UseAgent = true
	})
	out, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"echo", "agent"})
	if err != nil {
		t.Fatalf("Run with ssh-agent: %v", err)
	}
	if string(out) != "agent\n" {
		t.Errorf("stdout = %q", out)
	}

}

func TestSSHNonZeroExit(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	argv := []string{"sh", "-c", "echo partial; echo 'it broke' >&2; exit 3"}
	out, err := e.Run(testCtx(t, 2*time.Minute), "vm1", argv)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want *CommandError", err, err)
	}
	if ce.ExitStatus != 3 || ce.Stderr != "it broke" || ce.VM != "vm1" {
		t.Errorf("CommandError = %+v, want exit 3, stderr %q, vm1", ce, "it broke")
	}
	for _, want := range []string{"vm1", "exited 3", "it broke", "exit 3'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if string(out) != "partial\n" {
		t.Errorf("stdout of the failed command = %q, want %q", out, "partial\n")
	}
	// The connection survives a failed command.
	if _, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"true"}); err != nil {
		t.Errorf("next command: %v", err)
	}
	if d := e.Dials(); d != 1 {
		t.Errorf("Dials = %d, want 1", d)
	}
}

func TestSSHContextEndKillsCommand(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	if _, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"true"}); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// Cancel as soon as the remote command runs (a fixed deadline would be
	// flaky on a loaded machine), then time how long Run takes to return.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cancelled := make(chan time.Time, 1)
	go func() {
		for {
			if _, err := os.Stat(pidFile); err == nil {
				time.Sleep(50 * time.Millisecond) // let the shell exec sleep
				cancelled <- time.Now()
				cancel()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	_, err := e.Run(ctx, "vm1", []string{"sh", "-c", `echo $$ > "$1"; exec sleep 30`, "sh", pidFile})
	returned := time.Now()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want one wrapping context.Canceled", err)
	}
	if took := returned.Sub(<-cancelled); took > 2*time.Second {
		t.Errorf("Run returned %v after its context was cancelled", took)
	} else {
		t.Logf("Run returned %v after its context was cancelled", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the command never started: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The remote sleep must be gone (SIGKILL through the session), not left
	// to run its 30 seconds.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("remote sleep (pid %d) still running 5s after the deadline", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The connection is still usable.
	if _, err := e.Run(testCtx(t, 2*time.Minute), "vm1", []string{"true"}); err != nil {
		t.Errorf("command after a cancelled one: %v", err)
	}
	if d := e.Dials(); d != 1 {
		t.Errorf("Dials = %d, want 1 (cancelling a command must not drop the connection)", d)
	}
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(string(b[i+1:]), " Z")
}

func TestSSHReconnect(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(s *testSSHD)
	}{
		{"connection_killed", func(s *testSSHD) {
			if n := s.KillConnections(); n == 0 {
				t.Fatalf("no sshd connection process to kill")
			}
		}},
		{"sshd_restarted", func(s *testSSHD) { s.Restart() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSSHD(t)
			e := s.Executor(t, "vm1", nil)
			ctx := testCtx(t, 2*time.Minute)
			if _, err := e.Run(ctx, "vm1", []string{"true"}); err != nil {
				t.Fatal(err)
			}
			tt.break_(s)
			out, err := e.Run(ctx, "vm1", []string{"echo", "back"})
			if err != nil {
				t.Fatalf("command after the connection broke: %v", err)
			}
			if string(out) != "back\n" {
				t.Errorf("stdout = %q", out)
			}
			if d := e.Dials(); d != 2 {
				t.Errorf("Dials = %d, want 2", d)
			}
		})
	}
}

func TestSSHKeepaliveDropsFrozenConnection(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", func(c *SSHConfig, h *Host) {
		c.KeepaliveInterval = 200 * time.Millisecond
		c.KeepaliveTimeout = time.Second
	})
	ctx := testCtx(t, 2*time.Minute)
	if _, err := e.Run(ctx, "vm1", []string{"true"}); err != nil {
		t.Fatal(err)
	}
	// Freeze the server side of the connection: the socket stays open but
	// nothing answers, like a partitioned VM.
	kids := s.Connections()
	if len(kids) == 0 {
		t.Fatal("no sshd connection process")
	}
	for _, p := range kids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %d: %v", p, err)
		}
	}
	t.Cleanup(func() {
		for _, p := range kids {
			if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Errorf("kill %d: %v", p, err)
			}
		}
	})
	h := e.hosts["vm1"]
	deadline := time.Now().Add(10 * time.Second)
	for h.current() != nil {
		if time.Now().After(deadline) {
			t.Fatal("keepalive did not drop the frozen connection within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := e.Run(ctx, "vm1", []string{"echo", "fresh"})
	if err != nil {
		t.Fatalf("command after the keepalive dropped the connection: %v", err)
	}
	if string(out) != "fresh\n" || e.Dials() != 2 {
		t.Errorf("stdout %q, dials %d; want %q and 2", out, e.Dials(), "fresh\n")
	}
}

func TestSSHUnreachable(t *testing.T) {
	port := testenv.FreePort(t) // nothing listens there
	e, err := NewSSHExecutor(SSHConfig{
		KeyFiles:        []string{writeKeyFile(t)},
		KnownHostsFiles: []string{filepath.Join(t.TempDir(), "none")},
	}, []Host{{Name: "vm9", Address: "127.0.0.1", Port: port, User: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Run(testCtx(t, 10*time.Second), "vm9", []string{"true"})
	var ce *ConnError
	if !errors.As(err, &ce) || ce.VM != "vm9" {
		t.Fatalf("err = %v (%T), want *ConnError for vm9", err, err)
	}
}

func TestNewSSHExecutorRefusesUnverifiableHosts(t *testing.T) {
	key := writeKeyFile(t)
	tests := []struct {
		name string
		cfg  SSHConfig
		host Host
	}{
		{"no_known_hosts_no_pin", SSHConfig{KeyFiles: []string{key}}, Host{Name: "vm1", Address: "a", User: "u"}},
		{"pin_without_prefix", SSHConfig{KeyFiles: []string{key}}, Host{Name: "vm1", Address: "a", User: "u", HostKeyFingerprint: "abc"}},
		{"no_auth", SSHConfig{KnownHostsFiles: []string{"x"}}, Host{Name: "vm1", Address: "a", User: "u"}},
		{"missing_user", SSHConfig{KeyFiles: []string{key}, KnownHostsFiles: []string{"x"}}, Host{Name: "vm1", Address: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewSSHExecutor(tt.cfg, []Host{tt.host}); err == nil {
				t.Errorf("NewSSHExecutor accepted %+v / %+v", tt.cfg, tt.host)
			}
		})
	}
}

func writeKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	testenv.WriteKey(t, p)
	return p
}

func TestPidWriter(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		wantPID int
		wantOut string
	}{
		{"one_write", []string{"pgaf-pid 123\nerror text\n"}, 123, "error text\n"},
		{"split_line", []string{"pgaf-p", "id 45", "6\nrest", " more"}, 456, "rest more"},
		{"pid_only", []string{"pgaf-pid 7\n"}, 7, ""},
		{"no_pid_line", []string{"bash: warning\n", "x"}, 0, "bash: warning\nx"},
		{"unterminated_short", []string{"oops"}, 0, "oops"},
		{"long_first_line", []string{strings.Repeat("e", 100)}, 0, strings.Repeat("e", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			p := &pidWriter{w: &buf}
			for _, w := range tt.writes {
				if n, err := p.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			p.flush()
			if p.pid() != tt.wantPID || buf.String() != tt.wantOut {
				t.Errorf("pid %d, out %q; want %d, %q", p.pid(), buf.String(), tt.wantPID, tt.wantOut)
			}
		})
	}
}

func TestStderrIsCapped(t *testing.T) {
	var buf bytes.Buffer
	w := &tailWriter{buf: &buf, max: 100}
	for i := range 1000 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if buf.Len() > 100 || !strings.HasSuffix(buf.String(), "line 999\n") {
		t.Errorf("kept %d bytes ending %q, want at most 100 ending with the last line", buf.Len(), buf.String())
	}
	long := strings.Repeat("x", 2*maxStderr) + "the end"
	got := trimStderr([]byte(long + "\n\n"))
	if len(got) > maxStderr+3 || !strings.HasSuffix(got, "the end") || !strings.HasPrefix(got, "...") {
		t.Errorf("trimStderr kept %d bytes: %q...", len(got), got[:10])
	}
}

// TestSSHDial forwards TCP and Unix-socket connections through the VM's
// one SSH connection, the way the observer reaches Docker's socket and
// each node's PostgreSQL.
func TestSSHDial(t *testing.T) {
	s := startSSHD(t)
	e := s.Executor(t, "vm1", nil)
	ctx := testCtx(t, 2*time.Minute)

	echo := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 64)
				n, _ := c.Read(b)
				_, _ = c.Write(append([]byte("echo:"), b[:n]...))
			}()
		}
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	go echo(tcp)
	sock := filepath.Join(t.TempDir(), "echo.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close() })
	go echo(unix)

	roundTrip := func(network, addr string) {
		t.Helper()
		c, err := e.Dial(ctx, "vm1", network, addr)
		if err != nil {
			t.Fatalf("Dial %s %s: %v", network, addr, err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("read through %s %s: %v", network, addr, err)
		}
		if got := string(b[:n]); got != "echo:hi" {
			t.Errorf("%s %s answered %q, want %q", network, addr, got, "echo:hi")
		}
	}
	roundTrip("tcp", tcp.Addr().String())
	roundTrip("unix", sock)

	// Nothing listens there: sshd refuses the channel, the connection
	// stays (no second dial) and the error says what was forwarded.
	_, err = e.Dial(ctx, "vm1", "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))))
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Op != "forward" || ce.VM != "vm1" || !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Errorf("Dial to a closed port: err = %v, want a forward ConnError naming vm1 and the address", err)
	}
	if d := e.Dials(); d != 1 {
		t.Errorf("Dials = %d after a refused forwarding, want 1", d)
	}

	// A dead connection is dialled again.
	if n := s.KillConnections(); n == 0 {
		t.Fatalf("no sshd connection process to kill")
	}
	roundTrip("unix", sock)
	if d := e.Dials(); d != 2 {
		t.Errorf("Dials = %d after the connection was killed, want 2", d)
	}

	if _, err := e.Dial(ctx, "nope", "tcp", tcp.Addr().String()); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Dial on an unknown VM: err = %v, want one naming it", err)
	}
}
