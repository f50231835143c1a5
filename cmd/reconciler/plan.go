package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

type planOptions struct {
	live             liveFlags
	observation      string
	output           string
	color            string
	detailedExitcode bool
}

func (o *planOptions) check() error {
	switch o.output {
	case "text", "json", "markdown":
	default:
		return fmt.Errorf("--output must be text, json or markdown, not %q", o.output)
	}
	switch o.color {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--color must be auto, always or never, not %q", o.color)
	}
	return nil
}

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plan", "[--config FILE] [--desired PATH] [--observation FILE] [options]", "Show, without acting, what apply would do: what exists, what will change and why,\nin the order it will run.")
	var o planOptions
	o.live.register(fs)
	fs.StringVar(&o.observation, "observation", "", "plan against the observation JSON `FILE` written by reconciler observe, instead of observing live")
	fs.StringVar(&o.output, "output", "text", "text, json or markdown")
	fs.StringVar(&o.color, "color", "auto", "colour the text output: auto (on a terminal), always, never")
	fs.BoolVar(&o.detailedExitcode, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return &usageError{fs: fs, msg: err.Error()}
	}
	st, obs, err := loadInputs(ctx, o.live, o.observation, stderr)
	if err != nil {
		return err
	}
	p := reconcile.Plan(st, obs)
	if err := writePlan(stdout, p, o.output, o.color); err != nil {
		return err
	}
	if o.detailedExitcode && !p.Empty() {
		return errChanges
	}
	return nil
}

// loadInputs loads the desired state and reads the observation from the
// file named by observation, or, when that is empty, observes live.
func loadInputs(ctx context.Context, l liveFlags, observation string, stderr io.Writer) (*desired.State, *observe.Observation, error) {
	if observation == "" {
		s, err := openSession(l, stderr)
		if err != nil {
			return nil, nil, err
		}
		defer s.Close()
		obs, err := s.observe(ctx)
		return s.st, obs, err
	}
	path := l.desired
	if path == "" {
		cfg, err := loadConfig(l.config)
		if err != nil {
			return nil, nil, err
		}
		path = cfg.Desired
	}
	st, err := desired.Load(path)
	if err != nil {
		return nil, nil, &hintError{err: err, hint: "run `reconciler validate " + path + "` for the full list"}
	}
	obs, err := readObservation(observation)
	if err != nil {
		return nil, nil, err
	}
	return st, obs, nil
}

func readObservation(path string) (*observe.Observation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	obs, err := observe.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obs, nil
}

func writePlan(w io.Writer, p *reconcile.Result, output, color string) error {
	switch output {
	case "json":
		return p.WriteJSON(w)
	case "markdown":
		return p.WriteMarkdown(w)
	}
	style := reconcile.Style{Color: color == "always" || (color == "auto" && isTerminal(w))}
	return p.WriteText(w, style)
}
