package reconcile

// Planning of the settings held by the monitor: candidate priority,
// replication quorum and the formation's number_sync_standbys.

import (
	"fmt"
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
	if !p.monitorUp {
		return false
	}
	for _, n := range p.nodes {
		if !p.ready(n) {
			return false
		}
	}
	for _, a := range p.out.Actions {
		if a.Disruptive || a.Destructive {
			return false
		}
	}
	return true
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
