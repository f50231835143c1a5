package reconcile

import (
	"fmt"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// divergence returns the evidence that a node is stuck or diverged and the
// grace period has passed; nil when there is none.
func (p *planner) divergence(n *desired.Node, ct *observe.Container, on *observe.Node) []string {
	if ct == nil || on == nil || isPrimary(on) {
		return nil
	}
	prim := p.healthyPrimary(n.Name)
	if prim == nil {
		return nil
	}
	grace := p.c.Diverged.GracePeriod.Duration
	since := p.obs.Time.Sub(on.StateChangeTime)
	if on.StateChangeTime.IsZero() || since < grace {
		return nil
	}
	var ev []string
	if on.ReportedState != on.AssignedState {
		ev = append(ev, fmt.Sprintf("reported %s, assigned %s for %s (grace %s)", on.ReportedState, on.AssignedState, since.Round(time.Second), grace))
	}
	if on.Timeline < prim.Timeline && !settled(on) {
		ev = append(ev, fmt.Sprintf("timeline %d behind the primary's %d", on.Timeline, prim.Timeline))
	}
	if ct.State == "restarting" || ct.RestartCount >= RestartLoopCount {
		ev = append(ev, fmt.Sprintf("container %s, restarted %d times", ct.State, ct.RestartCount))
	}
	for _, l := range ct.LogEvidence {
		ev = append(ev, "log: "+l)
	}
	if len(ev) == 0 || (settled(on) && len(ct.LogEvidence) == 0 && ct.RestartCount < RestartLoopCount) {
		return nil
	}
	return ev
}
