package source

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pgaf-gitops/reconciler/internal/testenv"
)

func fetch(t *testing.T, g *Git) (*Snapshot, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return g.Fetch(ctx)
}

func mustFetch(t *testing.T, g *Git) *Snapshot {
	t.Helper()
	s, err := fetch(t, g)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return s
}

func newGit(t *testing.T, cfg GitConfig) *Git {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	g, err := NewGit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGitFollowsBranchAndReadsPath(t *testing.T) {
	r := testenv.NewRepo(t)
	first := r.Commit("first", nil, map[string]string{
		"clusters/a.yaml":       "a: 1\n",
		"clusters/b.yml":        "b: 2\n",
		"clusters/.hidden.yaml": "h: 3\n",
		"clusters/README.md":    "not yaml\n",
		"clusters/sub/c.yaml":   "c: 4\n",
		"other.yaml":            "o: 5\n",
	})
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"directory", "clusters", []string{"clusters/a.yaml", "clusters/b.yml"}},
		{"directory_with_slashes", "/clusters/", []string{"clusters/a.yaml", "clusters/b.yml"}},
		{"single_file", "clusters/sub/c.yaml", []string{"clusters/sub/c.yaml"}},
		{"root", "", []string{"other.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGit(t, GitConfig{URL: r.URL(), Path: tc.path})
			s := mustFetch(t, g)
			if s.Commit != first || s.Revision != first {
				t.Errorf("commit %s revision %s, want %s", s.Commit, s.Revision, first)
			}
			if got := slices.Sorted(maps.Keys(s.Files)); !slices.Equal(got, tc.want) {
				t.Errorf("files %v, want %v", got, tc.want)
			}
		})
	}

	g := newGit(t, GitConfig{URL: r.URL(), Path: "clusters"})
	mustFetch(t, g)
	second := r.Commit("second", nil, map[string]string{"clusters/a.yaml": "a: 10\n"})
	s := mustFetch(t, g)
	if s.Commit != second || string(s.Files["clusters/a.yaml"]) != "a: 10\n" {
		t.Errorf("after a new commit: %s %q, want %s with a: 10", s.Commit, s.Files["clusters/a.yaml"], second)
	}
	if s.Subject != "second" || s.Author != "Op Erator" {
		t.Errorf("subject %q author %q", s.Subject, s.Author)
	}
}

func TestGitMissingPathIsAPathError(t *testing.T) {
	r := testenv.NewRepo(t)
	r.Commit("first", nil, map[string]string{"a.yaml": "a: 1\n", "docs/x.md": "x"})
	for _, p := range []string{"nope", "docs"} {
		g := newGit(t, GitConfig{URL: r.URL(), Path: p})
		_, err := fetch(t, g)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("path %s: err %v, want *PathError", p, err)
		}
	}
}

func TestGitTagAndPinnedCommit(t *testing.T) {
	r := testenv.NewRepo(t)
	c1 := r.Commit("one", nil, map[string]string{"d.yaml": "v: 1\n"})
	if _, err := r.Repo.CreateTag("light", plumbing.NewHash(c1), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Repo.CreateTag("annotated", plumbing.NewHash(c1), &git.CreateTagOptions{
		Tagger: &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}, Message: "release",
	}); err != nil {
		t.Fatal(err)
	}
	c2 := r.Commit("two", nil, map[string]string{"d.yaml": "v: 2\n"})
	tests := []struct {
		name string
		cfg  GitConfig
		want string
	}{
		{"branch", GitConfig{Branch: "main"}, c2},
		{"lightweight_tag", GitConfig{Tag: "light"}, c1},
		{"annotated_tag", GitConfig{Tag: "annotated"}, c1},
		{"pinned_commit", GitConfig{Commit: c1}, c1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL = r.URL()
			g := newGit(t, tc.cfg)
			if s := mustFetch(t, g); s.Commit != tc.want {
				t.Errorf("commit %s, want %s", s.Commit, tc.want)
			}
		})
	}
	if _, err := NewGit(GitConfig{URL: r.URL(), Branch: "main", Tag: "x", CacheDir: t.TempDir()}); err == nil {
		t.Error("branch and tag together were accepted")
	}
	if _, err := NewGit(GitConfig{URL: r.URL(), Commit: "abc", CacheDir: t.TempDir()}); err == nil {
		t.Error("a short commit was accepted")
	}
}

func TestGitOutageKeepsTheCachedHeadAcrossRestarts(t *testing.T) {
	r := testenv.NewRepo(t)
	c1 := r.Commit("one", nil, map[string]string{"d.yaml": "v: 1\n"})
	cache := filepath.Join(t.TempDir(), "cache")
	mustFetch(t, newGit(t, GitConfig{URL: r.URL(), CacheDir: cache}))
	if err := os.RemoveAll(r.Dir); err != nil {
		t.Fatal(err)
	}
	// A new process (a restart) on the same cache, the remote gone.
	s, err := fetch(t, newGit(t, GitConfig{URL: r.URL(), CacheDir: cache}))
	var fe *FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("err %v, want *FetchError", err)
	}
	if s == nil || s.Commit != c1 || string(s.Files["d.yaml"]) != "v: 1\n" {
		t.Fatalf("snapshot %+v, want the cached %s", s, c1)
	}
	// Without a cache there is nothing to fall back on.
	s, err = fetch(t, newGit(t, GitConfig{URL: r.URL()}))
	if !errors.As(err, &fe) || s != nil {
		t.Errorf("empty cache: %v %v, want *FetchError and no snapshot", s, err)
	}
}

func TestGitFetchIsBoundedByItsTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // a git host that accepts the connection and never answers
	}))
	defer srv.Close()
	defer close(release)
	g := newGit(t, GitConfig{URL: srv.URL + "/repo.git", FetchTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := fetch(t, g)
	var fe *FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("err %v, want *FetchError", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("fetch returned after %s, want about 300ms", d)
	}
}

// gitHTTPBackend serves dir's repositories over smart HTTP with git's own
// CGI, behind basic auth with password token.
func gitHTTPBackend(t *testing.T, root, token string) *httptest.Server {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git CLI: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
}

func TestGitHTTPSTokenFromFileOrEnv(t *testing.T) {
	r := testenv.NewRepo(t)
	c1 := r.Commit("one", nil, map[string]string{"d.yaml": "v: 1\n"})
	srv := gitHTTPBackend(t, filepath.Dir(r.Dir), "s3cret")
	defer srv.Close()
	url := srv.URL + "/" + filepath.Base(r.Dir) + "/.git"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGAF_TEST_TOKEN", "s3cret")
	tests := []struct {
		name string
		cfg  GitConfig
		ok   bool
	}{
		{"token_file", GitConfig{TokenFile: tokenFile}, true},
		{"token_env", GitConfig{TokenEnv: "PGAF_TEST_TOKEN"}, true},
		{"no_token", GitConfig{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL = url
			s, err := fetch(t, newGit(t, tc.cfg))
			if tc.ok {
				if err != nil || s.Commit != c1 {
					t.Fatalf("fetch: %v %v, want %s", s, err, c1)
				}
				return
			}
			var fe *FetchError
			if !errors.As(err, &fe) {
				t.Fatalf("err %v, want *FetchError", err)
			}
		})
	}
	t.Run("token_env_unset", func(t *testing.T) {
		_, err := fetch(t, newGit(t, GitConfig{URL: url, TokenEnv: "PGAF_TEST_TOKEN_UNSET"}))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("err %v, want *ConfigError", err)
		}
	})
}

func TestGitVerification(t *testing.T) {
	trusted, ring := testenv.NewKey(t, "trusted")
	stranger, _ := testenv.NewKey(t, "stranger")
	r := testenv.NewRepo(t)
	good := r.Commit("signed", trusted, map[string]string{"d.yaml": "v: 1\n"})
	cache := filepath.Join(t.TempDir(), "cache")
	g := newGit(t, GitConfig{URL: r.URL(), CacheDir: cache, Keyring: ring})
	s := mustFetch(t, g)
	if s.Commit != good || !strings.Contains(s.SignedBy, "trusted") {
		t.Fatalf("signed head: %s signed by %q", s.Commit, s.SignedBy)
	}

	tests := []struct {
		name     string
		key      *openpgp.Entity
		unsigned bool
	}{
		{"unsigned", nil, true},
		{"untrusted_key", stranger, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := r.Commit(tc.name, tc.key, map[string]string{"d.yaml": "v: bad\n"})
			s, err := fetch(t, g)
			var ve *VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("err %v, want *VerificationError", err)
			}
			if ve.Commit != bad || ve.Unsigned != tc.unsigned {
				t.Errorf("refused %s unsigned=%v, want %s unsigned=%v", ve.Commit, ve.Unsigned, bad, tc.unsigned)
			}
			if s == nil || s.Commit != good || string(s.Files["d.yaml"]) != "v: 1\n" {
				t.Errorf("fallback %+v, want the last trusted %s", s, good)
			}
			// After a restart the last trusted commit is still known.
			s, _ = fetch(t, newGit(t, GitConfig{URL: r.URL(), CacheDir: cache, Keyring: ring}))
			if s == nil || s.Commit != good {
				t.Errorf("after restart: fallback %+v, want %s", s, good)
			}
		})
	}
	next := r.Commit("signed again", trusted, map[string]string{"d.yaml": "v: 2\n"})
	if s := mustFetch(t, g); s.Commit != next {
		t.Errorf("next signed commit: %s, want %s", s.Commit, next)
	}

	// An older signed commit pushed back as the head (a forced push) is a
	// rollback: refused, before and after a restart, and next stays in
	// force, unless the configuration allows it.
	r.SetHead(good)
	for _, gg := range []*Git{g, newGit(t, GitConfig{URL: r.URL(), CacheDir: cache, Keyring: ring})} {
		s, err := fetch(t, gg)
		var ve *VerificationError
		if !errors.As(err, &ve) || ve.Commit != good || ve.RollbackOf != next || !strings.Contains(err.Error(), "rollback") {
			t.Errorf("rollback to %s: err %v, want a *VerificationError naming %s as the last trusted", good, err, next)
		}
		if s == nil || s.Commit != next {
			t.Errorf("rollback: fallback %+v, want the last trusted %s", s, next)
		}
	}
	allowed := newGit(t, GitConfig{URL: r.URL(), CacheDir: filepath.Join(t.TempDir(), "c2"), Keyring: ring, AllowRollback: true})
	mustFetch(t, allowed) // good, the head
	r.SetHead(next)
	mustFetch(t, allowed)
	r.SetHead(good)
	if s, err := fetch(t, allowed); err != nil || s.Commit != good {
		t.Errorf("allow_rollback: %+v, %v; want %s", s, err, good)
	}
	// A new signed commit on top of the older one is not a rollback: the
	// way to go back is a new commit.
	revert := r.Commit("back to v1", trusted, map[string]string{"d.yaml": "v: 1\n"})
	if s, err := fetch(t, g); err != nil || s.Commit != revert {
		t.Errorf("a new commit after the rollback was refused: %+v, %v", s, err)
	}
}
