package reconcile

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// GuardMonitorLost blocks creating a new, empty monitor while nodes still
// hold state registered with the old one (README, "Replacing the
// monitor"): only a commit that sets monitor.recreate allows it.
const GuardMonitorLost = "monitor_lost"

// MinLogEvidence is how many matching log lines count as "repeated": one
// line may be a failure pg_auto_failover already recovered from.
const MinLogEvidence = 2

// divergence returns the evidence that node n is stuck or diverged and has
// stayed so for longer than the cluster's grace period; nil when there is
// none. It is pure: time is the observation's.
//
// A node is stuck or diverged, while another node is a healthy settled
// primary, when:
//   - its reported state has not reached its assigned state;
//   - it is a settled secondary on a timeline ahead of the primary's: its
//     history forked (a standby promoted by hand, or an old primary that
//     was written to alone), and pg_auto_failover never notices it;
//   - it is on a timeline behind the primary's and has not moved since the
//     primary took its state;
//   - its container restarts in a loop;
//   - it is settled but not running or not healthy, with repeated fatal
//     lines in its log (failed pg_rewind, timeline not a child of this
//     server's history, system identifier mismatch, ...).
//
// The grace period runs from the node's last state change, from its
// container's start, and from the newest monitor event about it (the
// observation keeps the monitor's latest events): a node that just came
// back (a VM powered on, a container re-created, a partition healed, which
// the monitor records as "marked as healthy") gets the whole grace period
// to rejoin by itself, which pg_auto_failover usually does (pg_rewind, then
// pg_basebackup). A stuck node makes no news. A
// settled, healthy secondary on the primary's timeline is never diverged,
// whatever its log says: its log may keep a failure it recovered from.
func (p *planner) divergence(n *desired.Node, ct *observe.Container, on *observe.Node) []string {
	if ct == nil || on == nil || isPrimary(on) || on.StateChangeTime.IsZero() {
		return nil
	}
	prim := p.healthyPrimary(n.Name)
	if prim == nil {
		return nil
	}
	grace := p.c.Diverged.GracePeriod.Duration
	now := p.obs.Time
	loop := ct.State == "restarting" || ct.RestartCount >= RestartLoopCount
	since := now.Sub(on.StateChangeTime)
	if !loop {
		if !ct.StartedAt.IsZero() && now.Sub(ct.StartedAt) < since {
			since = now.Sub(ct.StartedAt)
		}
		if ev := p.lastEvent(on); !ev.IsZero() && now.Sub(ev) < since {
			since = now.Sub(ev)
		}
	}
	// A stopped container is a wipe in progress (the sequence stops the
	// container first) or an operator's stop. Stopping it makes news (the
	// monitor marks it unhealthy), which would restart the clock and make
	// the next plan start it again. So for a stopped container only the
	// evidence that does not fade with time counts, without waiting: a
	// fork, a restart loop, repeated fatal lines, and a timeline that was
	// behind the primary's for the whole grace period while the container
	// still ran (behindWhileRunning). Being unsettled, or behind since the
	// stop, does not: an operator's stop makes any node so.
	stopped := ct.State != "running" && ct.State != "restarting"
	if since < grace && !stopped {
		return nil
	}
	isSettled := settled(on) || stopped
	var ev []string
	why := false // a reason to act, besides supporting evidence
	if stopped {
		ev = append(ev, fmt.Sprintf("container %s (a wipe in progress, or stopped by hand)", ct.State))
	}
	if !isSettled {
		ev = append(ev, fmt.Sprintf("reported %s, assigned %s for %s (grace %s)", on.ReportedState, on.AssignedState, since.Round(time.Second), grace))
		why = true
	}
	var behindFrom time.Time
	if stopped {
		behindFrom = p.behindSince(ct, on, prim)
	}
	switch {
	case forked(on, prim):
		ev = append(ev, fmt.Sprintf("timeline %d ahead of the primary %s's %d while %s for %s: its history forked from the primary's", on.Timeline, prim.Name, prim.Timeline, on.ReportedState, since.Round(time.Second)))
		why = true
	case on.Timeline < prim.Timeline && now.Sub(prim.StateChangeTime) >= grace && !stopped:
		ev = append(ev, fmt.Sprintf("timeline %d behind the primary %s's %d, not moved in %s", on.Timeline, prim.Name, prim.Timeline, min(since, now.Sub(prim.StateChangeTime)).Round(time.Second)))
		why = true
	case stopped && !behindFrom.IsZero() && ct.FinishedAt.Sub(behindFrom) >= grace:
		ev = append(ev, fmt.Sprintf("timeline %d behind the primary %s's %d for %s before its container stopped at %s", on.Timeline, prim.Name, prim.Timeline,
			ct.FinishedAt.Sub(behindFrom).Round(time.Second), ct.FinishedAt.Format(time.RFC3339)))
		why = true
	}
	if loop {
		ev = append(ev, fmt.Sprintf("container %s, restarted %d times", ct.State, ct.RestartCount))
		why = true
	}
	if (settled(on) || stopped) && !healthy(on) && len(ct.LogEvidence) >= MinLogEvidence {
		ev = append(ev, fmt.Sprintf("%s but health %s, postgres running %v, with %d fatal log lines", on.ReportedState, on.Health, on.PGIsRunning, len(ct.LogEvidence)))
		why = true
	}
	if !why {
		return nil
	}
	for _, l := range ct.LogEvidence {
		ev = append(ev, "log: "+l)
	}
	return ev
}

// behindSince returns when a stopped node's window of being behind began:
// the latest of the primary taking its state, the container's start, and
// the node's own state change and newest monitor event before the stop.
// When the container stopped at least grace after that, the node's
// timeline (the last its keeper reported) was behind the primary's for the
// whole grace period while it still ran: it was diverged before anyone
// stopped it. So stopping it (the first step of its wipe) does not clear
// the evidence, and the next plan goes on with the wipe instead of
// starting it again. A node stopped before a failover, or within the grace
// period after one or after its last news, does not qualify. Zero when
// the node is not behind or a time is unknown.
func (p *planner) behindSince(ct *observe.Container, on, prim *observe.Node) time.Time {
	if on.Timeline >= prim.Timeline || ct.FinishedAt.IsZero() || ct.StartedAt.IsZero() || prim.StateChangeTime.IsZero() {
		return time.Time{}
	}
	from := prim.StateChangeTime
	for _, t := range []time.Time{ct.StartedAt, on.StateChangeTime} {
		if t.After(from) && t.Before(ct.FinishedAt) {
			from = t
		}
	}
	if p.oc != nil {
		for _, e := range p.oc.Monitor.Events {
			if (e.NodeID == on.ID || e.NodeName == on.Name) && e.Time.After(from) && e.Time.Before(ct.FinishedAt) {
				from = e.Time
			}
		}
	}
	return from
}

// droppedLeftover returns evidence when node n holds data on its VM but is
// no longer registered on the monitor, while other nodes are and one is a
// healthy primary, and its container is stopped or gone: the rest of a
// wipe whose remove_node already ran (the evidence that started it lived
// on the monitor's row, which the wipe deleted). Such data cannot rejoin
// as it is: pg_autoctl would re-register on a PGDATA the cluster no longer
// knows (seen on the lab: "Skipping base backup to use pre-existing PGDATA",
// then stuck in catchingup on its old timeline). A running container is
// left alone: a node being created has one before it registers.
func (p *planner) droppedLeftover(n *desired.Node, ct *observe.Container, vol *observe.Volume, on *observe.Node) []string {
	// Assigned dropped is the step before unregistered: a wipe's remove_node
	// ran. Planning it as drift would start the container again on the old
	// data (seen in CI: the primary's apply_settings after the drop moved
	// its state-change time past the stop, so behindSince lost the
	// evidence, and node2 sat in catchingup for 15 minutes).
	dropped := on != nil && on.AssignedState == "dropped"
	if (on != nil && !dropped) || vol == nil || !p.monitorUp || len(p.nodes) == 0 || p.healthyPrimary(n.Name) == nil {
		return nil
	}
	if ct != nil && (ct.State == "running" || ct.State == "restarting") {
		return nil
	}
	what := "no container"
	if ct != nil {
		what = "its container " + ct.State
	}
	state := "is not registered on the monitor"
	if dropped {
		state = fmt.Sprintf("is assigned dropped on the monitor (id %d)", on.ID)
	}
	return []string{fmt.Sprintf("%s %s but its volume %s remains (%s): the rest of a wipe, or a node dropped by hand; its data cannot rejoin as it is", n.Name, state, vol.Name, what)}
}

// lastEvent is the time of the newest monitor event about on, zero when the
// observation holds none.
func (p *planner) lastEvent(on *observe.Node) time.Time {
	var t time.Time
	if p.oc == nil {
		return t
	}
	for _, e := range p.oc.Monitor.Events {
		if (e.NodeID == on.ID || e.NodeName == on.Name) && e.Time.After(t) {
			t = e.Time
		}
	}
	return t
}

// forked reports whether on, a node neither primary nor being promoted,
// is on a timeline ahead of prim's, a healthy settled primary. In
// pg_auto_failover a standby's timeline follows its primary's and only a
// promotion moves it ahead; so its extra history is not data the primary
// lacks but a fork no standby can follow (a standby promoted by hand, an
// old primary written to alone), and the newest_data guard does not protect
// it. A node being promoted is in a primary state and never counts.
func forked(on, prim *observe.Node) bool {
	return on.Timeline > prim.Timeline && !isPrimary(on) && settled(prim) && healthy(prim)
}

// recreateUsed names the nodes the reconciler moved to the monitor of the
// desired monitor.recreate token (their keeper files record it).
func (p *planner) recreateUsed() []string {
	var used []string
	for _, k := range p.idx.byCluster[p.c.Name] {
		if ct := p.idx.objects[k].container; k.node != "monitor" && ct != nil && ct.Keeper != nil && ct.Keeper.Recreate != "" && ct.Keeper.Recreate == p.c.Monitor.Recreate {
			used = append(used, k.node)
		}
	}
	return used
}

// monitorLost decides whether a cluster whose monitor has no container may
// have one created. vol is the monitor's volume (nil when absent). It
// returns a non-empty block reason when the monitor's data is gone while
// nodes still hold state registered with it and no commit asked for a new
// monitor; otherwise the evidence for the create action (nil for a plain
// bring-up or a container re-created on its volume).
//
// A new, empty monitor knows none of the nodes: their keepers would report
// node ids it never issued, and each must be moved to it (pg_autoctl's
// disable/enable monitor, planNodeMoves). Losing the data is not a
// decision the planner takes alone: a commit asks for it.
func (p *planner) monitorLost(vol *observe.Volume) (block string, evidence []string) {
	if vol != nil {
		return "", nil
	}
	var held []string
	for _, k := range p.idx.byCluster[p.c.Name] {
		if k.node == "monitor" {
			continue
		}
		o := p.idx.objects[k]
		switch {
		case o.container != nil:
			held = append(held, fmt.Sprintf("%s on %s (container %s)", k.node, k.vm, o.container.State))
		case o.volume != nil:
			held = append(held, fmt.Sprintf("%s on %s (volume %s)", k.node, k.vm, o.volume.Name))
		}
	}
	if len(held) == 0 {
		return "", nil
	}
	tok := p.c.Monitor.Recreate
	if used := p.recreateUsed(); tok != "" && len(used) > 0 {
		return fmt.Sprintf("the monitor has neither container nor volume on %s, and monitor.recreate %q already acted: %s moved to the monitor it created, whose data is gone too; "+
			"commit a new token to create another", p.c.Monitor.VM, tok, strings.Join(used, ", ")), nil
	}
	if tok != "" {
		return "", []string{fmt.Sprintf("monitor.recreate is %q and the monitor has no volume on %s", tok, p.c.Monitor.VM),
			"nodes hold state registered with the old monitor: " + strings.Join(held, ", ")}
	}
	return fmt.Sprintf("the monitor has neither container nor volume on %s, but nodes hold state registered with it: %s; "+
		"a new empty monitor would not know them. Commit a new monitor.recreate token (and monitor.vm, to put it elsewhere): the nodes are then moved to the new monitor (README, \"Replacing the monitor\")",
		p.c.Monitor.VM, strings.Join(held, ", ")), nil
}
