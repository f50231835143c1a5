package source

import (
	"context"
	"fmt"
	"time"
)

// Snapshot is the desired state's files at one revision.
type Snapshot struct {
	// Revision identifies the content: the commit SHA for git, or
	// "sha256:<hex>" of the names and contents for a directory.
	Revision string
	// Commit is the git commit SHA, "" for a directory (desired.State.Commit).
	Commit string
	// Files maps the name to print in messages (the path inside the repo,
	// or on disk) to the file's contents: desired.Parse's input.
	Files map[string][]byte
	// Time, Author and Subject describe the commit (zero for a directory).
	Time    time.Time
	Author  string
	Subject string
	// SignedBy names the trusted key that signed the commit, when
	// verification is on.
	SignedBy string
}

// Source is where the desired state comes from.
//
// Fetch returns the files at the source's head. When the head cannot be
// used, it returns an error together with the newest usable snapshot it
// still has, or a nil snapshot when it has none:
//   - the remote did not answer: *FetchError, and the head fetched before
//     (kept in the cache across restarts);
//   - the head is not signed by a trusted key: *VerificationError, and the
//     last commit that passed verification.
//
// Any other error comes with a nil snapshot.
type Source interface {
	Fetch(ctx context.Context) (*Snapshot, error)
	// String describes the source for logs and /status.
	String() string
}

// FetchError is a failure to reach the remote or read the cache: transient,
// retried with backoff.
type FetchError struct {
	Source string
	Op     string // "fetch", "open cache", "resolve", "read"
	Err    error
}

func (e *FetchError) Error() string { return fmt.Sprintf("source %s: %s: %v", e.Source, e.Op, e.Err) }
func (e *FetchError) Unwrap() error { return e.Err }

// VerificationError is a head commit that verification refuses: unsigned,
// or signed by a key outside the trusted keyring. It needs a person (a
// signed commit), so it is not retried before the next commit.
type VerificationError struct {
	Commit string
	// Unsigned is true when the commit carries no signature at all.
	Unsigned bool
	Err      error // what OpenPGP said, for a signed but untrusted commit
	// RollbackOf is set when Commit is signed but is an ancestor of this
	// last trusted commit: an older state pushed as the new head.
	RollbackOf string
}

func (e *VerificationError) Error() string {
	if e.RollbackOf != "" {
		return fmt.Sprintf("commit %s is an ancestor of %s, the last trusted commit: a rollback to an older signed state is refused (source.git.allow_rollback: true allows it)", short(e.Commit), short(e.RollbackOf))
	}
	if e.Unsigned {
		return fmt.Sprintf("commit %s is not signed; verification requires a signature by a trusted key", short(e.Commit))
	}
	return fmt.Sprintf("commit %s is not signed by a trusted key: %v", short(e.Commit), e.Err)
}

func (e *VerificationError) Unwrap() error { return e.Err }

// ConfigError is a source configured wrongly (no known_hosts for ssh, an
// unreadable key or keyring, two refs at once): it needs a person.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("source: %s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// PathError is a desired-state path that the commit does not hold (or that
// holds no YAML file): the commit is unusable, like an invalid one.
type PathError struct {
	Commit string
	Path   string
	Msg    string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("commit %s: %s: %s", short(e.Commit), e.Path, e.Msg)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
