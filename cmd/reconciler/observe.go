package main

import (
	"context"
	"io"

	"github.com/pgaf-gitops/reconciler/observe"
)

func runObserve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("observe", "[--config FILE] [--desired PATH] [--output json]", "Observe every VM and monitor once and write the observation as JSON\n(the input of `reconciler plan --observation FILE`).")
	var l liveFlags
	l.register(fs)
	output := fs.String("output", "json", "json (the only encoding)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *output != "json" {
		return &usageError{fs: fs, msg: "--output must be json"}
	}
	s, err := openSession(l, stderr)
	if err != nil {
		return err
	}
	defer s.Close()
	obs, err := s.observe(ctx)
	if err != nil {
		return err
	}
	return observe.Write(stdout, obs)
}
