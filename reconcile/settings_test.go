package reconcile

import (
	"strings"
	"testing"

	"github.com/pgaf-gitops/reconciler/observe"
)

// node3's container differs from its spec and its server waits for a
// restart, while no node is a healthy primary: one line says it waits
// to be replaced; the restart comes with the new container.
func TestRestartWaitsWithItsReplacement(t *testing.T) {
	st := refState()
	st.Clusters[0].PostgreSQLParameters = map[string]string{"max_connections": "150"}
	obs := converged(st)
	monNode(obs, "main", "node1").Health = observe.HealthBad
	ct := containerOf(obs, "vm3", "main-node3")
	ct.SpecHash = "0000000000000000"
	ct.Postgres.PendingRestart = []string{"max_connections"}
	var lines []string
	for _, b := range Plan(st, obs).Clusters[0].Blocked {
		if b.Node == "node3" {
			lines = append(lines, b.Guard+": "+b.Reason)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "container must be replaced") {
		t.Errorf("node3 blocked %d times, want once, for its replacement:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// A candidate priority committed while node2 is in the middle of a
// failover is not changed, and the plan says so: the change is held
// (later), with the state that holds it, and explain shows the guard.
func TestSettingsWaitForASettledCluster(t *testing.T) {
	st := refState()
	st.Clusters[0].Nodes[2].CandidatePriority = 70
	st.Clusters[0].NumberSyncStandbys = 0
	obs := converged(st)
	monNode(obs, "main", "node3").CandidatePriority = 50
	findObsCluster(obs, "main").Monitor.Formation.NumberSyncStandbys = 1
	n2 := monNode(obs, "main", "node2")
	n2.ReportedState, n2.AssignedState = "catchingup", "catchingup"

	p := Plan(st, obs).Clusters[0]
	for _, a := range p.Actions {
		if a.Kind == SetNodeSettings || a.Kind == SetFormation {
			t.Errorf("%s planned while node2 is catchingup", a.Describe())
		}
	}
	want := map[string]string{"node3": "candidate_priority 50 -> 70", "monitor": "number_sync_standbys 1 -> 0"}
	for _, b := range p.Blocked {
		if w, ok := want[b.Node]; ok && b.Guard == GuardInFlight && b.Label() == "later" &&
			strings.Contains(b.Reason, w) && strings.Contains(b.Reason, "node2 is catchingup, assigned catchingup") {
			delete(want, b.Node)
		}
	}
	if len(want) > 0 {
		t.Errorf("no held change for %v in %+v", want, p.Blocked)
	}
	e, err := Explain(st, obs, "main", "node3")
	if err != nil {
		t.Fatal(err)
	}
	if !hasCheck(e.Guards, GuardInFlight, false) {
		t.Errorf("explain node3: no %s check that held its settings: %+v", GuardInFlight, e.Guards)
	}

	// Settled again: the same commit is applied, nothing held.
	n2.ReportedState, n2.AssignedState = "secondary", "secondary"
	p = Plan(st, obs).Clusters[0]
	if len(p.Blocked) != 0 || len(p.Actions) == 0 {
		t.Errorf("settled cluster: blocked %+v, actions %+v; want the settings applied", p.Blocked, p.Actions)
	}
}
