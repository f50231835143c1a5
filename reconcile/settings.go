package reconcile

// Planning of the settings held by the monitor: candidate priority,
// replication quorum and the formation's number_sync_standbys.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// settingsSafe reports whether settings may be changed in this plan: every
// node the monitor knows is settled and healthy, and nothing disruptive is
// planned. Settings are never changed in the middle of a failover
// (pg_auto_failover lowers candidate priorities by itself during one).
// Nodes that this plan creates register with pg_autoctl's defaults and
// are set once they joined, in the same plan.
func (p *planner) settingsSafe() bool {
	_, ok := p.settingsWait()
	return ok
}

// settingsWait is settingsSafe with the reason when it does not hold.
func (p *planner) settingsWait() (why string, ok bool) {
	if !p.monitorUp {
		return "the monitor does not answer", false
	}
	for _, n := range p.nodes {
		if !p.ready(n) {
			return p.why(n), false
		}
	}
	for _, a := range p.out.Actions {
		if a.Disruptive || a.Destructive {
			return fmt.Sprintf("%s of %s is planned first", a.Kind, a.Node), false
		}
	}
	return "", true
}

// planSettings plans node settings, the formation and PostgreSQL
// parameters when settingsSafe holds. When it does not, it plans them all
// the same, to see what would change, then takes those steps back and
// blocks each (disruption_in_flight, shown as later) with the reason: so
// the plan and explain say why a committed setting waits.
func (p *planner) planSettings(nodes []*desired.Node) {
	why, ok := p.settingsWait()
	actions, blocked, disrupted := len(p.out.Actions), len(p.out.Blocked), p.disrupted
	var checks int
	if p.trace != nil {
		checks = len(p.trace.checks)
	}
	p.planNodeSettings(nodes)
	p.planFormation()
	p.planPostgresParameters(nodes)
	if ok {
		return
	}
	held := slices.Clone(p.out.Actions[actions:])
	p.out.Actions, p.out.Blocked, p.disrupted = p.out.Actions[:actions], p.out.Blocked[:blocked], disrupted
	if p.trace != nil {
		p.trace.checks = p.trace.checks[:checks]
	}
	for _, a := range held {
		node := a.Node
		if node == "" {
			node = "monitor" // the formation's settings
		}
		p.block(node, GuardInFlight, fmt.Sprintf("%s waits until every node is settled and nothing disruptive is planned: %s", a.Describe(), why))
	}
}

func (p *planner) planNodeSettings(nodes []*desired.Node) {
	for _, n := range nodes {
		on := p.monitorNode(n.Name)
		if on == nil {
			if !p.planned(CreateNode, n.Name) {
				continue
			}
			// pg_autoctl registers a node with these defaults.
			on = &observe.Node{CandidatePriority: 50, ReplicationQuorum: true}
		}
		set, prev := map[string]string{}, map[string]string{}
		if on.CandidatePriority != n.CandidatePriority {
			set["candidate_priority"] = strconv.Itoa(n.CandidatePriority)
			prev["candidate_priority"] = strconv.Itoa(on.CandidatePriority)
		}
		if q := n.ReplicationQuorum == nil || *n.ReplicationQuorum; on.ReplicationQuorum != q {
			set["replication_quorum"] = strconv.FormatBool(q)
			prev["replication_quorum"] = strconv.FormatBool(on.ReplicationQuorum)
		}
		if len(set) == 0 {
			continue
		}
		p.add(Action{Kind: SetNodeSettings, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: "settings", Settings: set, Previous: prev,
			Reason: fmt.Sprintf("%s: %s not as desired (set through the monitor, no restart)", n.Name, strings.Join(SortedKeys(set), " and "))})
	}
}

func (p *planner) planFormation() {
	have := 0 // a new formation starts with number_sync_standbys 0
	if p.oc != nil && p.oc.Monitor.Reached {
		have = p.oc.Monitor.Formation.NumberSyncStandbys
	}
	want := p.c.NumberSyncStandbys
	if have == want {
		return
	}
	// pg_auto_failover refuses the change unless the primary is settled
	// as primary (or wait_primary, for 0) and has want+1 standbys in the
	// replication quorum (formation_metadata.c): a cluster being built
	// gets it once its standbys joined.
	var primary *observe.Node
	standbys := 0
	for _, n := range p.nodes {
		switch {
		case n.ReportedState == n.AssignedState && (n.ReportedState == "primary" || n.ReportedState == "wait_primary" && want == 0):
			primary = n
		case n.ReplicationQuorum && n.ReportedState == "secondary" && p.ready(n):
			standbys++
		}
	}
	if primary == nil || want > 0 && standbys < want+1 {
		p.block("monitor", GuardInFlight, fmt.Sprintf("number_sync_standbys %d is set once a settled primary has %d standbys in the replication quorum (now %d): pg_auto_failover refuses it before", want, want+1, standbys))
		return
	}
	p.pass("monitor", GuardInFlight, func() string {
		return fmt.Sprintf("the primary %s is settled, with %d standbys in the replication quorum", primary.Name, standbys)
	})
	p.add(Action{Kind: SetFormation, Node: "monitor", VM: p.c.Monitor.VM, Trigger: "settings",
		Settings: map[string]string{"number_sync_standbys": strconv.Itoa(p.c.NumberSyncStandbys)},
		Previous: map[string]string{"number_sync_standbys": strconv.Itoa(have)},
		Reason:   fmt.Sprintf("number_sync_standbys is %d, desired %d (through the monitor, no restart)", have, p.c.NumberSyncStandbys)})
}
