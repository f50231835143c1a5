package reconcile

// The guards of disruptive and destructive actions (README, "Guards on
// destructive actions").

import (
	"fmt"
	"strings"

	"github.com/pgaf-gitops/reconciler/observe"
)

// healthyPrimary returns the healthy, settled primary other than except.
func (p *planner) healthyPrimary(except string) *observe.Node {
	for _, n := range p.nodes {
		if n.Name != except && p.ready(n) && (n.ReportedState == "primary" || n.ReportedState == "single") {
			return n
		}
	}
	return nil
}

// guardReplace checks the guards of a disruptive, non-destructive change
// of a secondary's container: what says which ("container must be
// replaced", "server must be restarted").
func (p *planner) guardReplace(name, what string) bool {
	prim := p.healthyPrimary(name)
	if prim == nil {
		if on := p.monitorNode(name); on != nil && (on.ReportedState == "single") {
			p.pass(name, GuardNoHealthyPrimary, func() string { return name + " is single: no other node to protect" })
			return true // a lone node: nobody else to protect
		}
		p.block(name, GuardNoHealthyPrimary, fmt.Sprintf("%s's %s, but no other node is a healthy primary", name, what))
		return false
	}
	p.pass(name, GuardNoHealthyPrimary, func() string { return prim.Name + " is a healthy primary" })
	if other := p.unsettledOther(name); other != "" {
		p.block(name, GuardInFlight, fmt.Sprintf("%s's %s, but %s", name, what, other))
		return false
	}
	p.pass(name, GuardInFlight, func() string { return "every other node is settled and healthy" })
	return true
}

// unsettledOther describes another node of the cluster that is not settled
// and healthy, or returns "".
func (p *planner) unsettledOther(name string) string {
	for _, n := range p.nodes {
		if n.Name == name {
			continue
		}
		if !p.ready(n) {
			return p.why(n)
		}
	}
	return ""
}

// guardDestroy checks every guard of a destructive action on a running
// node (README, "Guards on destructive actions"), blocking with the
// first that fails.
func (p *planner) guardDestroy(name string, on *observe.Node) bool {
	if p.oc == nil || !p.oc.Monitor.Reached {
		p.block(name, GuardMonitorUnobserved, name+" cannot be dropped while the monitor is not observed")
		return false
	}
	p.pass(name, GuardMonitorUnobserved, func() string { return "the monitor was observed in this cycle" })
	if on == nil {
		p.pass(name, GuardTargetPrimary, func() string { return name + " is not registered on the monitor: nothing of the cluster depends on it" })
		return true // not registered: nothing of the cluster depends on it
	}
	if isPrimary(on) {
		p.block(name, GuardTargetPrimary, fmt.Sprintf("%s is %s (assigned %s) on the monitor; it is never dropped", name, on.ReportedState, on.AssignedState))
		return false
	}
	p.pass(name, GuardTargetPrimary, func() string {
		return fmt.Sprintf("%s is %s (assigned %s) on the monitor", name, on.ReportedState, on.AssignedState)
	})
	prim := p.healthyPrimary(name)
	if prim == nil {
		p.block(name, GuardNoHealthyPrimary, fmt.Sprintf("%s cannot be dropped: no other node is a healthy primary", name))
		return false
	}
	p.pass(name, GuardNoHealthyPrimary, func() string { return prim.Name + " is a healthy primary" })
	if (on.Timeline > prim.Timeline && !forked(on, prim)) || (on.Timeline == prim.Timeline && lsnGreater(on.LSN, prim.LSN) && !settled(on)) {
		p.block(name, GuardNewestData, fmt.Sprintf("%s (timeline %d, LSN %s) may hold data the primary %s (timeline %d, LSN %s) lacks", name, on.Timeline, on.LSN, prim.Name, prim.Timeline, prim.LSN))
		return false
	}
	p.pass(name, GuardNewestData, func() string { return newestDataPassed(on, prim) })
	other := p.unsettledOther(name)
	if other != "" && !strings.HasPrefix(other, prim.Name+" ") {
		p.block(name, GuardInFlight, fmt.Sprintf("%s cannot be dropped while another change is in flight: %s", name, other))
		return false
	}
	p.pass(name, GuardInFlight, func() string {
		if other != "" {
			return other + ": the primary, which a drop does not wait for"
		}
		return "every other node is settled and healthy"
	})
	secondaries, nonPrimaries := 0, 0
	for _, n := range p.nodes {
		if n.Name == name || n.Name == prim.Name {
			continue
		}
		nonPrimaries++
		if p.ready(n) && n.ReportedState == "secondary" {
			secondaries++
		}
	}
	if secondaries == 0 && nonPrimaries > 0 {
		p.block(name, GuardRedundancy, fmt.Sprintf("dropping %s would leave the primary %s without a healthy secondary", name, prim.Name))
		return false
	}
	p.pass(name, GuardRedundancy, func() string {
		if nonPrimaries == 0 {
			return fmt.Sprintf("%s is the last node besides the primary %s: the guard does not keep a last standby", name, prim.Name)
		}
		return fmt.Sprintf("without %s, %d of the %d nodes besides the primary %s are healthy secondaries", name, secondaries, nonPrimaries, prim.Name)
	})
	return true
}

// newestDataPassed says why on holds no data the primary prim lacks, once
// guardDestroy found so.
func newestDataPassed(on, prim *observe.Node) string {
	why := "not ahead of the primary's"
	switch {
	case on.Timeline > prim.Timeline:
		why = "ahead only by a history forked from the primary's"
	case on.Timeline == prim.Timeline && lsnGreater(on.LSN, prim.LSN):
		why = "ahead of the primary's last report, but settled as " + on.ReportedState + " (reports are seconds apart)"
	}
	return fmt.Sprintf("%s (timeline %d, LSN %s) is %s: the primary %s has timeline %d, LSN %s", on.Name, on.Timeline, on.LSN, why, prim.Name, prim.Timeline, prim.LSN)
}

// lsnGreater compares two PostgreSQL LSNs written as "X/Y".
func lsnGreater(a, b string) bool {
	pa, oka := observe.ParseLSN(a)
	pb, okb := observe.ParseLSN(b)
	return oka && okb && pa > pb
}
