package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/pgaf-gitops/reconciler/report"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "[--config FILE] [--desired PATH] [--output text|json] [--watch [--interval 2s]]", "Show the monitor's view and Docker's joined in one table, and the latest monitor events.\nSays what it could not reach.")
	var l liveFlags
	l.register(fs)
	output := fs.String("output", "text", "text or json")
	var w watchFlags
	w.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return &usageError{fs: fs, msg: "--output must be text or json"}
	}
	if err := w.check(fs); err != nil {
		return err
	}
	s, err := openSession(l, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	if w.watch {
		return w.watchStatus(ctx, s, stdout, *output == "json")
	}
	obs, err := s.observe(ctx)
	if err != nil {
		return err
	}
	r := report.Build(s.st, obs)
	runner, err := s.engine.Runner(s.st)
	if err != nil {
		return err
	}
	report.MeasureOrphans(ctx, runner, &r, orphanSizeTimeout)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(stdout)
}

// orphanSizeTimeout bounds the measure of one orphaned volume.
const orphanSizeTimeout = 30 * time.Second
