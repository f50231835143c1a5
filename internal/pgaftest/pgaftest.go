// Package pgaftest starts a real pg_auto_failover monitor, and nodes that
// register with it, on loopback for tests. Every process runs in its own
// temporary directory (PGDATA, pg_autoctl's config, state and pid files) and
// is stopped, and the directory removed, in t.Cleanup.
//
// pg_autoctl refuses to run as root: when the test runs as root the
// processes run as the "postgres" user that the Debian packages create.
// When pg_autoctl is not installed the test is skipped, unless the CI
// environment variable is set, in which case it fails.
package pgaftest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Host is the address every process listens on and registers with.
const Host = "127.0.0.1"

// Timeouts for readiness. A fresh monitor answers in about two seconds on
// this machine, a standby needs a pg_basebackup.
const (
	MonitorReadyTimeout = 60 * time.Second
	NodeReadyTimeout    = 120 * time.Second
	stopTimeout         = 60 * time.Second
)

// env describes how to run pg_autoctl on this machine.
type env struct {
	pgAutoctl string // path of pg_autoctl
	binDir    string // PostgreSQL's bin directory (pg_ctl, initdb, ...)
	cred      *syscall.Credential
	uid, gid  int
	osUser    string // the user the processes run as: initdb's superuser
}

// lookEnv finds pg_autoctl and pg_ctl, and the user to run them as. It
// skips the test (or fails it under CI) when they are absent.
func lookEnv(t testing.TB) *env {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatalf("pgaftest: %s (CI is set, so this is a failure)", msg)
		}
		t.Skipf("pgaftest: %s; install postgresql-15, postgresql-15-auto-failover and pg-auto-failover-cli to run this test", msg)
	}
	ac, err := exec.LookPath("pg_autoctl")
	if err != nil {
		missing("pg_autoctl not found in PATH")
	}
	binDir, err := postgresBinDir()
	if err != nil {
		missing("%v", err)
	}
	e := &env{pgAutoctl: ac, binDir: binDir, uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing("running as root and there is no postgres user to run pg_autoctl as: %v", err)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("pgaftest: user postgres: %v", err)
		}
		e.uid, e.gid = uid, gid
		e.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		e.osUser = "postgres"
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("pgaftest: current user: %v", err)
		}
		e.osUser = u.Username
	}
	return e
}

// postgresBinDir returns PGAFTEST_PG_BINDIR, or the newest
// /usr/lib/postgresql/<major>/bin holding pg_ctl.
func postgresBinDir() (string, error) {
	if d := os.Getenv("PGAFTEST_PG_BINDIR"); d != "" {
		return d, nil
	}
	matches, err := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if err != nil {
		return "", fmt.Errorf("looking for pg_ctl: %w", err)
	}
	if len(matches) == 0 {
		return "", errors.New("no /usr/lib/postgresql/*/bin/pg_ctl (set PGAFTEST_PG_BINDIR)")
	}
	major := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	slices.SortFunc(matches, func(a, b string) int { return major(a) - major(b) })
	return filepath.Dir(matches[len(matches)-1]), nil
}

// FreePort returns a TCP port on Host that nothing listened on a moment
// ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		t.Fatalf("pgaftest: free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("pgaftest: free port: %v", err)
	}
	return port
}

// Monitor is a running pg_auto_failover monitor.
type Monitor struct {
	Port int
	// Dir holds every file of this monitor and of the nodes started with
	// StartNode; it is removed in t.Cleanup.
	Dir string

	env  *env
	proc *process
}

// ConnString is the monitor's URI for autoctl_node, the role pg_autoctl
// and the reconciler use.
func (m *Monitor) ConnString() string {
	return connString("autoctl_node", Host, m.Port, "pg_auto_failover")
}

// SuperuserConnString connects to the monitor's database as the superuser
// initdb created (the OS user pg_autoctl ran as). The monitor's pg_hba
// trusts every local user on loopback only (initdb's defaults with
// --auth trust); from another host only autoctl_node is admitted.
func (m *Monitor) SuperuserConnString() string {
	return connString(m.env.osUser, Host, m.Port, "pg_auto_failover")
}

func connString(user, host string, port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(user),
		Host:     net.JoinHostPort(host, strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable&application_name=pgaftest",
	}
	return u.String()
}

// StartMonitor creates and runs a monitor (`pg_autoctl create monitor
// --run`) in a new temporary directory, waits until it answers as
// autoctl_node, and registers its stop in t.Cleanup.
func StartMonitor(t testing.TB) *Monitor {
	t.Helper()
	e := lookEnv(t)
	dir, err := os.MkdirTemp("", "pgaftest-")
	if err != nil {
		t.Fatalf("pgaftest: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgaftest: remove %s: %v", dir, err)
		}
	})
	if err := os.Chown(dir, e.uid, e.gid); err != nil {
		t.Fatalf("pgaftest: %v", err)
	}
	m := &Monitor{Port: FreePort(t), Dir: dir, env: e}
	m.proc = m.start(t, "monitor", []string{
		"create", "monitor",
		"--pgdata", filepath.Join(dir, "monitor"),
		"--pgport", strconv.Itoa(m.Port),
		"--hostname", Host,
		"--auth", "trust", "--no-ssl", "--run",
	})
	m.WaitFor(t, MonitorReadyTimeout, "monitor answers as autoctl_node", func(ctx context.Context, c *pgx.Conn) (bool, error) {
		var v string
		err := c.QueryRow(ctx, "select extversion from pg_extension where extname = 'pgautofailover'").Scan(&v)
		return err == nil && v != "", nil
	})
	return m
}

// Node is a running pg_autoctl keeper with its PostgreSQL.
type Node struct {
	Name string
	Port int

	proc *process
}

// ConnString connects to the node's postgres database as the superuser.
func (n *Node) ConnString(m *Monitor) string {
	return connString(m.env.osUser, Host, n.Port, "postgres")
}

// StartNode creates and runs a PostgreSQL node registered with the monitor
// (`pg_autoctl create postgres --run`) and waits until the monitor reports
// it in a stable state (single, primary or secondary, reported = assigned).
// The node is stopped in t.Cleanup unless Stop was called before.
func (m *Monitor) StartNode(t testing.TB, name string) *Node {
	t.Helper()
	n := &Node{Name: name, Port: FreePort(t)}
	n.proc = m.start(t, "node "+name, []string{
		"create", "postgres",
		"--pgdata", filepath.Join(m.Dir, "node-"+name),
		"--pgport", strconv.Itoa(n.Port),
		"--hostname", Host,
		"--name", name,
		"--monitor", m.ConnString(),
		"--auth", "trust", "--no-ssl", "--run",
	})
	m.waitFor(t, NodeReadyTimeout, "node "+name+" stable", []*process{m.proc, n.proc}, func(ctx context.Context, c *pgx.Conn) (bool, error) {
		var reported, goal string
		err := c.QueryRow(ctx, `select reportedstate::text, goalstate::text from pgautofailover.node where nodename = $1`, name).Scan(&reported, &goal)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return reported == goal && (goal == "single" || goal == "primary" || goal == "secondary"), nil
	})
	return n
}

// Stop stops the node's pg_autoctl (and its PostgreSQL). Calling it again
// is a no-op.
func (n *Node) Stop(t testing.TB) {
	t.Helper()
	if err := n.proc.stop(); err != nil {
		t.Errorf("pgaftest: stop node %s: %v", n.Name, err)
	}
}

// WaitStable waits until the monitor shows want nodes, each with reported
// state equal to assigned state, exactly one primary (or single) and the
// others secondary.
func (m *Monitor) WaitStable(t testing.TB, want int, timeout time.Duration) {
	t.Helper()
	m.WaitFor(t, timeout, fmt.Sprintf("%d nodes stable", want), func(ctx context.Context, c *pgx.Conn) (bool, error) {
		rows, err := c.Query(ctx, `select reportedstate::text, goalstate::text from pgautofailover.node`)
		if err != nil {
			return false, err
		}
		states, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var s [2]string
			err := r.Scan(&s[0], &s[1])
			return s, err
		})
		if err != nil {
			return false, err
		}
		if len(states) != want {
			return false, nil
		}
		primaries := 0
		for _, s := range states {
			if s[0] != s[1] {
				return false, nil
			}
			switch s[0] {
			case "primary", "single":
				primaries++
			case "secondary":
			default:
				return false, nil
			}
		}
		return primaries == 1, nil
	})
}

// WaitFor polls cond on a connection to the monitor (as autoctl_node)
// every 100 ms until it returns true, and fails the test when timeout
// passes or the monitor's pg_autoctl exits. A connection error is
// retried; an error from cond fails the test at once.
func (m *Monitor) WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context, c *pgx.Conn) (bool, error)) {
	t.Helper()
	m.waitFor(t, timeout, what, []*process{m.proc}, cond)
}

func (m *Monitor) waitFor(t testing.TB, timeout time.Duration, what string, watch []*process, cond func(ctx context.Context, c *pgx.Conn) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := m.poll(ctx, cond)
		if ok {
			return
		}
		var condErr condError
		if errors.As(err, &condErr) {
			t.Fatalf("pgaftest: waiting for %s: %v", what, condErr.err)
		}
		if err != nil {
			last = err
		}
		if p := exited(watch); p != nil {
			t.Fatalf("pgaftest: waiting for %s: %s exited: %v\n%s", what, p.name, p.waitErr, p.tail(40))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgaftest: %s not reached after %v (last error: %v)", what, timeout, last)
		case <-tick.C:
		}
	}
}

type condError struct{ err error }

func (e condError) Error() string { return e.err.Error() }

func (m *Monitor) poll(ctx context.Context, cond func(ctx context.Context, c *pgx.Conn) (bool, error)) (bool, error) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(pctx, m.ConnString())
	if err != nil {
		return false, err
	}
	defer c.Close(context.WithoutCancel(pctx))
	ok, err := cond(pctx, c)
	if err != nil && pctx.Err() == nil {
		return false, condError{err}
	}
	return ok, err
}

// exited returns the first of procs that exited on its own, or nil.
func exited(procs []*process) *process {
	for _, p := range procs {
		if p != nil && p.exitedEarly() {
			return p
		}
	}
	return nil
}

// start runs pg_autoctl with args as the test user, logging to a file in
// m.Dir, and registers its stop in t.Cleanup.
func (m *Monitor) start(t testing.TB, name string, args []string) *process {
	t.Helper()
	e := m.env
	logPath := filepath.Join(m.Dir, strings.ReplaceAll(name, " ", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("pgaftest: %v", err)
	}
	cmd := exec.Command(e.pgAutoctl, args...)
	cmd.Dir = m.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = []string{
		"HOME=" + m.Dir,
		"XDG_CONFIG_HOME=" + filepath.Join(m.Dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(m.Dir, "data"),
		"XDG_RUNTIME_DIR=" + filepath.Join(m.Dir, "run"),
		"PATH=" + e.binDir + ":/usr/bin:/bin",
		"LC_ALL=C",
		"USER=" + e.osUser,
	}
	// Its own process group, so that a stuck tree can be killed whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: e.cred}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("pgaftest: start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgaftest: last lines of %s's log:\n%s", name, p.tail(40))
		}
		if err := p.stop(); err != nil {
			t.Errorf("pgaftest: stop %s: %v", name, err)
		}
	})
	return p
}

// process is one pg_autoctl process tree.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error // valid after done is closed

	mu       sync.Mutex
	stopping bool
	stopped  bool
	stopErr  error
}

func (p *process) exitedEarly() bool {
	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to pg_autoctl, which stops its PostgreSQL, and waits
// for it; after stopTimeout the whole process group is killed. It is
// idempotent.
func (p *process) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return p.stopErr
	}
	p.stopping = true
	p.stopped = true
	p.stopErr = p.stopLocked()
	if err := p.logFile.Close(); err != nil && p.stopErr == nil {
		p.stopErr = err
	}
	return p.stopErr
}

func (p *process) stopLocked() error {
	pid := p.cmd.Process.Pid
	select {
	case <-p.done:
		return nil // already gone (its exit was reported while waiting)
	default:
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM %d: %w", pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("SIGKILL group %d: %w", pid, err)
		}
		<-p.done
		return fmt.Errorf("did not stop within %v of SIGTERM; killed", stopTimeout)
	}
	// pg_autoctl is gone; its PostgreSQL may still be finishing its
	// shutdown. Wait for the group to empty, then kill what is left so
	// that the directory can be removed.
	deadline := time.Now().Add(stopTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		<-tick.C
	}
	left, _ := exec.Command("pgrep", "-a", "-g", strconv.Itoa(pid)).Output()
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGKILL group %d: %w", pid, err)
	}
	return fmt.Errorf("processes were left in group %d %v after pg_autoctl exited; killed:\n%s", pid, stopTimeout, left)
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
