package actuators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// MaxSteps bounds one apply: a plan that never empties is a bug or a
// fight with someone else, and stops here with an error.
const MaxSteps = 200

// SettleTimeout bounds how long apply waits, with nothing to do, for a
// change in flight to settle before it reports what stays blocked.
const SettleTimeout = 3 * time.Minute

// BlockedError is returned when apply has nothing left it may do but the
// plan still holds changes that guards block.
type BlockedError struct{ Blocked []reconcile.Blocked }

func (e *BlockedError) Error() string {
	return fmt.Sprintf("not converged: %d change(s) blocked (first: %s: %s)", len(e.Blocked), e.Blocked[0].Guard, e.Blocked[0].Reason)
}

func blockedOf(p *reconcile.Result) []reconcile.Blocked {
	var out []reconcile.Blocked
	for _, c := range p.Clusters {
		out = append(out, c.Blocked...)
	}
	return out
}

// transient reports whether every block is one that settles by itself:
// another change in flight, a disruption deferred to a later plan, or a
// node's PostgreSQL server not answering yet (it restarts).
func transient(bs []reconcile.Blocked) bool {
	if len(bs) == 0 {
		return false
	}
	for _, b := range bs {
		switch b.Guard {
		case reconcile.GuardInFlight, reconcile.GuardOneAtATime, reconcile.GuardPostgresUnobserved:
		default:
			return false
		}
	}
	return true
}

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
	x.latest = nil // only this run's own observations are handed on
	settleBy, waiting := time.Now().Add(SettleTimeout), false
	for step := 1; step <= MaxSteps; step++ {
		if ctx.Err() != nil {
			o.Stopped = "interrupted"
			return o, ErrInterrupted
		}
		obs := x.observe(ctx)
		p := reconcile.Plan(st, obs)
		o.Last = p
		if p.Empty() {
			blocked := blockedOf(p)
			if transient(blocked) && time.Now().Before(settleBy) {
				// Something is in flight (a node catching up, a restart):
				// it settles by itself; plan again once it did.
				if !waiting {
					fmt.Fprintf(out, "waiting for the cluster to settle: %s\n", blocked[0].Reason)
					waiting = true
				}
				select {
				case <-ctx.Done():
				case <-time.After(x.pollInterval()):
				}
				step--
				continue
			}
			if len(o.Steps) == 0 && len(blocked) == 0 {
				fmt.Fprintln(out, "No changes. The observed state matches the desired state.")
			} else if len(blocked) == 0 {
				fmt.Fprintf(out, "Converged after %d step(s).\n", len(o.Steps))
			}
			for _, b := range blocked {
				fmt.Fprintf(out, "%s %s: %s\n", b.Label(), b.Guard, b.Reason)
			}
			if len(blocked) > 0 {
				o.Stopped = "blocked"
				return o, &BlockedError{Blocked: blocked}
			}
			return o, nil
		}
		waiting = false
		settleBy = time.Now().Add(SettleTimeout)
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
			x.latest = obs // the wait starts from what this plan saw
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
