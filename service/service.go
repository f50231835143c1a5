package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
	"github.com/pgaf-gitops/reconciler/source"
)

// Defaults of Config.
const (
	DefaultInterval   = time.Minute
	DefaultJitter     = 0.1
	DefaultBackoffMin = 2 * time.Second
	DefaultBackoffMax = 5 * time.Minute
	DefaultWaitRetry  = 10 * time.Second
)

// Config wires a Service.
type Config struct {
	Source source.Source
	Engine Engine
	// Lock is checked before every step (NoLock when nil). A dry run never
	// takes it: it never acts.
	Lock Locker
	// Interval between two runs when nothing triggers one; each interval
	// is stretched or shrunk at random by up to Jitter (a fraction).
	Interval time.Duration
	Jitter   float64
	// BackoffMin and BackoffMax bound the delay after transient failures:
	// it doubles from BackoffMin with each failure, up to BackoffMax, with
	// jitter, and resets on success.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// WaitRetry is the delay after a run that waited on a dependency (a
	// lock held elsewhere, a node not ready yet).
	WaitRetry time.Duration
	// Debounce is the quiet time after a change in a watched directory
	// before a run (source.DefaultDebounce when zero).
	Debounce time.Duration
	// DryRun observes and plans, reports drift, and never acts.
	DryRun bool
	// Instance names this instance in the lock, logs and /status.
	Instance string
	// WebhookSecret is the HMAC-SHA256 key of the webhook; empty disables
	// the webhook (404).
	WebhookSecret []byte
	Log           *slog.Logger
	// Now and Rand replace the clock and the jitter's randomness in tests.
	Now  func() time.Time
	Rand func() float64
}

// Watcher is a source that reports its changes (source.Dir).
type Watcher interface {
	Watch(ctx context.Context, debounce time.Duration, changed func()) error
}

// Class is how a run's outcome decides the next run.
type Class string

// The classes of outcome.
const (
	ClassSuccess     Class = "success"
	ClassStalled     Class = "stalled"     // needs a person: wait for the next commit
	ClassWaiting     Class = "waiting"     // a dependency is not ready: retry soon
	ClassTransient   Class = "transient"   // back off, retry
	ClassInterrupted Class = "interrupted" // shutting down
)

// Classify says what kind of failure err is, with errors.As only.
func Classify(err error) Class {
	if err == nil {
		return ClassSuccess
	}
	var (
		de desired.Errors
		ve *source.VerificationError
		pe *source.PathError
		ce *source.ConfigError
		he *HeldError
		ue *LockUnreachableError
		we *actuators.WaitTimeoutError
	)
	var be *actuators.BlockedError
	switch {
	case errors.Is(err, actuators.ErrInterrupted), errors.Is(err, context.Canceled):
		return ClassInterrupted
	case errors.As(err, &de), errors.As(err, &ve), errors.As(err, &pe), errors.As(err, &ce):
		return ClassStalled
	case errors.As(err, &be):
		// A diverged node under the manual policy waits for a person; the
		// other guards lift by themselves (a VM or monitor back).
		for _, b := range be.Blocked {
			if b.Guard == reconcile.GuardManualPolicy {
				return ClassStalled
			}
		}
		return ClassWaiting
	case errors.As(err, &he), errors.As(err, &ue), errors.As(err, &we):
		return ClassWaiting
	}
	return ClassTransient
}

// reason maps an error to the status reason.
func reason(err error) string {
	var (
		de desired.Errors
		ve *source.VerificationError
		pe *source.PathError
		ce *source.ConfigError
		fe *source.FetchError
		he *HeldError
		ue *LockUnreachableError
		we *actuators.WaitTimeoutError
		be *actuators.BlockedError
	)
	switch {
	case errors.Is(err, actuators.ErrInterrupted), errors.Is(err, context.Canceled):
		return ReasonInterrupted
	case errors.As(err, &be):
		return ReasonBlocked
	case errors.As(err, &de), errors.As(err, &pe):
		return ReasonInvalid
	case errors.As(err, &ve):
		return ReasonVerificationFailed
	case errors.As(err, &ce):
		return ReasonSourceConfig
	case errors.As(err, &fe):
		return ReasonFetchFailed
	case errors.As(err, &he):
		return ReasonLockHeld
	case errors.As(err, &ue), errors.As(err, &we):
		return ReasonDependencyNotReady
	}
	return ReasonApplyFailed
}

// Service is the continuous reconciler.
type Service struct {
	cfg     Config
	log     *slog.Logger
	trigger chan string
	metrics *metrics

	// Owned by the loop goroutine.
	good      *desired.State // the last good desired state: in force
	goodRev   *Revision
	parsedRev string // the last revision parsed, and its problem
	parsedErr error
	failures  int
	// obsMu guards what the Observed hook keeps: the observation of
	// every cluster merged, and the monitor events seen (by cluster, for
	// the failovers).
	obsMu      sync.Mutex
	observed   *observe.Observation
	events     map[string][]observe.Event
	loopAlive  chan struct{}
	loopExited chan struct{}

	mu     sync.Mutex
	status Status
}

// New checks cfg, applies defaults and returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Source == nil || cfg.Engine == nil {
		return nil, errors.New("service: Source and Engine are required")
	}
	if cfg.Lock == nil {
		cfg.Lock = NoLock{}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Jitter < 0 || cfg.Jitter >= 1 {
		return nil, fmt.Errorf("service: jitter %v must be in [0, 1)", cfg.Jitter)
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.WaitRetry <= 0 {
		cfg.WaitRetry = DefaultWaitRetry
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	s := &Service{
		cfg:        cfg,
		log:        cfg.Log.With("instance", cfg.Instance),
		trigger:    make(chan string, 1),
		metrics:    newMetrics(cfg.Now()),
		events:     map[string][]observe.Event{},
		loopAlive:  make(chan struct{}),
		loopExited: make(chan struct{}),
	}
	s.status = Status{
		Source: cfg.Source.String(), Instance: cfg.Instance, DryRun: cfg.DryRun,
		Condition: Reconciling, Reason: ReasonProgressing, Message: "starting: no run yet",
	}
	return s, nil
}

// Trigger asks for a run as soon as the current one (if any) ends. Triggers
// that arrive while one is pending are merged into it.
func (s *Service) Trigger(why string) {
	select {
	case s.trigger <- why:
	default:
	}
}

// Status returns a copy of the current status.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status.clone()
	if !st.ObservedAt.IsZero() {
		st.ObservationAge = s.cfg.Now().Sub(st.ObservedAt).Round(time.Millisecond).String()
	}
	return st
}

func (s *Service) update(f func(st *Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.status)
}

// Run runs the loop until ctx is done: a run at once, then one per
// interval (with jitter), after a backoff on failures, or at once on a
// trigger. A cancelled ctx interrupts a run between two steps (a step in
// progress finishes); Run then releases the locks and returns.
func (s *Service) Run(ctx context.Context) error {
	close(s.loopAlive)
	defer close(s.loopExited)
	defer func() {
		if err := s.cfg.Lock.Close(); err != nil {
			s.log.Warn("releasing locks", "err", err)
		}
		s.metrics.setLocks(nil)
	}()
	if w, ok := s.cfg.Source.(Watcher); ok {
		go func() {
			if err := w.Watch(ctx, s.cfg.Debounce, func() { s.Trigger("fsnotify") }); err != nil {
				s.log.Error("watching the desired state; only the interval and webhook trigger runs", "err", err)
			}
		}()
	}
	why := "start"
	for {
		s.metrics.triggers.WithLabelValues(why).Inc()
		class := s.reconcile(ctx, why)
		if ctx.Err() != nil {
			return nil
		}
		delay := s.delay(class)
		next := s.cfg.Now().Add(delay)
		s.update(func(st *Status) { st.NextRun = next })
		s.log.Debug("next run", "in", delay.Round(time.Millisecond), "after", class)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case why = <-s.trigger:
			timer.Stop()
		case <-timer.C:
			why = "interval"
			if class == ClassTransient || class == ClassWaiting {
				why = "retry"
			}
		}
	}
}

// delay is the wait before the next run after a run of class c.
func (s *Service) delay(c Class) time.Duration {
	switch c {
	case ClassTransient:
		s.failures++
		return s.backoff(s.failures)
	case ClassWaiting:
		return min(s.jitter(s.cfg.WaitRetry), s.jitter(s.cfg.Interval))
	case ClassSuccess:
		s.failures = 0
	}
	return s.jitter(s.cfg.Interval)
}

// backoff is BackoffMin·2^(n-1), capped at BackoffMax, then drawn at random
// in its upper half ("equal jitter": never retried all at once, never
// sooner than half the nominal delay).
func (s *Service) backoff(n int) time.Duration {
	d := float64(s.cfg.BackoffMin) * math.Pow(2, float64(n-1))
	d = math.Min(d, float64(s.cfg.BackoffMax))
	return time.Duration(d/2 + s.cfg.Rand()*d/2)
}

// jitter stretches or shrinks d at random by up to the configured fraction.
func (s *Service) jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 + s.cfg.Jitter*(2*s.cfg.Rand()-1)))
}

// reconcile is one run: fetch, load, validate, observe, plan, apply. The
// status and metrics are written from a defer, whatever path returns.
func (s *Service) reconcile(ctx context.Context, trigger string) (class Class) {
	start := s.cfg.Now()
	run := &Run{Trigger: trigger, Start: start}
	s.update(func(st *Status) { st.Current = run; st.Condition = Reconciling; st.Reason = ReasonProgressing })

	var (
		problem error // about the newest revision; the last good one may still be enforced
		runErr  error // about acting on the cluster
		plan    *reconcile.Result
		steps   []Step
		drift   bool
		applied bool
		invalid desired.Errors
	)
	defer func() {
		class = s.finish(start, run, problem, runErr, plan, steps, drift, applied, invalid)
	}()

	snap, err := s.cfg.Source.Fetch(ctx)
	if err != nil {
		problem = err
		var fe *source.FetchError
		if errors.As(err, &fe) {
			s.metrics.fetchErrors.Inc()
		}
		s.log.Warn("source", "err", err, "fallback", snap != nil)
	}
	var (
		ve *source.VerificationError
		pe *source.PathError
	)
	switch {
	case errors.As(err, &ve): // snap, if any, is the last trusted commit
		s.seen(&Revision{Revision: ve.Commit, Commit: ve.Commit, At: start})
	case errors.As(err, &pe) && pe.Commit != "":
		s.seen(&Revision{Revision: pe.Commit, Commit: pe.Commit, At: start})
	case snap != nil: // the head, or the cached head when the remote is down
		s.seen(revisionOf(snap, start))
	}
	if snap != nil {
		if perr := s.load(snap, start); perr != nil {
			errors.As(perr, &invalid)
			problem = errors.Join(perr, err)
		}
	}
	if s.good == nil {
		return
	}
	st := s.good
	log := s.log.With("commit", st.Commit, "revision", s.goodRev.Revision)
	hooks := s.hooks(ctx, st, log, &steps)

	if s.cfg.DryRun {
		plan, runErr = s.cfg.Engine.Plan(ctx, st, hooks)
		if plan != nil {
			drift = !plan.Empty()
			for _, a := range plan.Actions() {
				log.Warn("drift", "cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "reason", a.Reason)
			}
		}
		return
	}
	out, err := s.cfg.Engine.Apply(ctx, st, hooks)
	runErr = err
	if out != nil {
		plan = out.Last
	}
	applied = err == nil && plan != nil && plan.Empty() && len(blocked(plan)) == 0
	return
}

// seen records the newest revision the source offered.
func (s *Service) seen(r *Revision) {
	s.update(func(st *Status) {
		if st.LastSeen == nil || st.LastSeen.Revision != r.Revision {
			st.LastSeen = r
		}
	})
	s.metrics.setRevision("seen", r.Revision)
}

// load parses snap when it is a revision not parsed yet. A valid one
// becomes the state in force; an invalid one is reported, and the last
// good one stays. It returns the revision's problem, if any.
func (s *Service) load(snap *source.Snapshot, now time.Time) error {
	if snap.Revision == s.parsedRev {
		return s.parsedErr
	}
	s.parsedRev = snap.Revision
	st, err := desired.Parse(snap.Files)
	if err != nil {
		s.parsedErr = fmt.Errorf("revision %s: %w", shortRev(snap.Revision), err)
		s.log.Error("invalid desired state; the last good one, if any, stays in force", "commit", snap.Commit, "revision", snap.Revision, "err", err)
		return s.parsedErr
	}
	s.parsedErr = nil
	st.Commit = snap.Commit
	s.good, s.goodRev = st, revisionOf(snap, now)
	s.update(func(x *Status) { x.InForce = s.goodRev })
	s.metrics.setRevision("in_force", snap.Revision)
	s.log.Info("desired state in force", "commit", snap.Commit, "revision", snap.Revision, "subject", snap.Subject, "signed_by", snap.SignedBy)
	return nil
}

func revisionOf(snap *source.Snapshot, at time.Time) *Revision {
	return &Revision{Revision: snap.Revision, Commit: snap.Commit, Time: snap.Time, Author: snap.Author,
		Subject: snap.Subject, SignedBy: snap.SignedBy, At: at}
}

func shortRev(r string) string {
	r = strings.TrimPrefix(r, "sha256:")
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

// hooks connect an apply to the lock, the metrics and the status.
func (s *Service) hooks(ctx context.Context, st *desired.State, log *slog.Logger, steps *[]Step) Hooks {
	var mu sync.Mutex
	return Hooks{
		Observed: func(obs *observe.Observation, took time.Duration) {
			// An apply observes each cluster on its own: the metrics
			// and the page show them merged.
			s.obsMu.Lock()
			defer s.obsMu.Unlock()
			s.observed = observe.Merge(st, s.observed, obs)
			s.metrics.observed(s.observed, took)
			rep := s.report(st, s.observed)
			s.update(func(x *Status) { x.ObservedAt = obs.Time; x.Report = rep })
		},
		BeforeStep: func(ctx context.Context, a reconcile.Action) error {
			err := s.cfg.Lock.Hold(ctx, st, a.Cluster)
			s.metrics.setLocks(s.cfg.Lock.Held())
			var ue *LockUnreachableError
			if errors.As(err, &ue) && a.Node == "monitor" {
				// The lock lives on the monitor, which is what this step
				// brings up: Docker's unique names settle a race.
				log.Warn("acting on the monitor without its lock", "cluster", a.Cluster, "action", string(a.Kind), "err", err)
				return nil
			}
			if err != nil {
				log.Warn("not acting", "cluster", a.Cluster, "node", a.Node, "action", string(a.Kind), "err", err)
			}
			return err
		},
		AfterStep: func(r actuators.StepResult) {
			result := "ok"
			if r.Err != "" {
				result = "error"
			}
			s.metrics.actions.WithLabelValues(r.Action.Cluster, string(r.Action.Kind), result).Inc()
			mu.Lock()
			*steps = append(*steps, Step{Cluster: r.Action.Cluster, Node: r.Action.Node, Action: string(r.Action.Kind),
				What: r.Action.Describe(), Reason: r.Action.Reason, Evidence: r.Action.Evidence,
				Duration: r.Duration.Round(time.Millisecond).String(), Error: r.Err})
			cp := append([]Step(nil), *steps...)
			mu.Unlock()
			s.update(func(x *Status) {
				x.Steps = cp
				if x.Current != nil {
					c := *x.Current
					c.Steps = cp
					x.Current = &c
				}
			})
		},
	}
}

// Bounds of what the status page keeps of the monitors' events.
const (
	// EventHistory is how many events of each cluster are kept to find
	// failovers in (a failover of three nodes writes twenty or so).
	EventHistory = 500
	// FailoverHistory is how many failovers of each cluster are shown.
	FailoverHistory = 10
)

// report builds the joined view of obs, its failovers read from every
// event seen since the service started (the monitor hands out only its
// newest observe.MonitorEventCount). Called with obsMu held.
func (s *Service) report(st *desired.State, obs *observe.Observation) *report.Report {
	rep := report.Build(st, obs)
	seen := map[string]bool{}
	all := map[string][]report.Failover{}
	for i := range rep.Clusters {
		c := &rep.Clusters[i]
		seen[c.Name] = true
		s.events[c.Name] = report.MergeEvents(s.events[c.Name], c.Events, EventHistory)
		f := report.Failovers(s.events[c.Name])
		all[c.Name] = f
		c.Failovers = f[max(0, len(f)-FailoverHistory):]
	}
	s.metrics.changesOfPrimary(all)
	for name := range s.events {
		if !seen[name] {
			delete(s.events, name)
		}
	}
	return &rep
}

// finish writes the status and metrics of a run and returns its class.
func (s *Service) finish(start time.Time, run *Run, problem, runErr error, plan *reconcile.Result, steps []Step,
	drift, applied bool, invalid desired.Errors) Class {
	end := s.cfg.Now()
	dur := end.Sub(start)
	// The class that decides the next run: acting errors first (they say
	// what the cluster needs), then the source's.
	var class Class
	switch {
	case runErr != nil:
		class = Classify(runErr)
	case problem != nil:
		class = Classify(problem)
	case drift:
		class = ClassStalled
	case len(blocked(plan)) > 0, !s.cfg.DryRun && !applied:
		class = ClassWaiting
	default:
		class = ClassSuccess
	}
	cond, rsn, msg := Ready, ReasonSucceeded, ""
	switch {
	case class == ClassInterrupted:
		cond, rsn, msg = Reconciling, ReasonInterrupted, "shutting down: stopped between two steps"
	case problem != nil && Classify(problem) == ClassStalled:
		cond, rsn, msg = Stalled, reason(problem), problem.Error()
		if s.good != nil {
			msg += fmt.Sprintf("\nthe last good revision %s stays in force", shortRev(s.goodRev.Revision))
		}
		if runErr != nil {
			msg += "; enforcing it: " + runErr.Error()
		}
	case runErr != nil:
		cond, rsn, msg = Reconciling, reason(runErr), runErr.Error()
		if class == ClassStalled {
			cond = Stalled
		}
	case problem != nil:
		cond, rsn, msg = Reconciling, reason(problem), problem.Error()
		if s.good != nil {
			msg += fmt.Sprintf("\nthe last fetched revision %s stays in force", shortRev(s.goodRev.Revision))
		}
	case s.good == nil:
		cond, rsn, msg = Stalled, ReasonNoDesiredState, "no desired state yet"
	case len(blocked(plan)) > 0 && !drift:
		cond, rsn, msg = Reconciling, ReasonBlocked, "the plan is empty but blocked:\n"+strings.Join(blocked(plan), "\n")
	case drift:
		cond, rsn, msg = Stalled, ReasonDrift, fmt.Sprintf("dry run: %d action(s) would converge the cluster; nothing was done", len(plan.Actions()))
	case s.cfg.DryRun:
		cond, rsn, msg = Ready, ReasonNoDrift, "dry run: the observed state matches the desired state"
	case !applied:
		cond, rsn, msg = Reconciling, ReasonProgressing, "not converged yet"
	default:
		msg = "converged on " + shortRev(s.goodRev.Revision)
	}

	// A copy: Current, which readers may hold, points to run.
	done := *run
	done.Duration = dur.Round(time.Millisecond).String()
	done.Result = string(class)
	if s.good != nil {
		done.Revision, done.Commit = s.goodRev.Revision, s.good.Commit
	}
	done.Steps = steps
	if plan != nil {
		done.Pending, done.Blocked = len(plan.Actions()), len(blocked(plan))
	}
	if err := errors.Join(problem, runErr); err != nil {
		done.Error = err.Error()
	}
	var driftBy map[string]int
	if plan != nil {
		s.metrics.planned(plan)
		driftBy = map[string]int{}
		for _, c := range plan.Clusters {
			driftBy[c.Name] = len(c.Actions)
		}
	}
	locks := s.cfg.Lock.Held()
	sort.Strings(locks)
	s.metrics.setLocks(locks)
	s.metrics.runs.WithLabelValues(string(class)).Inc()
	s.metrics.duration.Observe(dur.Seconds())
	s.metrics.setCondition(cond, rsn)
	failures := s.failures
	if class == ClassTransient {
		failures++
	} else if class == ClassSuccess {
		failures = 0
	}
	s.metrics.failures.Set(float64(failures))
	if class == ClassSuccess {
		s.metrics.lastSuccess.Set(float64(end.UnixMilli()) / 1000)
	}
	if applied {
		s.metrics.setRevision("applied", s.goodRev.Revision)
	}
	s.update(func(st *Status) {
		st.Current = nil
		st.LastRun = &done
		st.Runs = append([]Run{done}, st.Runs[:min(len(st.Runs), RunHistory-1)]...)
		st.Condition, st.Reason, st.Message = cond, rsn, msg
		st.Errors = nil
		if len(invalid) > 0 {
			st.Errors = invalid
		}
		if plan != nil {
			st.LastPlan = plan
			st.Drift = driftBy
		}
		st.Steps = steps
		st.LocksHeld = locks
		st.ConsecutiveFailures = failures
		if class == ClassSuccess {
			st.LastSuccess = end
		}
		if applied {
			r := *s.goodRev
			r.At = end
			st.LastApplied = &r
		}
	})
	log := s.log.With("trigger", run.Trigger, "result", string(class), "condition", cond, "reason", rsn, "duration", dur.Round(time.Millisecond))
	if s.good != nil {
		log = log.With("commit", s.good.Commit)
	}
	if cond == Ready {
		log.Info("reconciled", "message", msg)
	} else {
		log.Warn("reconcile", "message", msg)
	}
	return class
}

// blocked lists the plan's blocked changes ("cluster node: guard: reason"):
// an empty plan with blocked changes is not converged.
func blocked(p *reconcile.Result) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, c := range p.Clusters {
		for _, b := range c.Blocked {
			out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s", b.Cluster, b.Node))+": "+b.Guard+": "+b.Reason)
		}
	}
	return out
}
