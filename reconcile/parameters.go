package reconcile

// Planning of PostgreSQL parameters and the restarts they need.

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// pendingRestart lists the desired PostgreSQL parameters the node's server
// reports as pending a restart.
func (p *planner) pendingRestart(ct *observe.Container) []string {
	if ct == nil || ct.Postgres == nil {
		return nil
	}
	var out []string
	for _, k := range ct.Postgres.PendingRestart {
		if _, ok := p.c.PostgreSQLParameters[k]; ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// planPostgresParameters sets the desired PostgreSQL parameters on every
// running node whose postgresql.auto.conf differs. Parameters that the
// desired state no longer lists are left as they are (pg_autoctl writes
// its own, such as synchronous_standby_names, in the same file).
func (p *planner) planPostgresParameters(nodes []*desired.Node) {
	want := p.c.PostgreSQLParameters
	if len(want) == 0 {
		return
	}
	for _, n := range nodes {
		ct, _ := p.container(n.VM, n.Name)
		on := p.monitorNode(n.Name)
		if ct == nil || ct.State != "running" || on == nil {
			continue // set once the node joined, in a later plan
		}
		if ct.Postgres == nil || ct.Postgres.Error != "" {
			why := "it was not read"
			if ct.Postgres != nil {
				why = ct.Postgres.Error
			}
			p.block(n.Name, GuardPostgresUnobserved, fmt.Sprintf("%s's PostgreSQL parameters cannot be compared: %s", n.Name, why))
			continue
		}
		p.pass(n.Name, GuardPostgresUnobserved, func() string { return "its PostgreSQL server answered" })
		set, prev, restart := p.parameterChanges(ct)
		if len(set) == 0 {
			continue
		}
		reason := fmt.Sprintf("%s: PostgreSQL parameters %s not as desired (ALTER SYSTEM on this node, then reload", n.Name, strings.Join(SortedKeys(set), ", "))
		if len(restart) == 0 {
			reason += "; no restart)"
		} else {
			reason += fmt.Sprintf("); %s take effect only after a restart: the nodes restart one at a time after this, secondaries first in maintenance, the primary last after a switchover", strings.Join(restart, ", "))
		}
		p.add(Action{Kind: SetPostgresParameters, Node: n.Name, VM: n.VM, Trigger: "settings", Settings: set, Previous: nilIfEmpty(prev), Restart: restart, Reason: reason})
	}
}

// parameterChanges compares a running node's postgresql.auto.conf with the
// desired parameters: what to set, the values it replaces, and which of
// them need a restart.
func (p *planner) parameterChanges(ct *observe.Container) (set, prev map[string]string, restart []string) {
	set, prev = map[string]string{}, map[string]string{}
	want := p.c.PostgreSQLParameters
	for _, k := range SortedKeys(want) {
		have, ok := ct.Postgres.Parameters[k]
		if ok && have == want[k] {
			continue
		}
		set[k] = want[k]
		if ok {
			prev[k] = have
		}
		if needsRestart(ct.Postgres, k) {
			restart = append(restart, k)
		}
	}
	return set, prev, restart
}

// parametersFirst names the nodes that must have the desired PostgreSQL
// parameters before a new node is created (none: nothing waits): the
// registered, running nodes whose parameters this plan sets
// (planPostgresParameters, when settings are safe so far), and a first node
// created by this plan (it clones nothing: its parameters are set once it
// joined, in the next plan).
func (p *planner) parametersFirst() []string {
	if len(p.c.PostgreSQLParameters) == 0 {
		return nil
	}
	var names []string
	safe, primary := p.settingsSafe(), p.healthyPrimary("") != nil
	for _, n := range p.desiredNodes() {
		if !primary && p.planned(CreateNode, n.Name) {
			names = append(names, n.Name)
			continue
		}
		ct, _ := p.container(n.VM, n.Name)
		if !safe || ct == nil || ct.State != "running" || p.monitorNode(n.Name) == nil || ct.Postgres == nil || ct.Postgres.Error != "" {
			continue
		}
		if set, _, _ := p.parameterChanges(ct); len(set) > 0 {
			names = append(names, n.Name)
		}
	}
	return names
}

// restartFor lists the desired parameters that need the node's server
// restarted: pending a restart, or set by this plan and known to need one.
func (p *planner) restartFor(n *desired.Node, ct *observe.Container) []string {
	names := p.pendingRestart(ct)
	for _, a := range p.out.Actions {
		if a.Kind == SetPostgresParameters && a.Node == n.Name {
			names = append(names, a.Restart...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// replacing reports whether this plan already takes node's container
// through maintenance or replaces it, or holds that back: a new container
// starts with the parameters, so no restart of its own is planned, nor
// blocked a second time.
func (p *planner) replacing(node string) bool {
	if p.planned(ReplaceContainer, node) || p.planned(EnableMaintenance, node) {
		return true
	}
	for _, b := range p.out.Blocked {
		if b.Node == node {
			return true
		}
	}
	return false
}

// planRestarts restarts, one node per plan, the servers whose parameters
// need it: secondaries through maintenance, the primary last after a
// switchover that pg_auto_failover performs.
func (p *planner) planRestarts(nodes []*desired.Node) {
	if len(p.c.PostgreSQLParameters) == 0 || !p.monitorUp {
		return
	}
	var primary *desired.Node
	var primaryNames []string
	for _, n := range nodes {
		on := p.monitorNode(n.Name)
		ct, _ := p.container(n.VM, n.Name)
		if on == nil || ct == nil || ct.State != "running" || !p.vmReached(n.VM) || inMaintenance(on) || p.replacing(n.Name) {
			continue
		}
		names := p.restartFor(n, ct)
		if len(names) == 0 {
			continue
		}
		if isPrimary(on) {
			primary, primaryNames = n, names
			continue
		}
		if !p.ready(on) || on.ReportedState != "secondary" {
			continue // in flight: planNode waits for it
		}
		p.roll(n, on, false, "settings", fmt.Sprintf("%s needs a restart for %s", n.Name, strings.Join(names, ", ")),
			[]string{fmt.Sprintf("%s: %s pending a restart (context postmaster)", n.Name, strings.Join(names, ", "))})
	}
	if primary == nil {
		return
	}
	on := p.monitorNode(primary.Name)
	why := fmt.Sprintf("%s is the primary and needs a restart for %s", primary.Name, strings.Join(primaryNames, ", "))
	if on.ReportedState == "single" {
		if p.add(Action{Kind: RestartContainer, Node: primary.Name, VM: primary.VM, Trigger: "settings", Disruptive: true,
			Reason: why + "; it is the only node, so it restarts in place (writes pause while it restarts)"}) {
			p.waitNode(primary, "settings", primary.Name+" must be back")
		}
		return
	}
	p.switchover(primary.Name, "settings", why+": pg_auto_failover is asked for a switchover, the restart follows once it is a secondary")
}
