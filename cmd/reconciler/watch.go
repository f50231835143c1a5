package main

// status --watch: observe, print, pause, again, one observation at a
// time, until Ctrl-C.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/report"
)

// watchFlags are status's --watch and --interval.
type watchFlags struct {
	watch    bool
	interval time.Duration
}

func (f *watchFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.watch, "watch", false, "observe and print again and again (in place on a terminal, else separated by a blank line; JSON lines with --output json) until Ctrl-C")
	fs.DurationVar(&f.interval, "interval", 2*time.Second, "with --watch, the pause between the end of one observation and the start of the next")
}

func (f *watchFlags) check(fs *flag.FlagSet) error {
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || fl.Name == "interval" })
	switch {
	case set && !f.watch:
		return &usageError{fs: fs, msg: "--interval needs --watch"}
	case f.interval <= 0:
		return &usageError{fs: fs, msg: fmt.Sprintf("--interval must be positive, not %s", f.interval)}
	}
	return nil
}

// watchStatus runs status --watch on s. Orphaned volumes are measured (du
// over SSH) on the first round whose observation succeeds, and later
// rounds show those sizes: no container of ours writes to an orphaned
// volume.
func (f *watchFlags) watchStatus(ctx context.Context, s *session, stdout io.Writer, jsonLines bool) error {
	runner, err := s.engine.Runner(s.st)
	if err != nil {
		return err
	}
	var sizes map[orphanKey]report.Orphan // nil until measured
	l := &watchLoop{interval: f.interval, jsonLines: jsonLines, terminal: !jsonLines && isTerminal(stdout), now: time.Now,
		observe: func(ctx context.Context) (report.Report, error) {
			obs, err := s.observe(ctx)
			if err != nil {
				return report.Report{}, err
			}
			r := report.Build(s.st, obs)
			if sizes == nil {
				report.MeasureOrphans(ctx, runner, &r, orphanSizeTimeout)
				sizes = orphanSizes(r)
			} else {
				reuseOrphanSizes(&r, sizes)
			}
			return r, nil
		}}
	return l.run(ctx, stdout)
}

type orphanKey struct{ vm, volume string }

func orphanSizes(r report.Report) map[orphanKey]report.Orphan {
	m := map[orphanKey]report.Orphan{}
	for _, c := range r.Clusters {
		for _, o := range c.Orphans {
			m[orphanKey{o.VM, o.Volume}] = o
		}
	}
	return m
}

// reuseOrphanSizes gives the orphans of r the sizes measured before; a
// volume orphaned since shows its size as unknown.
func reuseOrphanSizes(r *report.Report, sizes map[orphanKey]report.Orphan) {
	for ci := range r.Clusters {
		for oi := range r.Clusters[ci].Orphans {
			o := &r.Clusters[ci].Orphans[oi]
			if m, ok := sizes[orphanKey{o.VM, o.Volume}]; ok && o.SizeBytes < 0 {
				o.SizeBytes, o.SizeError = m.SizeBytes, m.SizeError
			}
		}
	}
}

// watchLoop prints a report, waits interval, and again, until its context
// ends. observe is called once per round, never two at a time.
type watchLoop struct {
	interval  time.Duration
	jsonLines bool // one JSON document per line
	terminal  bool // refresh in place with ANSI escapes
	now       func() time.Time
	observe   func(ctx context.Context) (report.Report, error)
}

// run ends with nil when ctx ends (Ctrl-C), or with the error of a write
// to w.
func (l *watchLoop) run(ctx context.Context, w io.Writer) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		r, err := l.observe(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: nothing to report
		}
		if err := l.print(w, round, r, err); err != nil {
			return err
		}
		timer.Reset(l.interval)
	}
}

// ANSI escapes: erase the screen, cursor home, erase to the end of the
// line, erase to the end of the screen.
const (
	ansiClear = "\x1b[2J"
	ansiHome  = "\x1b[H"
	ansiEOL   = "\x1b[K"
	ansiEOS   = "\x1b[J"
)

// print writes one round: the report, or the error of its observation.
func (l *watchLoop) print(w io.Writer, round int, r report.Report, obsErr error) error {
	if l.jsonLines {
		var v any = r
		if obsErr != nil {
			v = struct {
				Error string `json:"error"`
				At    string `json:"at"`
			}{obsErr.Error(), l.now().UTC().Format(time.RFC3339)}
		}
		return json.NewEncoder(w).Encode(v) // one line, newline-terminated
	}
	var body bytes.Buffer
	if obsErr != nil {
		fmt.Fprintf(&body, "observation failed at %s: %s\n", l.now().UTC().Format(time.RFC3339), strings.TrimRight(obsErr.Error(), "\n"))
	} else if err := r.WriteText(&body); err != nil {
		return err
	}
	if !l.terminal {
		sep := ""
		if round > 1 {
			sep = "\n" // a blank line between reports
		}
		_, err := io.WriteString(w, sep+body.String())
		return err
	}
	// Overwrite the previous round line by line, then erase what is left
	// of it: no blank flash between rounds.
	var b strings.Builder
	if round == 1 {
		b.WriteString(ansiClear)
	}
	b.WriteString(ansiHome)
	fmt.Fprintf(&b, "every %s, round %d at %s UTC; Ctrl-C to stop%s\n%s\n", l.interval, round, l.now().UTC().Format(time.TimeOnly), ansiEOL, ansiEOL)
	for _, line := range strings.SplitAfter(body.String(), "\n") {
		if line == "" {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n") + ansiEOL + "\n")
	}
	b.WriteString(ansiEOS)
	_, err := io.WriteString(w, b.String())
	return err
}
