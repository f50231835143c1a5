package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// A removed node whose VM is declared but does not answer is blocked, and
// the block names the VM and the way out; once the VM is removed from the
// desired state too, the monitor drops the node alone and nothing else is
// touched, in every plan until the row is gone.
func TestRemovedNodeWithItsVM(t *testing.T) {
	st := refState()
	st.Clusters[0].NumberSyncStandbys = 0
	obs := converged(st)
	removed := st.Clusters[0].Nodes[2] // node3 on vm3 (with the monitor: use a VM of its own)
	st.VMs = append(st.VMs, desired.VM{Name: "vm4", Address: "10.0.0.14", SSH: desired.SSH{User: "ops", Port: 22}, DockerNetwork: "host"})
	removed.Name, removed.VM, removed.Port = "node4", "vm4", 5432
	st.Clusters[0].Nodes = append(st.Clusters[0].Nodes, removed)
	obs = converged(st)
	st.Clusters[0].Nodes = st.Clusters[0].Nodes[:3]
	*vmOf(obs, "vm4") = observe.VM{Name: "vm4", Reached: false, Error: "ssh: i/o timeout", Containers: []observe.Container{}, Volumes: []observe.Volume{}}
	n4 := monNode(obs, "main", "node4")
	n4.Health, n4.PGIsRunning = observe.HealthBad, false

	p := Plan(st, obs)
	if !p.Empty() {
		t.Fatalf("actions while vm4 is declared and unreachable: %+v", p.Actions())
	}
	var reason string
	for _, b := range p.Clusters[0].Blocked {
		if b.Node == "node4" && b.Guard == GuardVMUnobserved {
			reason = b.Reason
		}
	}
	for _, want := range []string{"vm4 was not reached", "until vm4 answers again", "remove it from vms"} {
		if !strings.Contains(reason, want) {
			t.Errorf("block reason %q lacks %q", reason, want)
		}
	}

	st.VMs = st.VMs[:3]
	obs.VMs = slices.DeleteFunc(obs.VMs, func(vm observe.VM) bool { return vm.Name == "vm4" })
	p = Plan(st, obs)
	acts := p.Actions()
	if len(acts) != 2 || acts[0].Kind != RemoveNode || acts[0].Force || !acts[1].Force || acts[0].VM != "" || acts[0].NodeID != n4.ID {
		t.Fatalf("want remove_node node4 without then with force, on the monitor alone; got %+v", acts)
	}
	if !slices.ContainsFunc(p.Notes, func(n string) bool {
		return strings.Contains(n, "main-node4-data") && strings.Contains(n, "left behind")
	}) {
		t.Errorf("notes do not report node4's volume as left behind: %q", p.Notes)
	}
	// The monitor assigned dropped; the keeper never reports it.
	n4.AssignedState = "dropped"
	acts = Plan(st, obs).Actions()
	if len(acts) != 1 || acts[0].Kind != RemoveNode || !acts[0].Force {
		t.Fatalf("after dropped, want one forced remove_node; got %+v", acts)
	}
	// While the node is the primary, a switchover comes first.
	n4.AssignedState, n4.ReportedState, n4.Health, n4.PGIsRunning = "primary", "primary", observe.HealthGood, true
	n1 := monNode(obs, "main", "node1")
	n1.ReportedState, n1.AssignedState = "secondary", "secondary"
	acts = Plan(st, obs).Actions()
	if len(acts) == 0 || acts[0].Kind != Switchover || acts[0].Node != "node4" {
		t.Fatalf("primary on an undeclared VM: want a switchover first, got %+v", acts)
	}
	// Nothing is dropped while the monitor does not answer.
	obs.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "timeout", Nodes: []observe.Node{}}
	for _, a := range Plan(st, obs).Actions() {
		if a.Destructive {
			t.Errorf("destructive %s of %s while the monitor is unobserved", a.Kind, a.Node)
		}
	}
}
