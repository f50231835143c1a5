package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// Hooks let the service see inside one plan or apply.
type Hooks struct {
	// Observed receives every observation taken, and how long it took. An
	// apply observes each cluster on its own (st.Only), from one goroutine
	// per cluster: Observed may be called concurrently.
	Observed func(obs *observe.Observation, took time.Duration)
	// BeforeStep runs before each step; an error stops the apply there.
	BeforeStep func(ctx context.Context, a reconcile.Action) error
	// AfterStep receives each executed step.
	AfterStep func(r actuators.StepResult)
}

// Engine is the I/O the service drives: observe and plan (dry-run), or
// converge. LiveEngine is the real one; tests use fakes.
type Engine interface {
	Plan(ctx context.Context, st *desired.State, h Hooks) (*reconcile.Result, error)
	Apply(ctx context.Context, st *desired.State, h Hooks) (*actuators.Outcome, error)
}

// LiveEngine observes and acts over SSH (Docker on each VM) and SQL (each
// cluster's monitor). Its SSH connections are kept between runs and made
// again when the desired state's VMs change.
type LiveEngine struct {
	// SSH is the executor's configuration; the hosts come from the state.
	SSH            actuators.SSHConfig
	ObserveTimeout time.Duration
	Log            *slog.Logger
	// Progress receives apply's step lines (io.Discard when nil: the log
	// has them too).
	Progress io.Writer

	mu    sync.Mutex
	ex    *actuators.SSHExecutor
	hosts string
}

func (e *LiveEngine) executor(st *desired.State) (*actuators.SSHExecutor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	hosts := actuators.HostsFromDesired(st)
	key := fmt.Sprint(hosts)
	if e.ex != nil && key == e.hosts {
		return e.ex, nil
	}
	if e.ex != nil {
		if err := e.ex.Close(); err != nil {
			e.Log.Warn("closing the previous SSH executor", "err", err)
		}
		e.ex = nil
	}
	cfg := e.SSH
	cfg.Logger = e.Log
	ex, err := actuators.NewSSHExecutor(cfg, hosts)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	e.ex, e.hosts = ex, key
	return ex, nil
}

func (e *LiveEngine) observer(st *desired.State, ex *actuators.SSHExecutor, h Hooks) func(ctx context.Context) *observe.Observation {
	return func(ctx context.Context) *observe.Observation {
		start := time.Now()
		obs := observe.Observe(ctx, st, ex, observe.Options{Timeout: e.ObserveTimeout})
		if h.Observed != nil {
			h.Observed(obs, time.Since(start))
		}
		return obs
	}
}

// Observe takes one observation of everything st names.
func (e *LiveEngine) Observe(ctx context.Context, st *desired.State) (*observe.Observation, error) {
	ex, err := e.executor(st)
	if err != nil {
		return nil, err
	}
	return e.observer(st, ex, Hooks{})(ctx), nil
}

// Runner is the connection to the VMs of st, for a verb that runs its own
// command there (status measures orphaned volumes).
func (e *LiveEngine) Runner(st *desired.State) (observe.Runner, error) {
	return e.executor(st)
}

// Plan observes once and plans.
func (e *LiveEngine) Plan(ctx context.Context, st *desired.State, h Hooks) (*reconcile.Result, error) {
	ex, err := e.executor(st)
	if err != nil {
		return nil, err
	}
	return reconcile.Plan(st, e.observer(st, ex, h)(ctx)), nil
}

// Apply converges st with actuators.ApplyEach: every cluster on its own,
// all at once, over the one SSH connection per VM.
func (e *LiveEngine) Apply(ctx context.Context, st *desired.State, h Hooks) (*actuators.Outcome, error) {
	ex, err := e.executor(st)
	if err != nil {
		return nil, err
	}
	out := e.Progress
	if out == nil {
		out = io.Discard
	}
	docker := actuators.NewDocker(ex)
	return actuators.ApplyEach(ctx, st, func(sub *desired.State) *actuators.Executor {
		return &actuators.Executor{
			State:   sub,
			Docker:  docker,
			Observe: e.observer(sub, ex, h),
			ObserveMonitor: func(ctx context.Context, cluster string) observe.Monitor {
				return observe.ObserveClusterMonitor(ctx, sub, cluster, observe.Options{Timeout: e.ObserveTimeout})
			},
			Log:        e.Log,
			Progress:   out,
			BeforeStep: h.BeforeStep,
			AfterStep:  h.AfterStep,
		}
	}, out, e.Log)
}

// Close closes the SSH connections.
func (e *LiveEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ex == nil {
		return nil
	}
	err := e.ex.Close()
	e.ex = nil
	return err
}
