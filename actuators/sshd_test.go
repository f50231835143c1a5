package actuators

import (
	"testing"

	"github.com/pgaf-gitops/reconciler/internal/testenv"
)

// testSSHD is the shared real sshd on loopback, with what the actuators'
// tests add: the Host and an executor for it.
type testSSHD struct{ *testenv.SSHD }

// startSSHD starts sshd as the current user (root here) and stops it in
// t.Cleanup.
func startSSHD(t *testing.T) *testSSHD { return &testSSHD{testenv.StartSSHD(t)} }

// Host returns the SSH host of the server for a VM name.
func (s *testSSHD) Host(vm string) Host {
	return Host{Name: vm, Address: "127.0.0.1", Port: s.Port, User: "root"}
}

// Executor returns an executor that knows the server's key, closed in
// t.Cleanup.
func (s *testSSHD) Executor(t *testing.T, vm string, mod func(*SSHConfig, *Host)) *SSHExecutor {
	t.Helper()
	cfg := SSHConfig{
		KeyFiles:        []string{s.KeyFile},
		KnownHostsFiles: []string{s.KnownHosts("known_hosts", s.HostKey)},
	}
	h := s.Host(vm)
	if mod != nil {
		mod(&cfg, &h)
	}
	e, err := NewSSHExecutor(cfg, []Host{h})
	if err != nil {
		t.Fatalf("NewSSHExecutor: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close executor: %v", err)
		}
	})
	return e
}
