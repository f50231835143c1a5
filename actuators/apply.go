package actuators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// MaxSteps bounds one apply: a plan that never empties is a bug or a
// fight with someone else, and stops here with an error.
const MaxSteps = 200

// StepTimeout bounds one non-wait step.
const StepTimeout = 5 * time.Minute

// Outcome is what one apply did.
type Outcome struct {
	Steps   []StepResult
	Last    *reconcile.Result // the last plan computed
	Stopped string            // why apply stopped early ("" when converged)
}

// StepResult is one executed action.
type StepResult struct {
	Action   reconcile.Action
	Duration time.Duration
	Err      string
}

// ErrInterrupted is returned when apply stopped between steps because its
// context was cancelled (SIGINT or SIGTERM).
var ErrInterrupted = errors.New("interrupted: stopped between two steps")

// Apply converges st: observe, plan, execute the first action, and again,
// until the plan is empty, a step fails, or a wait times out. A cancelled
// ctx stops it between steps, never in the middle of one (waits, which
// change nothing, end at once).
func Apply(ctx context.Context, st *desired.State, x *Executor, out io.Writer, log *slog.Logger) (*Outcome, error) {
	o := &Outcome{}
	for step := 1; step <= MaxSteps; step++ {
		if ctx.Err() != nil {
			o.Stopped = "interrupted"
			return o, ErrInterrupted
		}
		obs := x.Observe(ctx)
		p := reconcile.Plan(st, obs)
		o.Last = p
		if p.Empty() {
			if step == 1 {
				fmt.Fprintln(out, "No changes. The observed state matches the desired state.")
			} else {
				fmt.Fprintf(out, "Converged after %d step(s).\n", step-1)
			}
			for _, c := range p.Clusters {
				for _, b := range c.Blocked {
					fmt.Fprintf(out, "blocked %s: %s\n", b.Guard, b.Reason)
				}
			}
			return o, nil
		}
		a := p.Actions()[0]
		alog := log.With("cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "trigger", a.Trigger, "commit", st.Commit)
		if x.BeforeStep != nil {
			if err := x.BeforeStep(ctx, a); err != nil {
				o.Stopped = fmt.Sprintf("step %d (%s) not started", step, a.Describe())
				return o, fmt.Errorf("step %d: %s: not started: %w", step, a.Describe(), err)
			}
		}
		fmt.Fprintf(out, "step %d: %s\n    why: %s\n", step, a.Describe(), a.Reason)
		for _, e := range a.Evidence {
			fmt.Fprintf(out, "    evidence: %s\n", e)
		}
		alog.Info("executing", "reason", a.Reason, "evidence", a.Evidence, "observed_at", obs.Time)
		start := time.Now()
		var err error
		if a.Kind == reconcile.Wait {
			err = x.Execute(ctx, a)
		} else {
			// A step runs to its end even when apply is interrupted.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), StepTimeout)
			err = x.Execute(sctx, a)
			cancel()
		}
		r := StepResult{Action: a, Duration: time.Since(start)}
		if err != nil {
			r.Err = err.Error()
		}
		o.Steps = append(o.Steps, r)
		if x.AfterStep != nil {
			x.AfterStep(r)
		}
		if err != nil {
			if ctx.Err() != nil && a.Kind == reconcile.Wait {
				o.Stopped = "interrupted"
				return o, ErrInterrupted
			}
			alog.Error("step failed", "err", err, "duration", r.Duration)
			o.Stopped = fmt.Sprintf("step %d (%s) failed", step, a.Describe())
			return o, fmt.Errorf("step %d: %s: %w", step, a.Describe(), err)
		}
		alog.Info("done", "duration", r.Duration.Round(time.Millisecond))
		fmt.Fprintf(out, "    done in %s\n", r.Duration.Round(100*time.Millisecond))
	}
	o.Stopped = "too many steps"
	return o, fmt.Errorf("no convergence after %d steps; the last plan still has %d action(s)", MaxSteps, len(o.Last.Actions()))
}

var _ = observe.SchemaVersion
