package service

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// Locker makes sure that only one instance acts on a cluster at a time.
type Locker interface {
	// Hold makes sure this instance holds cluster's lock, taking it when
	// free. Another holder gives *HeldError; a lock that cannot be reached
	// (the monitor does not answer) gives *LockUnreachableError.
	Hold(ctx context.Context, st *desired.State, cluster string) error
	// Held lists the clusters whose lock this instance holds.
	Held() []string
	// Close releases every lock.
	Close() error
}

// HeldError says that another instance holds a cluster's lock, and who.
type HeldError struct {
	Cluster string
	Holder  string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("cluster %s: lock held by another instance: %s", e.Cluster, e.Holder)
}

// LockUnreachableError says that the lock could not be reached.
type LockUnreachableError struct {
	Cluster string
	Err     error
}

func (e *LockUnreachableError) Error() string {
	return fmt.Sprintf("cluster %s: lock: %v", e.Cluster, e.Err)
}
func (e *LockUnreachableError) Unwrap() error { return e.Err }

// LockKey is the advisory lock key of a cluster: the same for every
// instance, different for each cluster and formation.
func LockKey(cluster, formation string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "pgaf-reconciler\x00%s\x00%s", cluster, formation)
	return int64(h.Sum64())
}

// MonitorLock holds a PostgreSQL session-level advisory lock on each
// cluster's monitor, as autoctl_node (pg_try_advisory_lock needs no
// privilege). The lock lives as long as the session: an instance that dies,
// even by kill -9, loses it when its connection closes, and the next
// instance takes it. The holder is named by its session's application_name
// and client address, read from pg_stat_activity (visible to the same role).
//
// The lock needs the monitor: while a cluster's monitor does not answer,
// Hold returns *LockUnreachableError and the service only lets steps on
// the monitor itself run (its bring-up or restart), where a second
// instance racing would meet Docker's unique container names.
type MonitorLock struct {
	// Instance is this instance's name, sent as application_name.
	Instance string
	// ConnectTimeout bounds the connection to the monitor (default 5s).
	ConnectTimeout time.Duration

	mu    sync.Mutex // guards held and busy
	held  map[string]*monitorSession
	busy  map[string]*sync.Mutex // one Hold at a time per cluster
	connF func(st *desired.State, c *desired.Cluster) string
}

type monitorSession struct {
	conn    *pgx.Conn
	connStr string
}

// lockSessionParams are set on each lock session: the monitor probes an
// idle session after 5 s and drops it after 3 probes 2 s apart go
// unanswered, so the lock of an instance whose VM or network died is free
// about 11 s later (without them, the kernel's default of 2 hours). An
// instance that dies on a working host closes its connection and frees
// the lock at once.
var lockSessionParams = map[string]string{"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}

// NewMonitorLock returns a lock on the monitors, named instance.
func NewMonitorLock(instance string) *MonitorLock {
	return &MonitorLock{Instance: instance, held: map[string]*monitorSession{}, busy: map[string]*sync.Mutex{}, connF: observe.MonitorConnStringFor}
}

// Hold takes or checks the cluster's advisory lock. Clusters are held
// independently: a monitor that does not answer delays only its own
// cluster's Hold (by up to ConnectTimeout), never another's.
func (m *MonitorLock) Hold(ctx context.Context, st *desired.State, cluster string) error {
	m.mu.Lock()
	busy := m.busy[cluster]
	if busy == nil {
		busy = &sync.Mutex{}
		m.busy[cluster] = busy
	}
	m.mu.Unlock()
	busy.Lock()
	defer busy.Unlock()
	m.mu.Lock()
	s := m.held[cluster] // read under busy: a Hold before this one may just have stored it
	m.mu.Unlock()
	c := findCluster(st, cluster)
	if c == nil {
		return &LockUnreachableError{Cluster: cluster, Err: errors.New("not in the desired state")}
	}
	connStr := m.connF(st, c)
	timeout := m.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if s != nil {
		if s.connStr == connStr && s.conn.Ping(cctx) == nil {
			return nil // the session lives, so does its lock
		}
		_ = s.conn.Close(context.Background())
		m.mu.Lock()
		delete(m.held, cluster)
		m.mu.Unlock()
	}
	cfg, err := pgx.ParseConfig(connStr)
	if err != nil {
		return &LockUnreachableError{Cluster: cluster, Err: err}
	}
	cfg.RuntimeParams["application_name"] = m.Instance
	maps.Copy(cfg.RuntimeParams, lockSessionParams)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return &LockUnreachableError{Cluster: cluster, Err: fmt.Errorf("monitor: %w", err)}
	}
	key := LockKey(c.Name, c.Formation)
	var ok bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		_ = conn.Close(context.Background())
		return &LockUnreachableError{Cluster: cluster, Err: fmt.Errorf("pg_try_advisory_lock: %w", err)}
	}
	if !ok {
		holder := lockHolder(cctx, conn, key)
		_ = conn.Close(context.Background())
		return &HeldError{Cluster: cluster, Holder: holder}
	}
	m.mu.Lock()
	m.held[cluster] = &monitorSession{conn: conn, connStr: connStr}
	m.mu.Unlock()
	return nil
}

// lockHolder names the session that holds key, from pg_locks and
// pg_stat_activity.
func lockHolder(ctx context.Context, conn *pgx.Conn, key int64) string {
	u := uint64(key)
	var app, addr string
	var pid int
	var since time.Time
	err := conn.QueryRow(ctx, `
SELECT coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.pid, a.backend_start
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid`,
		int64(u>>32), int64(u&0xffffffff)).Scan(&app, &addr, &pid, &since)
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return fmt.Sprintf("%q from %s (monitor backend pid %d, connected %s)", app, addr, pid, since.UTC().Format(time.RFC3339))
}

// Held lists the clusters whose lock is held.
func (m *MonitorLock) Held() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.held)
}

// Close ends every session, releasing the locks.
func (m *MonitorLock) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for name, s := range m.held {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.conn.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", name, err))
		}
		cancel()
		delete(m.held, name)
	}
	return errors.Join(errs...)
}

// FileLock holds an flock(2) on one file per cluster in Dir. It protects
// only against a second instance on the same host (or on hosts sharing Dir
// over a filesystem with working flock): use MonitorLock across hosts.
type FileLock struct {
	Dir      string
	Instance string

	mu   sync.Mutex
	held map[string]*os.File
}

// NewFileLock returns a lock in dir, named instance.
func NewFileLock(dir, instance string) *FileLock {
	return &FileLock{Dir: dir, Instance: instance, held: map[string]*os.File{}}
}

// Hold takes or checks the cluster's lock file.
func (f *FileLock) Hold(ctx context.Context, st *desired.State, cluster string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.held[cluster]; ok {
		return nil
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return &LockUnreachableError{Cluster: cluster, Err: err}
	}
	path := filepath.Join(f.Dir, cluster+".lock")
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return &LockUnreachableError{Cluster: cluster, Err: err}
	}
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		_ = fh.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return &HeldError{Cluster: cluster, Holder: fmt.Sprintf("%s (lock file %s)", strings.TrimSpace(string(b)), path)}
		}
		return &LockUnreachableError{Cluster: cluster, Err: err}
	}
	if err := fh.Truncate(0); err == nil {
		_, _ = fh.WriteAt([]byte(fmt.Sprintf("%q pid %d since %s\n", f.Instance, os.Getpid(), time.Now().UTC().Format(time.RFC3339))), 0)
	}
	f.held[cluster] = fh
	return nil
}

// Held lists the clusters whose lock is held.
func (f *FileLock) Held() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedKeys(f.held)
}

// Close releases every lock.
func (f *FileLock) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for name, fh := range f.held {
		if err := fh.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(f.held, name)
	}
	return errors.Join(errs...)
}

// NoLock never refuses: for a single instance by construction, or tests.
type NoLock struct{}

// Hold always succeeds.
func (NoLock) Hold(context.Context, *desired.State, string) error { return nil }

// Held is empty.
func (NoLock) Held() []string { return nil }

// Close does nothing.
func (NoLock) Close() error { return nil }

func findCluster(st *desired.State, name string) *desired.Cluster {
	for i := range st.Clusters {
		if st.Clusters[i].Name == name {
			return &st.Clusters[i]
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
