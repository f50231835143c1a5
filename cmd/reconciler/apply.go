package main

import (
	"context"
	"io"

	"github.com/pgaf-gitops/reconciler/service"
)

func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("apply", "[--config FILE] [--desired PATH]", "Converge once: observe, plan, execute the first step, and again, until the plan is\nempty, a step fails, or a wait times out. SIGINT or SIGTERM stops after the current step.")
	var l liveFlags
	l.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return &usageError{fs: fs, msg: "apply takes no arguments"}
	}
	s, err := openSession(l, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	s.engine.Progress = stdout
	_, err = s.engine.Apply(ctx, s.st, service.Hooks{})
	return err
}
