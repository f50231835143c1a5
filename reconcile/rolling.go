package reconcile

// Planning of rolling changes: a secondary through maintenance, the
// primary last after a switchover pg_auto_failover performs.

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// planPrimaryReplacement handles a primary whose container spec changed:
// a switchover first (pg_auto_failover performs it), the replacement in a
// later plan, once the node is a secondary.
func (p *planner) planPrimaryReplacement(n *desired.Node) {
	on := p.monitorNode(n.Name)
	if on.ReportedState == "single" {
		spec := p.nodeSpec(n)
		p.add(Action{Kind: ReplaceContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec, Disruptive: true,
			Reason: fmt.Sprintf("%s is the only node; its container is replaced in place (writes pause while it restarts)", n.Name)})
		p.waitNode(n, "drift", n.Name+" must be back")
		return
	}
	p.switchover(n.Name, "drift", fmt.Sprintf("%s is the primary and its container spec changed: pg_auto_failover is asked for a switchover, the container is replaced once %s is a secondary", n.Name, n.Name))
}

func (p *planner) switchover(name, trigger, reason string) {
	// perform_failover returns at once; until the node reached its new
	// state, the monitor shows it primary with another goal: in flight.
	if on := p.monitorNode(name); on != nil && !p.ready(on) {
		p.block(name, GuardInFlight, reason+"; waiting: "+p.why(on))
		return
	}
	if other := p.unsettledOther(name); other != "" {
		p.block(name, GuardInFlight, reason+"; waiting: "+other)
		return
	}
	p.pass(name, GuardInFlight, func() string { return "every node is settled and healthy" })
	cand := ""
	for _, n := range p.nodes {
		if n.Name != name && n.CandidatePriority > 0 && p.ready(n) && n.ReportedState == "secondary" {
			cand = n.Name
			break
		}
	}
	if cand == "" {
		p.block(name, GuardNoCandidate, reason+"; but no healthy secondary has a candidate priority above 0")
		return
	}
	p.pass(name, GuardNoCandidate, func() string { return cand + " is a healthy secondary with a candidate priority above 0" })
	on := p.monitorNode(name)
	if p.add(Action{Kind: Switchover, Node: name, NodeID: on.ID, Trigger: trigger, Disruptive: true, Reason: reason,
		Evidence: []string{fmt.Sprintf("%s is %s; %s is a healthy secondary candidate", name, on.ReportedState, cand)}}) {
		p.add(Action{Kind: Wait, Node: name, Trigger: trigger, Reason: "pg_auto_failover finishes the switchover",
			Until: &Condition{Node: name, States: []string{"secondary"}, Timeout: Duration(SwitchoverTimeout)}})
	}
}

// What guardReplace guards, in its reasons.
const (
	whatReplace = "container must be replaced"
	whatRestart = "server must be restarted"
)

// The maintenance states of pg_auto_failover: a secondary asked to enter
// maintenance is assigned wait_maintenance or maintenance.
const stateMaintenance = "maintenance"

var maintenanceStates = []string{"wait_maintenance", stateMaintenance}

func inMaintenance(n *observe.Node) bool { return slices.Contains(maintenanceStates, n.AssignedState) }

// follow appends a step of a sequence whose first step was added with add:
// the sequence is one disruption of one node.
func (p *planner) follow(a Action) {
	p.out.Actions = append(p.out.Actions, withCluster(a, p.c.Name))
}

func (p *planner) waitMaintenance(n *desired.Node, trigger, reason string) {
	p.follow(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: reason,
		Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
}

// roll takes a ready secondary through maintenance to give it a new
// container (replace) or restart its server: start_maintenance, wait for
// maintenance, replace or restart the container (same volume, same node
// id), wait until the node reports from its new container, stop_maintenance,
// wait until it is a secondary again. Each step is derived from the
// observation (planMaintenance), so an interruption resumes where it
// stopped; the next node is touched only once this one is ready again.
func (p *planner) roll(n *desired.Node, on *observe.Node, replace bool, trigger, reason string, ev []string) {
	what := whatRestart
	if replace {
		what = whatReplace
	}
	if !p.guardReplace(n.Name, what) {
		return
	}
	if !p.add(Action{Kind: EnableMaintenance, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: trigger, Disruptive: true, Evidence: ev,
		Reason: reason + ": put in maintenance first, so pg_auto_failover neither counts on it as a standby nor promotes it"}) {
		return
	}
	p.waitMaintenance(n, trigger, "pg_auto_failover puts "+n.Name+" in maintenance")
	p.change(n, on, replace, trigger, reason, nil, false)
}

// change replaces or restarts the container of a node in maintenance, then
// lifts the maintenance. first says whether the change is the first
// action of the sequence in this plan (it then goes through add).
func (p *planner) change(n *desired.Node, on *observe.Node, replace bool, trigger, reason string, ev []string, first bool) {
	a := Action{Kind: RestartContainer, Node: n.Name, VM: n.VM, Trigger: trigger, Disruptive: true, Evidence: ev,
		Reason: reason + ": restart its container while it is in maintenance"}
	if replace {
		spec := p.nodeSpec(n)
		a.Kind, a.Spec = ReplaceContainer, &spec
		a.Reason = reason + ": replace its container while it is in maintenance"
	}
	if first {
		if !p.add(a) {
			return
		}
	} else {
		p.follow(a)
	}
	p.waitMaintenance(n, trigger, n.Name+" must report to the monitor from its new container")
	p.lift(n, on, trigger, false)
}

// lift plans stop_maintenance and the wait for the node to be a secondary.
func (p *planner) lift(n *desired.Node, on *observe.Node, trigger string, first bool) {
	a := Action{Kind: DisableMaintenance, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: trigger,
		Reason: n.Name + "'s container was changed during its maintenance: lift the maintenance"}
	if first {
		if !p.add(a) {
			return
		}
	} else {
		p.follow(a)
	}
	p.follow(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: n.Name + " must be a secondary again before the next node",
		Until: &Condition{Node: n.Name, States: []string{"secondary"}, Timeout: Duration(NodeJoinTimeout)}})
}

// planMaintenance plans a node that is in maintenance (or entering it).
// The reconciler counts a maintenance as its own when the node's
// container started after the node entered maintenance: its rollout
// changes the container only during a maintenance. It then lifts the
// maintenance once the container matches its spec. A maintenance an
// operator started by hand (the container is older) is left alone.
func (p *planner) planMaintenance(n *desired.Node, ct *observe.Container, on *observe.Node) {
	spec := p.nodeSpec(n)
	replace := !p.specCurrent(n, ct)
	restart := !replace && len(p.pendingRestart(ct)) > 0
	ours := !ct.StartedAt.IsZero() && ct.StartedAt.After(on.StateChangeTime)
	running := ct.State == "running" || ct.State == "restarting"
	trigger := "drift"
	if restart {
		trigger = "settings"
	}
	if !replace && !restart && ours {
		p.pass(n.Name, GuardMaintenance, func() string { return "the maintenance is the reconciler's: the container started after it began" })
	}
	switch {
	case !replace && !restart && !ours:
		p.block(n.Name, GuardMaintenance, fmt.Sprintf("%s is in maintenance (%s, assigned %s) and its container is older than the maintenance: an operator's; lift it with pg_autoctl disable maintenance", n.Name, on.ReportedState, on.AssignedState))
	case on.ReportedState != stateMaintenance:
		p.add(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: fmt.Sprintf("%s is %s, assigned %s: pg_auto_failover puts it in maintenance", n.Name, on.ReportedState, on.AssignedState),
			Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
		if replace || restart {
			p.change(n, on, replace, trigger, n.Name+" is rolled", nil, true)
		}
	case replace || restart:
		why := fmt.Sprintf("%s is in maintenance and its container differs from its spec (spec-hash %s, desired %s)", n.Name, ct.SpecHash, spec.Labels[observe.LabelSpecHash])
		if restart {
			why = fmt.Sprintf("%s is in maintenance and %s wait for a restart", n.Name, strings.Join(p.pendingRestart(ct), ", "))
		}
		p.change(n, on, replace, trigger, why, []string{fmt.Sprintf("container %s image %s started %s; in maintenance since %s", ct.Name, ct.Image, ct.StartedAt.Format(time.RFC3339), on.StateChangeTime.Format(time.RFC3339))}, true)
	case !running:
		p.add(Action{Kind: StartContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec,
			Reason: fmt.Sprintf("%s's container is %s during the maintenance the reconciler started", n.Name, ct.State)})
		p.waitMaintenance(n, "drift", n.Name+" must report to the monitor from its container")
		p.lift(n, on, "drift", false)
	case p.stale[n.Name]:
		p.add(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: "drift", Reason: n.Name + " has not reported to the monitor since its container started",
			Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
		p.lift(n, on, "drift", false)
	default:
		p.lift(n, on, "drift", true)
	}
}
