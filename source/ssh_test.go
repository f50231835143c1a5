package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// writeSSHKey writes a new ed25519 private key in OpenSSH format.
func writeSSHKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
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
	return s.PublicKey()
}

// gitSSHD is a real OpenSSH server on loopback that serves git (as root,
// which the tests run as): sshd runs git-upload-pack for the client.
type gitSSHD struct {
	port    int
	hostKey ssh.PublicKey
	keyFile string // the client's deploy key
}

func startGitSSHD(t *testing.T) *gitSSHD {
	t.Helper()
	bin := "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sshd not found and CI is set")
		}
		t.Skip("sshd not found")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs sshd as root")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &gitSSHD{keyFile: filepath.Join(dir, "deploy_key")}
	s.hostKey = writeSSHKey(t, filepath.Join(dir, "host_key"))
	client := writeSSHKey(t, s.keyFile)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(client), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\n"+
		"StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n",
		s.port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *gitSSHD) knownHosts(t *testing.T, key ssh.PublicKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{fmt.Sprintf("[127.0.0.1]:%d", s.port)}, key)
	if err := os.WriteFile(path, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGitOverSSHWithDeployKeyAndStrictKnownHosts(t *testing.T) {
	s := startGitSSHD(t)
	r := newTestRepo(t)
	c1 := r.commit("one", nil, map[string]string{"d.yaml": "v: 1\n"})
	url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", s.port, r.dir)

	g := newGit(t, GitConfig{URL: url, SSHKeyFile: s.keyFile, SSHKnownHosts: []string{s.knownHosts(t, s.hostKey)}})
	if snap := mustFetch(t, g); snap.Commit != c1 {
		t.Fatalf("commit %s, want %s", snap.Commit, c1)
	}

	other := writeSSHKey(t, filepath.Join(t.TempDir(), "other"))
	g = newGit(t, GitConfig{URL: url, SSHKeyFile: s.keyFile, SSHKnownHosts: []string{s.knownHosts(t, other)}})
	snap, err := fetch(t, g)
	var fe *FetchError
	if !errors.As(err, &fe) || snap != nil {
		t.Fatalf("changed host key: %v %v, want *FetchError and nothing fetched", snap, err)
	}
	t.Logf("changed host key refused: %v", err)

	if _, err := NewGit(GitConfig{URL: url, SSHKeyFile: s.keyFile, CacheDir: t.TempDir()}); err == nil {
		t.Error("an ssh URL without known_hosts was accepted")
	}
}
