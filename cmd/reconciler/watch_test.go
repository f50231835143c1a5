package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/report"
)

var watchT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fakeRounds returns an observe function for a watchLoop: round 2 fails,
// the others return a report observed at watchT0 plus the round in
// seconds, and round stop cancels the context and blocks until it ends,
// as an interrupted observation does. It fails t when two observations
// overlap.
func fakeRounds(t *testing.T, cancel context.CancelFunc, stop int, calls *atomic.Int32) func(context.Context) (report.Report, error) {
	var inFlight atomic.Int32
	return func(ctx context.Context) (report.Report, error) {
		if inFlight.Add(1) != 1 {
			t.Error("two observations at a time")
		}
		defer inFlight.Add(-1)
		n := int(calls.Add(1))
		switch n {
		case stop:
			cancel()
			<-ctx.Done()
			return report.Report{}, ctx.Err()
		case 2:
			return report.Report{}, errors.New("observe vm2: ssh: connection refused")
		}
		return report.Report{ObservedAt: watchT0.Add(time.Duration(n) * time.Second), Unreachable: []string{}}, nil
	}
}

func TestWatchLoop(t *testing.T) {
	now := func() time.Time { return watchT0 }
	cases := []struct {
		name string
		loop watchLoop
		want string
	}{
		{name: "text_not_a_terminal", want: "Observed at 2026-11-26T12:00:01Z\n" +
			"\nobservation failed at 2026-11-26T12:00:00Z: observe vm2: ssh: connection refused\n" +
			"\nObserved at 2026-11-26T12:00:03Z\n"},
		{name: "json_lines", loop: watchLoop{jsonLines: true}, want: `{"observed_at":"2026-11-26T12:00:01Z","unreachable":[],"clusters":null}` + "\n" +
			`{"error":"observe vm2: ssh: connection refused","at":"2026-11-26T12:00:00Z"}` + "\n" +
			`{"observed_at":"2026-11-26T12:00:03Z","unreachable":[],"clusters":null}` + "\n"},
		{name: "terminal", loop: watchLoop{terminal: true}, want: "\x1b[2J" +
			"\x1b[Hevery 1ms, round 1 at 12:00:00 UTC; Ctrl-C to stop\x1b[K\n\x1b[K\nObserved at 2026-11-26T12:00:01Z\x1b[K\n\x1b[J" +
			"\x1b[Hevery 1ms, round 2 at 12:00:00 UTC; Ctrl-C to stop\x1b[K\n\x1b[K\nobservation failed at 2026-11-26T12:00:00Z: observe vm2: ssh: connection refused\x1b[K\n\x1b[J" +
			"\x1b[Hevery 1ms, round 3 at 12:00:00 UTC; Ctrl-C to stop\x1b[K\n\x1b[K\nObserved at 2026-11-26T12:00:03Z\x1b[K\n\x1b[J"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int32
			l := tc.loop
			l.interval, l.now, l.observe = time.Millisecond, now, fakeRounds(t, cancel, 4, &calls)
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- l.run(ctx, &out) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the loop did not stop when its context was cancelled")
			}
			if calls.Load() != 4 {
				t.Errorf("%d observations, want 4", calls.Load())
			}
			if out.String() != tc.want {
				t.Errorf("output:\n%q\nwant:\n%q", out.String(), tc.want)
			}
			if l.jsonLines {
				for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
					if !json.Valid([]byte(line)) {
						t.Errorf("not a JSON line: %q", line)
					}
				}
			}
		})
	}
}

// TestWatchLoopStopsWhileWaiting cancels the context during the pause
// between two rounds.
func TestWatchLoopStopsWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &watchLoop{interval: time.Hour, now: time.Now, observe: func(context.Context) (report.Report, error) {
		time.AfterFunc(10*time.Millisecond, cancel)
		return report.Report{ObservedAt: watchT0, Unreachable: []string{}}, nil
	}}
	var out bytes.Buffer
	start := time.Now()
	if err := l.run(ctx, &out); err != nil || time.Since(start) > 5*time.Second {
		t.Fatalf("run: %v after %s", err, time.Since(start))
	}
	if out.String() != "Observed at 2026-11-26T12:00:00Z\n" {
		t.Errorf("output %q", out.String())
	}
}

func TestReuseOrphanSizes(t *testing.T) {
	first := report.Report{Clusters: []report.Cluster{{Orphans: []report.Orphan{{VM: "vm1", Volume: "main-old-data", SizeBytes: 4096}}}}}
	later := report.Report{Clusters: []report.Cluster{{Orphans: []report.Orphan{
		{VM: "vm1", Volume: "main-old-data", SizeBytes: -1}, {VM: "vm2", Volume: "main-new-data", SizeBytes: -1}}}}}
	reuseOrphanSizes(&later, orphanSizes(first))
	if o := later.Clusters[0].Orphans; o[0].SizeBytes != 4096 || o[1].SizeBytes != -1 {
		t.Errorf("orphans %+v", o)
	}
}

func TestWatchFlags(t *testing.T) {
	for _, args := range [][]string{{"status", "--interval", "5s"}, {"status", "--watch", "--interval", "0s"}} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "usage") || !strings.Contains(errOut, "--interval") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
