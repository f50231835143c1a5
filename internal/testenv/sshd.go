// Package testenv holds the test helpers several packages share: a real
// OpenSSH server on loopback (StartSSHD), SSH and OpenPGP keys, and a real
// git repository with signed commits (NewRepo). It is imported by tests
// only.
package testenv

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a real OpenSSH server on 127.0.0.1 with its own config,
// host key and authorised client key, started for one test.
type SSHD struct {
	t       testing.TB
	Dir     string
	Port    int
	Addr    string        // 127.0.0.1:port
	HostKey ssh.PublicKey // ed25519
	HostFP  string        // SHA256:... of HostKey
	// ECDSAKey is the server's second host key: a Go client prefers ECDSA,
	// OpenSSH prefers ed25519, and both must work.
	ECDSAKey ssh.PublicKey
	KeyFile  string // the client's private key
	config   string
	mu       sync.Mutex
	cmd      *exec.Cmd
	waitDone chan struct{}
	log      *bytes.Buffer
}

// sshdPath finds sshd, or skips the test (fails it when CI is set).
func sshdPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("sshd not found and CI is set: install openssh-server")
	}
	t.Skip("sshd not found: install openssh-server to run the SSH tests (they fail instead of skipping when CI is set)")
	return ""
}

// WriteKey writes a new ed25519 private key in OpenSSH format.
func WriteKey(t testing.TB, path string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writePrivateKey(t, path, priv)
}

// writeECDSAKey writes a new ECDSA P-256 private key in OpenSSH format.
func writeECDSAKey(t testing.TB, path string) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writePrivateKey(t, path, priv)
}

// writePrivateKey writes priv to path in OpenSSH format and returns its
// signer.
func writePrivateKey(t testing.TB, path string, priv crypto.PrivateKey) ssh.Signer {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartSSHD starts sshd as the current user (root here) and stops it in
// t.Cleanup.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin := sshdPath(t)
	if os.Geteuid() != 0 {
		t.Skip("the sshd tests run sshd as root, and this is not root")
	}
	// sshd insists on its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("create /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &SSHD{t: t, Dir: dir, KeyFile: filepath.Join(dir, "client_key")}
	hostSigner := WriteKey(t, filepath.Join(dir, "host_key"))
	s.HostKey = hostSigner.PublicKey()
	s.HostFP = ssh.FingerprintSHA256(s.HostKey)
	s.ECDSAKey = writeECDSAKey(t, filepath.Join(dir, "host_ecdsa_key")).PublicKey()
	client := WriteKey(t, s.KeyFile)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Port = FreePort(t)
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	s.config = filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 10
MaxStartups 100
LogLevel VERBOSE
`, s.Port, filepath.Join(dir, "host_ecdsa_key"), filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(bin)
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop sshd: %v", err)
		}
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.LogText())
		}
	})
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// LogText is what sshd printed so far.
func (s *SSHD) LogText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

func (s *SSHD) start(bin string) {
	s.t.Helper()
	s.mu.Lock()
	if s.log == nil {
		s.log = new(bytes.Buffer)
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", s.config)
	cmd.Stdout = lockedBuffer{&s.mu, s.log}
	cmd.Stderr = lockedBuffer{&s.mu, s.log}
	s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.waitDone = cmd, done
	s.waitReady(done)
}

// waitReady polls until sshd answers with its banner.
func (s *SSHD) waitReady(done chan struct{}) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			s.t.Fatalf("sshd exited at start:\n%s", s.LogText())
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-2.0-") {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd on %s not ready after 10s (last error %v):\n%s", s.Addr, err, s.LogText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// children returns the pids of processes whose parent is pid (sshd forks
// one process per connection).
func children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				kids = append(kids, p)
			}
		}
	}
	return kids
}

// descendants returns every process below pid, deepest last.
func descendants(pid int) []int {
	var all []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range children(p) {
			all = append(all, k)
			queue = append(queue, k)
		}
	}
	return all
}

// Connections returns the pids of the per-connection sshd processes and
// what runs under them, deepest last.
func (s *SSHD) Connections() []int { return descendants(s.cmd.Process.Pid) }

// KillConnections kills the per-connection sshd processes (and what runs
// under them) while the listening sshd stays: every client connection
// breaks.
func (s *SSHD) KillConnections() int {
	s.t.Helper()
	kids := descendants(s.cmd.Process.Pid)
	for _, p := range kids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			s.t.Fatalf("kill sshd child %d: %v", p, err)
		}
	}
	return len(kids)
}

// Restart stops sshd and its connections and starts it again on the same
// port with the same host key.
func (s *SSHD) Restart() {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("stop sshd: %v", err)
	}
	s.start(s.cmd.Path)
}

func (s *SSHD) stop() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	select {
	case <-s.waitDone:
		return nil // already stopped
	default:
	}
	kids := descendants(s.cmd.Process.Pid)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	for _, p := range kids {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill sshd child %d: %w", p, err)
		}
	}
	select {
	case <-s.waitDone:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		return errors.New("sshd did not exit within 10s of SIGTERM")
	}
}

// KnownHosts writes a known_hosts file holding the given keys for the
// server's address and returns its path.
func (s *SSHD) KnownHosts(name string, keys ...ssh.PublicKey) string {
	s.t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, k))
		b.WriteString("\n")
	}
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// RandomKey returns a fresh ed25519 public key (for wrong known_hosts).
func RandomKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
