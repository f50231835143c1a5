package source

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pgaf-gitops/reconciler/internal/testenv"
)

func TestGitOverSSHWithDeployKeyAndStrictKnownHosts(t *testing.T) {
	s := testenv.StartSSHD(t) // as root, which the tests run as: sshd runs git-upload-pack for the client
	r := testenv.NewRepo(t)
	c1 := r.Commit("one", nil, map[string]string{"d.yaml": "v: 1\n"})
	url := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", s.Port, r.Dir)

	g := newGit(t, GitConfig{URL: url, SSHKeyFile: s.KeyFile, SSHKnownHosts: []string{s.KnownHosts("known_hosts", s.HostKey)}})
	if snap := mustFetch(t, g); snap.Commit != c1 {
		t.Fatalf("commit %s, want %s", snap.Commit, c1)
	}

	g = newGit(t, GitConfig{URL: url, SSHKeyFile: s.KeyFile, SSHKnownHosts: []string{s.KnownHosts("other_known_hosts", testenv.RandomKey(t))}})
	snap, err := fetch(t, g)
	var fe *FetchError
	if !errors.As(err, &fe) || snap != nil {
		t.Fatalf("changed host key: %v %v, want *FetchError and nothing fetched", snap, err)
	}
	t.Logf("changed host key refused: %v", err)

	if _, err := NewGit(GitConfig{URL: url, SSHKeyFile: s.KeyFile, CacheDir: t.TempDir()}); err == nil {
		t.Error("an ssh URL without known_hosts was accepted")
	}
}
