//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// WriterTable is the table the writer inserts into: one row per
// transaction, keyed by the writer's own sequence number.
const WriterTable = "e2e_acked"

// Ack is one insert the server acknowledged (its COMMIT returned).
type Ack struct {
	Seq    int64
	At     time.Time // when the acknowledgement arrived
	Server string    // inet_server_addr():inet_server_port() of the node that took it
}

// Writer inserts rows continuously through an application's connection
// string, reconnects on error, and records every acknowledged insert and
// every failure. It is the test's application.
type Writer struct {
	dsn    string
	pause  time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	acks     []Ack
	failures []time.Time
	lastErr  string
	next     int64
}

// StartWriter creates the table if needed and starts inserting, one row
// per transaction every pause, until Stop.
func StartWriter(ctx context.Context, dsn string, pause time.Duration) (*Writer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("writer: connect: %w", err)
	}
	_, err = conn.Exec(cctx, `CREATE TABLE IF NOT EXISTS `+WriterTable+` (seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), server text NOT NULL)`)
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("writer: create table: %w", err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	w := &Writer{dsn: dsn, pause: pause, cancel: wcancel, done: make(chan struct{}), next: 1}
	go w.loop(wctx)
	return w, nil
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tick := time.NewTicker(w.pause)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if conn == nil {
			// The connection string's own connect_timeout bounds each host:
			// the writer adds nothing, so it sees what an application sees.
			c, err := pgx.Connect(ctx, w.dsn)
			if err != nil {
				w.fail(ctx, err)
				continue
			}
			conn = c
		}
		w.mu.Lock()
		seq := w.next
		w.mu.Unlock()
		// The application's own deadline on a statement (pgx applies no
		// client-side TCP timeout from the string: it hands tcp_user_timeout
		// to the server), as a Go application would set one.
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var server string
		err := conn.QueryRow(qctx, `INSERT INTO `+WriterTable+` (seq, server) VALUES ($1, host(inet_server_addr()) || ':' || inet_server_port()) RETURNING server`, seq).Scan(&server)
		cancel()
		if err != nil {
			// The commit's fate is unknown: it is not counted as
			// acknowledged, and the next row takes a new number (a retry
			// of the same number could collide with a commit that did
			// happen).
			w.mu.Lock()
			w.next++
			w.mu.Unlock()
			conn.Close(context.Background())
			conn = nil
			w.fail(ctx, err)
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, Ack{Seq: seq, At: time.Now(), Server: server})
		w.next++
		w.mu.Unlock()
	}
}

func (w *Writer) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	w.failures = append(w.failures, time.Now())
	w.lastErr = err.Error()
	w.mu.Unlock()
}

// Stop ends the writer and waits for it.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// Acks returns a copy of every acknowledged insert, in order.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Failures returns how many attempts failed since t, and the last error.
func (w *Writer) Failures(since time.Time) (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range w.failures {
		if !f.Before(since) {
			n++
		}
	}
	return n, w.lastErr
}

// LastAck returns the latest acknowledgement (zero when none).
func (w *Writer) LastAck() Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acks) == 0 {
		return Ack{}
	}
	return w.acks[len(w.acks)-1]
}

// Unavailability is the longest gap between two consecutive acknowledged
// inserts whose second one arrived after since: the write-unavailability
// window of a fault injected at since. Second is when writes resumed.
func (w *Writer) Unavailability(since time.Time) (gap time.Duration, resumed time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.acks); i++ {
		if w.acks[i].At.Before(since) {
			continue
		}
		if d := w.acks[i].At.Sub(w.acks[i-1].At); d > gap {
			gap, resumed = d, w.acks[i].At
		}
	}
	return gap, resumed
}

// Servers counts the acknowledged inserts by the node that took them.
func (w *Writer) Servers(since time.Time) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[string]int{}
	for _, a := range w.acks {
		if !a.At.Before(since) {
			m[a.Server]++
		}
	}
	return m
}

// MissingOn returns the acknowledged sequence numbers that the node at uri
// does not hold.
func MissingOn(ctx context.Context, uri string, acks []Ack) ([]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(cctx, `SELECT seq FROM `+WriterTable)
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		have[s] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []int64
	for _, a := range acks {
		if !have[a.Seq] {
			missing = append(missing, a.Seq)
		}
	}
	return missing, nil
}

// WriterSample is one look at which nodes accepted writes.
type WriterSample struct {
	At      time.Time
	Writers []string // nodes not in recovery
}

// SampleTimeout bounds each probe of the sampler: a connection, or one
// query on a kept connection. A node that does not answer within it counts
// as unreachable for that sample.
const SampleTimeout = 250 * time.Millisecond

// Sampler asks every node, every interval, over a direct connection of its
// own kept open between samples (connect and query each bounded by
// SampleTimeout), whether it accepts writes, and keeps the samples in which
// more than one node did. A node answering "not in recovery and not read
// only" is a writer: an application reaching it could write there.
type Sampler struct {
	nodes  map[string]string // name -> uri
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples int
	bad     []WriterSample
	ignore  map[string]bool
	last    map[string]int // each node's previous inRecovery answer
	events  []string       // state changes and the test's marks, timestamped
	changes []Change       // the same state changes, as data
}

// Change is a node's answer changing between two samples: Answer is
// AnswerWriter, AnswerReadOnly or AnswerUnreachable.
type Change struct {
	At     time.Time
	Node   string
	Answer int
}

// The sampler's answers.
const (
	AnswerWriter      = 0
	AnswerReadOnly    = 1
	AnswerUnreachable = -1
)

// StartSampler starts sampling the nodes (name -> connection string).
func StartSampler(ctx context.Context, nodes map[string]string, every time.Duration) *Sampler {
	sctx, cancel := context.WithCancel(ctx)
	s := &Sampler{nodes: nodes, cancel: cancel, done: make(chan struct{}), ignore: map[string]bool{}, last: map[string]int{}}
	go s.loop(sctx, every)
	return s
}

// Ignore excludes a node from the check while on is true: a node the test
// itself promoted by hand (an induced fork) is a second writer on purpose.
func (s *Sampler) Ignore(node string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignore[node] = on
}

// probe is one node's kept connection.
type probe struct {
	uri  string
	conn *pgx.Conn
}

// ask returns 1 in recovery (or read only), 0 accepting writes, -1
// unreachable; a failed connection is closed and made again next time.
func (p *probe) ask(ctx context.Context) int {
	if p.conn == nil {
		cfg, err := pgx.ParseConfig(p.uri)
		if err != nil {
			return -1
		}
		cfg.ConnectTimeout = SampleTimeout
		cctx, cancel := context.WithTimeout(ctx, SampleTimeout)
		c, err := pgx.ConnectConfig(cctx, cfg)
		cancel()
		if err != nil {
			return -1
		}
		p.conn = c
	}
	qctx, cancel := context.WithTimeout(ctx, SampleTimeout)
	defer cancel()
	var rec bool
	var ro string
	if err := p.conn.QueryRow(qctx, `SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')`).Scan(&rec, &ro); err != nil {
		p.close()
		return -1
	}
	if rec || ro == "on" {
		return 1
	}
	return 0
}

func (p *probe) close() {
	if p.conn != nil {
		cctx, cancel := context.WithTimeout(context.Background(), SampleTimeout)
		_ = p.conn.Close(cctx)
		cancel()
		p.conn = nil
	}
}

func (s *Sampler) loop(ctx context.Context, every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	names := make([]string, 0, len(s.nodes))
	probes := map[string]*probe{}
	for n, uri := range s.nodes {
		names = append(names, n)
		probes[n] = &probe{uri: uri}
	}
	defer func() {
		for _, p := range probes {
			p.close()
		}
	}()
	sort.Strings(names)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var mu sync.Mutex
		var writers []string
		answers := map[string]int{}
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Go(func() {
				a := probes[name].ask(ctx)
				mu.Lock()
				answers[name] = a
				if a == 0 {
					writers = append(writers, name)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return
		}
		sort.Strings(writers)
		s.mu.Lock()
		s.samples++
		for _, name := range names {
			if prev, seen := s.last[name]; !seen || prev != answers[name] {
				now := time.Now()
				s.events = append(s.events, fmt.Sprintf("%s %s %s", now.Format("15:04:05.000"), name, recoveryWord[answers[name]]))
				s.changes = append(s.changes, Change{At: now, Node: name, Answer: answers[name]})
			}
			s.last[name] = answers[name]
		}
		var counted []string
		for _, w := range writers {
			if !s.ignore[w] {
				counted = append(counted, w)
			}
		}
		if len(counted) > 1 {
			s.bad = append(s.bad, WriterSample{At: time.Now(), Writers: writers})
		}
		s.mu.Unlock()
	}
}

// recoveryWord names inRecovery's answers in the sampler's timeline.
var recoveryWord = map[int]string{1: "in recovery", 0: "accepts writes", -1: "unreachable"}

// Mark adds a line to the timeline (a fault the test injected), so that a
// sample with two writers can be read against what the test did.
func (s *Sampler) Mark(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, time.Now().Format("15:04:05.000")+" -- "+what)
}

// Changes returns the changes of answers seen at or after since, in order.
func (s *Sampler) Changes(since time.Time) []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Change
	for _, c := range s.changes {
		if !c.At.Before(since) {
			out = append(out, c)
		}
	}
	return out
}

// Handover reads the changes since a fault hit the writer old: promoted is
// when another node first answered as a writer, stopped when old last
// stopped answering as one before that (zero when it still did: two
// writers). promoted - stopped is the margin: how long no node took
// writes. A zero promoted means no other node became a writer.
func Handover(changes []Change, old string) (stopped, promoted time.Time, newPrimary string) {
	writing := true
	for _, c := range changes {
		if c.Node == old {
			writing = c.Answer == AnswerWriter
			if !writing {
				stopped = c.At
			}
			continue
		}
		if c.Answer == AnswerWriter {
			if writing {
				stopped = time.Time{}
			}
			return stopped, c.At, c.Node
		}
	}
	return stopped, time.Time{}, ""
}

// Timeline returns every change of a node's answer and every mark, in order.
func (s *Sampler) Timeline() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.events, "\n")
}

// Counts returns how many samples were taken so far and how many of them
// saw two writers.
func (s *Sampler) Counts() (samples, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, len(s.bad)
}

// Stop ends sampling and returns how many samples were taken and those in
// which two nodes accepted writes at once.
func (s *Sampler) Stop() (int, []WriterSample) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, append([]WriterSample(nil), s.bad...)
}

// ErrNoAcks is returned by checks that need acknowledged rows.
var ErrNoAcks = errors.New("writer: no acknowledged insert")

// Describe summarises the writer for logs.
func (w *Writer) Describe() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d acknowledged, %d failed attempts", len(w.acks), len(w.failures))
	if w.lastErr != "" {
		fmt.Fprintf(&b, " (last error: %s)", w.lastErr)
	}
	return b.String()
}
