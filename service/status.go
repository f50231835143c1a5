package service

import (
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

// Conditions of the service, as /status reports them.
const (
	// Ready: the last run converged (or, in dry-run, found no drift) on the
	// newest revision the source offered.
	Ready = "Ready"
	// Reconciling: a run is in progress, or the last one will be retried
	// (a transient failure, or a dependency not ready yet).
	Reconciling = "Reconciling"
	// Stalled: a person is needed. The newest revision is invalid, not
	// trusted, or misplaced (the last good one stays in force), or, in
	// dry-run, the cluster drifted.
	Stalled = "Stalled"
)

// Reasons, machine-readable, beside the human message.
const (
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonProgressing        = "Progressing"
	ReasonInvalid            = "InvalidDesiredState"
	ReasonVerificationFailed = "VerificationFailed"
	ReasonSourceConfig       = "SourceMisconfigured"
	ReasonFetchFailed        = "FetchFailed"
	ReasonNoDesiredState     = "NoDesiredState"
	ReasonLockHeld           = "LockHeld"
	ReasonDependencyNotReady = "DependencyNotReady"
	ReasonBlocked            = "Blocked"
	ReasonApplyFailed        = "ApplyFailed"
	ReasonInterrupted        = "Interrupted"
	ReasonDrift              = "DriftDetected"
	ReasonNoDrift            = "NoDrift"
)

// Revision describes one revision of the desired state.
type Revision struct {
	Revision string    `json:"revision"`
	Commit   string    `json:"commit,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Author   string    `json:"author,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	SignedBy string    `json:"signed_by,omitempty"`
	// At is when the revision was seen, put in force or applied.
	At time.Time `json:"at,omitzero"`
}

// RunHistory is how many finished runs Status.Runs keeps.
const RunHistory = 20

// Run is one reconcile run.
type Run struct {
	Trigger  string    `json:"trigger"`
	Start    time.Time `json:"start"`
	Duration string    `json:"duration,omitempty"`
	// Revision and Commit are those of the desired state the run enforced
	// (empty when none was in force).
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Result is the class of its outcome: success, stalled, waiting,
	// transient or interrupted.
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// Pending and Blocked count the actions and the blocked changes of the
	// run's last plan: what was left to do (in dry-run, the drift) and
	// what the guards held back.
	Pending int `json:"pending_actions"`
	Blocked int `json:"blocked_changes"`
	// Steps are the actions the run executed, in order.
	Steps []Step `json:"steps,omitempty"`
}

// Step is one executed action, for /status.
type Step struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Action  string `json:"action"`
	What    string `json:"what"`
	// Reason and Evidence are the planner's: why the action was chosen,
	// and the observations a disruptive one rests on.
	Reason   string   `json:"reason,omitempty"`
	Evidence []string `json:"evidence,omitempty"`
	Duration string   `json:"duration"`
	Error    string   `json:"error,omitempty"`
}

// Status is what /status returns: the service's record, written at the end
// of every run whatever path it took.
type Status struct {
	Source   string `json:"source"`
	Instance string `json:"instance"`
	DryRun   bool   `json:"dry_run"`
	// Condition is Ready, Reconciling or Stalled; Reason and Message say why.
	Condition string `json:"condition"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	// Errors are the problems of the newest revision when it is invalid,
	// each with its FILE:LINE:COL.
	Errors []*desired.Error `json:"errors,omitempty"`
	// LastSeen is the newest revision the source offered; InForce is the
	// one enforced (the last good one); LastApplied the last one converged.
	LastSeen    *Revision `json:"last_seen,omitempty"`
	InForce     *Revision `json:"in_force,omitempty"`
	LastApplied *Revision `json:"last_applied,omitempty"`
	// LastRun is the last finished run; Current the one in progress.
	LastRun *Run `json:"last_run,omitempty"`
	Current *Run `json:"current,omitempty"`
	// LastSuccess is when a run last ended in success.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// ConsecutiveFailures counts transient failures since the last success.
	ConsecutiveFailures int       `json:"consecutive_failures"`
	NextRun             time.Time `json:"next_run,omitzero"`
	// LastPlan is the last plan computed (after the last step of a run:
	// empty when converged; in dry-run, the drift).
	LastPlan *reconcile.Result `json:"last_plan,omitempty"`
	// Drift is the number of actions of LastPlan, by cluster.
	Drift map[string]int `json:"drift,omitempty"`
	// Steps are the actions the last run executed (the current run's
	// while one is in progress).
	Steps []Step `json:"steps,omitempty"`
	// Runs are the last RunHistory finished runs, newest first.
	Runs []Run `json:"runs"`
	// Report is the joined view of the last observation (what `reconciler
	// status` prints), its failovers read from every event this instance
	// has seen; orphaned volumes are not measured.
	Report *report.Report `json:"report,omitempty"`
	// ObservedAt is the time of the last observation; ObservationAge is how
	// old it was when this status was read.
	ObservedAt     time.Time `json:"observed_at,omitzero"`
	ObservationAge string    `json:"observation_age,omitempty"`
	// LocksHeld are the clusters whose lock this instance holds.
	LocksHeld []string `json:"locks_held"`
}

// clone copies the status deeply enough to be read outside the lock (the
// plan, report, revisions and the runs' steps are replaced, never modified
// in place).
func (s *Status) clone() Status {
	c := *s
	c.Errors = append([]*desired.Error(nil), s.Errors...)
	c.Steps = append([]Step(nil), s.Steps...)
	c.Runs = append([]Run{}, s.Runs...)
	c.LocksHeld = append([]string(nil), s.LocksHeld...)
	if s.Drift != nil {
		c.Drift = make(map[string]int, len(s.Drift))
		for k, v := range s.Drift {
			c.Drift[k] = v
		}
	}
	return c
}
