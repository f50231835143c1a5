//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PgbenchClients is how many clients the load runs, as a busy application
// would hold connections.
const PgbenchClients = 16

// Load is a write load from pgbench (Debian's postgresql-15 ships it)
// through an application's connection string, as printed by `reconciler
// dsn`: the TPC-B-like default script, PgbenchClients clients. pgbench
// aborts a client whose connection fails and exits once every client has,
// so Load starts it again (a new run, new connections through the string,
// which reach the new primary) until Stop: an application's reconnection.
// It records pgbench's per-second progress lines with the wall-clock time
// they arrived.
type Load struct {
	dsn     string
	clients int
	cancel  context.CancelFunc
	done    chan struct{}

	mu       sync.Mutex
	samples  []LoadSample
	runs     int
	lastErr  string
	finished int64 // transactions pgbench reported as processed, all runs
}

// LoadSample is one progress line of pgbench.
type LoadSample struct {
	At     time.Time
	TPS    float64
	Failed int64
}

// Pgbench is the pgbench binary: PATH, or Debian's postgresql-15 location.
func Pgbench() string {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	return "/usr/lib/postgresql/15/bin/pgbench"
}

// InitLoad creates pgbench's tables at scale (about 15 MB per unit)
// through dsn, dropping earlier ones.
func InitLoad(ctx context.Context, dsn string, scale int) error {
	out, err := exec.CommandContext(ctx, Pgbench(), "-i", "-q", "-s", strconv.Itoa(scale), dsn).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %w: %s", err, tail(string(out), 10))
	}
	return nil
}

// StartLoad starts pgbench with clients clients on tables InitLoad made.
func StartLoad(ctx context.Context, dsn string, clients int) *Load {
	lctx, cancel := context.WithCancel(ctx)
	l := &Load{dsn: dsn, clients: clients, cancel: cancel, done: make(chan struct{})}
	go l.loop(lctx)
	return l
}

var (
	progressLine = regexp.MustCompile(`^progress: [0-9.]+ s, ([0-9.]+) tps, .*?(?:, ([0-9]+) failed)?$`)
	processedTx  = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

func (l *Load) loop(ctx context.Context) {
	defer close(l.done)
	for ctx.Err() == nil {
		l.mu.Lock()
		l.runs++
		l.mu.Unlock()
		threads := min(l.clients, 2)
		cmd := exec.CommandContext(ctx, Pgbench(), "-n", "-c", strconv.Itoa(l.clients), "-j", strconv.Itoa(threads),
			"-T", "86400", "-P", "1", l.dsn)
		// pgbench reports on SIGINT as at the end of a run.
		cmd.Cancel = func() error { return cmd.Process.Signal(interrupt) }
		cmd.WaitDelay = 5 * time.Second
		stderr, err := cmd.StderrPipe()
		if err != nil {
			l.fail(err)
			return
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			l.fail(err)
			return
		}
		if err := cmd.Start(); err != nil {
			l.fail(err)
			return
		}
		var wg sync.WaitGroup
		read := func(sc *bufio.Scanner) {
			defer wg.Done()
			for sc.Scan() {
				l.line(sc.Text())
			}
		}
		wg.Add(2)
		go read(bufio.NewScanner(stderr))
		go read(bufio.NewScanner(stdout))
		wg.Wait()
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			l.fail(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // as an application retries
		}
	}
}

func (l *Load) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := progressLine.FindStringSubmatch(strings.TrimSpace(s)); m != nil {
		tps, _ := strconv.ParseFloat(m[1], 64)
		failed, _ := strconv.ParseInt(m[2], 10, 64)
		l.samples = append(l.samples, LoadSample{At: time.Now(), TPS: tps, Failed: failed})
		return
	}
	if m := processedTx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		l.finished += n
		return
	}
	if strings.Contains(s, "error") || strings.Contains(s, "aborted") || strings.Contains(s, "FATAL") {
		l.lastErr = s
	}
}

func (l *Load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err.Error()
}

// Stop ends the load and waits for pgbench to exit.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}

// TPS is the mean of the progress lines that arrived in [from, to), and how
// many there were.
func (l *Load) TPS(from, to time.Time) (float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum, n := 0.0, 0
	for _, s := range l.samples {
		if !s.At.Before(from) && s.At.Before(to) {
			sum += s.TPS
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

// ErrNoLoad is returned by WaitFlowing when pgbench reported no
// transactions in time.
var ErrNoLoad = errors.New("pgbench: no transactions")

// WaitFlowing polls until pgbench reported a second with transactions.
func (l *Load) WaitFlowing(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	return poll(ctx, timeout, "pgbench running", func(ctx context.Context) (bool, string, error) {
		tps, n := l.TPS(start, time.Now().Add(time.Second))
		return n > 0 && tps > 0, l.Describe(), nil
	})
}

// Describe summarises the load for logs.
func (l *Load) Describe() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := fmt.Sprintf("pgbench, %d clients: %d runs, %d progress lines", l.clients, l.runs, len(l.samples))
	if len(l.samples) > 0 {
		s += fmt.Sprintf(", last %.0f tps", l.samples[len(l.samples)-1].TPS)
	}
	if l.lastErr != "" {
		s += " (last error: " + l.lastErr + ")"
	}
	return s
}

// interrupt is the signal that asks pgbench to stop and report.
var interrupt = syscall.SIGINT
