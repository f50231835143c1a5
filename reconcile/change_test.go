package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
)

// perform_failover returns at once: the next observation shows the old
// primary still reporting primary, with goal draining. No second
// switchover may be planned then.
func TestSwitchoverInFlightIsNotRepeated(t *testing.T) {
	st := refState()
	obs := converged(st)
	st.Clusters[0].Image = "pgaf/postgres:15-2.0-b"
	for i := range obs.VMs {
		for j := range obs.VMs[i].Containers {
			ct := &obs.VMs[i].Containers[j]
			for k := range st.Clusters[0].Nodes {
				if n := &st.Clusters[0].Nodes[k]; n.Name == ct.Node && n.Name != "node1" {
					ct.SpecHash = NodeSpec(st, &st.Clusters[0], n).Hash()
				}
			}
			if ct.Node == "monitor" {
				ct.SpecHash = MonitorSpec(st, &st.Clusters[0]).Hash()
			}
		}
	}
	if a := Plan(st, obs).Actions(); len(a) == 0 || a[0].Kind != Switchover {
		t.Fatalf("first plan does not start with the switchover: %+v", a)
	}
	monNode(obs, "main", "node1").AssignedState = "draining"
	for _, a := range Plan(st, obs).Actions() {
		if a.Kind == Switchover || a.Disruptive {
			t.Errorf("%s of %s planned while the switchover is in flight", a.Kind, a.Node)
		}
	}
}

// The rollout touches one node at a time, secondaries first, and the
// primary last after exactly one switchover; every node keeps its id.
func TestRollOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(st *desired.State)
	}{
		{"image", func(st *desired.State) { st.Clusters[0].Image = "pgaf/postgres:15-2.0-b" }},
		{"restart_parameter", func(st *desired.State) {
			st.Clusters[0].PostgreSQLParameters = map[string]string{"shared_buffers": "256MB"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			obs := converged(st)
			tc.change(st)
			var order []string
			for round := 0; round < 30; round++ {
				p := Plan(st, obs)
				if p.Empty() {
					break
				}
				checkInvariants(t, obs, p)
				for _, a := range p.Actions() {
					if a.Kind == EnableMaintenance || a.Kind == Switchover {
						order = append(order, string(a.Kind)+" "+a.Node)
					}
				}
				simulate(t, st, obs, p)
			}
			want := "[enable_maintenance node2 enable_maintenance node3 switchover node1 enable_maintenance node1]"
			if got := fmt.Sprint(order); got != want {
				t.Errorf("order %s, want %s", got, want)
			}
			for i, n := range findObsCluster(obs, "main").Monitor.Nodes {
				if n.ID != int64(i+1) {
					t.Errorf("%s has id %d", n.Name, n.ID)
				}
			}
		})
	}
}

// A node in maintenance whose container the reconciler did not change,
// and which needs no change, is the operator's: nothing is done to it, and
// no other node is disturbed. (One that needs a change is taken for the
// reconciler's own interrupted roll: it starts maintenance only for that.)
func TestOperatorMaintenanceIsLeftAlone(t *testing.T) {
	st := refState()
	obs := converged(st)
	n := monNode(obs, "main", "node3")
	n.ReportedState, n.AssignedState, n.StateChangeTime = "maintenance", "maintenance", obs.Time.Add(time.Minute)
	obs.Time = obs.Time.Add(2 * time.Minute)
	st.Clusters[0].Nodes[1].CandidatePriority = 10
	p := Plan(st, obs)
	for _, a := range p.Actions() {
		if a.Node == "node3" || a.Disruptive {
			t.Errorf("planned %s of %s while node3 is in an operator's maintenance", a.Kind, a.Node)
		}
	}
	found := false
	for _, b := range p.Clusters[0].Blocked {
		found = found || (b.Guard == GuardMaintenance && b.Node == "node3")
	}
	if !found {
		t.Errorf("no %s block: %+v", GuardMaintenance, p.Clusters[0].Blocked)
	}
}
