package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/pgaf-gitops/reconciler/desired"
)

// DefaultFetchTimeout bounds one fetch when GitConfig.FetchTimeout is zero.
const DefaultFetchTimeout = 30 * time.Second

// remoteName is the name of the remote in the cache repository.
const remoteName = "origin"

// lastTrustedFile, in the cache directory, holds the SHA of the last commit
// that passed verification, so that it stays in force across restarts.
const lastTrustedFile = "pgaf-last-trusted"

// GitConfig says where the desired state lives in git and how to reach it.
type GitConfig struct {
	// URL of the remote: ssh://git@host/repo.git, git@host:repo.git,
	// https://host/repo.git or file:///path/to/repo.
	URL string
	// Exactly one of Branch, Tag and Commit (a full SHA) names the head.
	// With none, Branch is "main".
	Branch string
	Tag    string
	Commit string
	// Path inside the repository: a YAML file, or a directory whose *.yaml
	// and *.yml files (not those of subdirectories, nor hidden ones) form
	// the desired state. Empty means the repository's root directory.
	Path string
	// CacheDir holds a bare clone that survives restarts.
	CacheDir string
	// SSHKeyFile is the deploy key (unencrypted private key) for ssh URLs.
	SSHKeyFile string
	// SSHKnownHosts are known_hosts files holding the git host's key. They
	// are required for ssh URLs: an unknown or changed host key is refused.
	SSHKnownHosts []string
	// TokenFile or TokenEnv give the token for https URLs (sent as the
	// password of basic auth, as git hosts expect); Username defaults to
	// "git".
	TokenFile string
	TokenEnv  string
	Username  string
	// FetchTimeout bounds each fetch (default DefaultFetchTimeout).
	FetchTimeout time.Duration
	// Keyring is an armored OpenPGP public keyring file. When set, only a
	// head commit signed by one of its keys is used, and a head that is an
	// ancestor of the last trusted commit (an older signed state pushed
	// again) is refused unless AllowRollback is set or Commit pins it.
	Keyring       string
	AllowRollback bool
}

// Git is a desired-state source in a git repository.
type Git struct {
	cfg  GitConfig
	repo *git.Repository
	// lastTrusted is the SHA of the last commit that passed verification.
	lastTrusted string
}

// NewGit checks cfg and opens (or creates) the cache repository. It does not
// reach the remote.
func NewGit(cfg GitConfig) (*Git, error) {
	if cfg.URL == "" {
		return nil, &ConfigError{Field: "url", Err: errors.New("empty")}
	}
	n := 0
	for _, s := range []string{cfg.Branch, cfg.Tag, cfg.Commit} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, &ConfigError{Field: "branch/tag/commit", Err: errors.New("give only one")}
	case n == 0:
		cfg.Branch = "main"
	}
	if cfg.Commit != "" && !plumbing.IsHash(cfg.Commit) {
		return nil, &ConfigError{Field: "commit", Err: fmt.Errorf("%q is not a full 40-hex commit SHA", cfg.Commit)}
	}
	cfg.Path = strings.Trim(path.Clean("/"+cfg.Path), "/")
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.CacheDir == "" {
		return nil, &ConfigError{Field: "cache_dir", Err: errors.New("empty")}
	}
	ep, err := transport.NewEndpoint(cfg.URL)
	if err != nil {
		return nil, &ConfigError{Field: "url", Err: err}
	}
	if ep.Protocol == "ssh" && len(cfg.SSHKnownHosts) == 0 {
		return nil, &ConfigError{Field: "ssh_known_hosts", Err: errors.New("required for an ssh URL: the git host's key is checked strictly")}
	}
	if cfg.TokenFile != "" && cfg.TokenEnv != "" {
		return nil, &ConfigError{Field: "token_file/token_env", Err: errors.New("give only one")}
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, &ConfigError{Field: "cache_dir", Err: err}
	}
	repo, err := git.PlainOpen(cfg.CacheDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(cfg.CacheDir, true)
	}
	if err != nil {
		return nil, &ConfigError{Field: "cache_dir", Err: err}
	}
	if err := ensureRemote(repo, cfg.URL); err != nil {
		return nil, &ConfigError{Field: "cache_dir", Err: err}
	}
	g := &Git{cfg: cfg, repo: repo}
	if b, err := os.ReadFile(filepath.Join(cfg.CacheDir, lastTrustedFile)); err == nil {
		g.lastTrusted = strings.TrimSpace(string(b))
	}
	return g, nil
}

// ensureRemote points the cache's remote at url (the configuration may have
// changed between two runs; objects are content-addressed, so they stay).
func ensureRemote(repo *git.Repository, url string) error {
	r, err := repo.Remote(remoteName)
	if err == nil && len(r.Config().URLs) == 1 && r.Config().URLs[0] == url {
		return nil
	}
	if err == nil {
		if err := repo.DeleteRemote(remoteName); err != nil {
			return err
		}
	}
	_, err = repo.CreateRemote(&gitconfig.RemoteConfig{Name: remoteName, URLs: []string{url}})
	return err
}

// String describes the source: URL, ref and path.
func (g *Git) String() string {
	ref := "branch " + g.cfg.Branch
	switch {
	case g.cfg.Tag != "":
		ref = "tag " + g.cfg.Tag
	case g.cfg.Commit != "":
		ref = "commit " + short(g.cfg.Commit)
	}
	p := g.cfg.Path
	if p == "" {
		p = "/"
	}
	return fmt.Sprintf("%s (%s, path %s)", redactURL(g.cfg.URL), ref, p)
}

// redactURL drops a password from a URL before it is printed.
func redactURL(u string) string {
	ep, err := transport.NewEndpoint(u)
	if err != nil || ep.Password == "" {
		return u
	}
	ep.Password = "xxxxx"
	return ep.String()
}

// Fetch fetches the head from the remote (bounded by FetchTimeout), then
// reads the desired-state files of the head commit, verifying it first
// when a keyring is configured. See Source for the errors.
func (g *Git) Fetch(ctx context.Context) (*Snapshot, error) {
	fctx, cancel := context.WithTimeout(ctx, g.cfg.FetchTimeout)
	ferr := g.fetch(fctx)
	cancel()
	var ce *ConfigError
	if errors.As(ferr, &ce) {
		return nil, ferr
	}
	c, err := g.head()
	if err != nil {
		if ferr != nil {
			return nil, ferr
		}
		return nil, &FetchError{Source: g.String(), Op: "resolve", Err: err}
	}
	snap, err := g.snapshot(c)
	var ve *VerificationError
	if errors.As(err, &ve) {
		return g.fallback(), err
	}
	if err != nil {
		return nil, err
	}
	if ferr != nil {
		return snap, ferr
	}
	return snap, nil
}

// fallback is the last trusted commit's snapshot, or nil.
func (g *Git) fallback() *Snapshot {
	if g.lastTrusted == "" {
		return nil
	}
	c, err := g.repo.CommitObject(plumbing.NewHash(g.lastTrusted))
	if err != nil {
		return nil
	}
	snap, err := g.snapshot(c)
	if err != nil {
		return nil
	}
	return snap
}

// refSpecs are what one fetch asks for.
func (g *Git) refSpecs() []gitconfig.RefSpec {
	switch {
	case g.cfg.Tag != "":
		return []gitconfig.RefSpec{gitconfig.RefSpec("+refs/tags/" + g.cfg.Tag + ":refs/tags/" + g.cfg.Tag)}
	case g.cfg.Commit != "":
		return []gitconfig.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
	}
	return []gitconfig.RefSpec{gitconfig.RefSpec("+refs/heads/" + g.cfg.Branch + ":refs/remotes/origin/" + g.cfg.Branch)}
}

// fetch brings the remote's ref into the cache. A pinned commit already in
// the cache needs no fetch: it cannot change.
func (g *Git) fetch(ctx context.Context) error {
	if g.cfg.Commit != "" {
		if _, err := g.repo.CommitObject(plumbing.NewHash(g.cfg.Commit)); err == nil {
			return nil
		}
	}
	auth, err := g.auth()
	if err != nil {
		return err
	}
	err = g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   g.refSpecs(),
		Auth:       auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err == nil || errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timeout %s)", err, g.cfg.FetchTimeout)
	}
	return &FetchError{Source: g.String(), Op: "fetch", Err: err}
}

// auth builds the credentials for the URL's protocol. Key, known_hosts and
// token files are read at every fetch, so they can be rotated in place.
func (g *Git) auth() (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(g.cfg.URL)
	if err != nil {
		return nil, &ConfigError{Field: "url", Err: err}
	}
	switch ep.Protocol {
	case "ssh":
		user := ep.User
		if user == "" {
			user = "git"
		}
		if g.cfg.SSHKeyFile == "" {
			return nil, &ConfigError{Field: "ssh_key", Err: errors.New("required for an ssh URL")}
		}
		pk, err := gitssh.NewPublicKeysFromFile(user, g.cfg.SSHKeyFile, "")
		if err != nil {
			return nil, &ConfigError{Field: "ssh_key", Err: err}
		}
		db, err := gitssh.NewKnownHostsDb(g.cfg.SSHKnownHosts...)
		if err != nil {
			return nil, &ConfigError{Field: "ssh_known_hosts", Err: err}
		}
		port := ep.Port
		if port == 0 {
			port = 22
		}
		pk.HostKeyCallback = db.HostKeyCallback()
		pk.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port)))
		return pk, nil
	case "http", "https":
		tok, err := g.token()
		if err != nil || tok == "" {
			return nil, err
		}
		user := g.cfg.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: tok}, nil
	}
	return nil, nil
}

func (g *Git) token() (string, error) {
	switch {
	case g.cfg.TokenFile != "":
		b, err := os.ReadFile(g.cfg.TokenFile)
		if err != nil {
			return "", &ConfigError{Field: "token_file", Err: err}
		}
		return strings.TrimSpace(string(b)), nil
	case g.cfg.TokenEnv != "":
		v, ok := os.LookupEnv(g.cfg.TokenEnv)
		if !ok || v == "" {
			return "", &ConfigError{Field: "token_env", Err: fmt.Errorf("$%s is not set", g.cfg.TokenEnv)}
		}
		return v, nil
	}
	return "", nil
}

// head resolves the configured ref in the cache to a commit.
func (g *Git) head() (*object.Commit, error) {
	var h plumbing.Hash
	switch {
	case g.cfg.Commit != "":
		h = plumbing.NewHash(g.cfg.Commit)
	case g.cfg.Tag != "":
		ref, err := g.repo.Reference(plumbing.NewTagReferenceName(g.cfg.Tag), true)
		if err != nil {
			return nil, fmt.Errorf("tag %s: %w", g.cfg.Tag, err)
		}
		h = ref.Hash()
		if tag, err := g.repo.TagObject(h); err == nil { // annotated
			c, err := tag.Commit()
			if err != nil {
				return nil, fmt.Errorf("tag %s: %w", g.cfg.Tag, err)
			}
			return c, nil
		}
	default:
		ref, err := g.repo.Reference(plumbing.NewRemoteReferenceName(remoteName, g.cfg.Branch), true)
		if err != nil {
			return nil, fmt.Errorf("branch %s: %w", g.cfg.Branch, err)
		}
		h = ref.Hash()
	}
	c, err := g.repo.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", short(h.String()), err)
	}
	return c, nil
}

// snapshot verifies c (when a keyring is set) and reads its files.
func (g *Git) snapshot(c *object.Commit) (*Snapshot, error) {
	sha := c.Hash.String()
	snap := &Snapshot{
		Revision: sha,
		Commit:   sha,
		Time:     c.Committer.When,
		Author:   c.Author.Name,
		Subject:  strings.SplitN(strings.TrimSpace(c.Message), "\n", 2)[0],
	}
	if g.cfg.Keyring != "" {
		signer, err := g.verify(c)
		if err != nil {
			return nil, err
		}
		snap.SignedBy = signer
		if err := g.refuseRollback(c); err != nil {
			return nil, err
		}
	}
	files, err := g.files(c)
	if err != nil {
		return nil, err
	}
	snap.Files = files
	if g.cfg.Keyring != "" && g.lastTrusted != sha {
		g.lastTrusted = sha
		// Best effort: losing it only loses the fallback after a restart.
		_ = os.WriteFile(filepath.Join(g.cfg.CacheDir, lastTrustedFile), []byte(sha+"\n"), 0o600)
	}
	return snap, nil
}

// refuseRollback returns a *VerificationError when c is a strict ancestor
// of the last trusted commit: a signature proves who wrote a state, not
// that it is the newest, and a forced fetch would otherwise take an older
// signed commit pushed as the head. A commit pinned in the configuration
// is the operator's choice; AllowRollback turns the check off.
func (g *Git) refuseRollback(c *object.Commit) error {
	if g.cfg.AllowRollback || g.cfg.Commit != "" || g.lastTrusted == "" || g.lastTrusted == c.Hash.String() {
		return nil
	}
	last, err := g.repo.CommitObject(plumbing.NewHash(g.lastTrusted))
	if err != nil {
		return nil // the last trusted commit is gone from the cache: nothing to compare with
	}
	older, err := c.IsAncestor(last)
	if err != nil {
		return &FetchError{Source: g.String(), Op: "compare with the last trusted commit", Err: err}
	}
	if older {
		return &VerificationError{Commit: c.Hash.String(), RollbackOf: g.lastTrusted}
	}
	return nil
}

// verify checks c's OpenPGP signature against the keyring, read at every
// call so that keys can be added or revoked without a restart.
func (g *Git) verify(c *object.Commit) (string, error) {
	ring, err := os.ReadFile(g.cfg.Keyring)
	if err != nil {
		return "", &ConfigError{Field: "keyring", Err: err}
	}
	if strings.TrimSpace(c.PGPSignature) == "" {
		return "", &VerificationError{Commit: c.Hash.String(), Unsigned: true}
	}
	e, err := c.Verify(string(ring))
	if err != nil {
		return "", &VerificationError{Commit: c.Hash.String(), Err: err}
	}
	who := strings.ToUpper(e.PrimaryKey.KeyIdString())
	// The key's primary identity (not the first of a map's random order):
	// the same signer is named the same way on every run.
	if id := e.PrimaryIdentity(); id != nil {
		who = id.Name + " " + who
	}
	return who, nil
}

// files reads the desired-state files of c at the configured path.
func (g *Git) files(c *object.Commit) (map[string][]byte, error) {
	sha := c.Hash.String()
	tree, err := c.Tree()
	if err != nil {
		return nil, &FetchError{Source: g.String(), Op: "read", Err: err}
	}
	p := g.cfg.Path
	if p != "" {
		if f, err := tree.File(p); err == nil {
			b, err := readBlob(f)
			if err != nil {
				return nil, &FetchError{Source: g.String(), Op: "read " + p, Err: err}
			}
			return map[string][]byte{p: b}, nil
		}
		tree, err = tree.Tree(p)
		if err != nil {
			return nil, &PathError{Commit: sha, Path: p, Msg: "no such file or directory in this commit"}
		}
	}
	files := map[string][]byte{}
	for _, e := range tree.Entries {
		if !e.Mode.IsFile() || strings.HasPrefix(e.Name, ".") || !desired.IsYAMLName(e.Name) {
			continue
		}
		f, err := tree.TreeEntryFile(&e)
		if err != nil {
			return nil, &FetchError{Source: g.String(), Op: "read", Err: err}
		}
		b, err := readBlob(f)
		if err != nil {
			return nil, &FetchError{Source: g.String(), Op: "read " + e.Name, Err: err}
		}
		files[path.Join(p, e.Name)] = b
	}
	if len(files) == 0 {
		name := p
		if name == "" {
			name = "/"
		}
		return nil, &PathError{Commit: sha, Path: name, Msg: "no .yaml or .yml files in this directory"}
	}
	return files, nil
}

// readBlob reads at most one byte more than desired.MaxFileSize, enough for
// desired.Parse to refuse a file that is too large.
func readBlob(f *object.File) ([]byte, error) {
	r, err := f.Reader()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, desired.MaxFileSize+1))
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return b, err
}
