package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// moveState is the reference layout with a vm4 and the monitor moved to it
// by token tok.
func moveState(tok string) *desired.State {
	st := refState()
	st.VMs = append(st.VMs, desired.VM{Name: "vm4", Address: "10.0.0.14", SSH: desired.SSH{User: "ops", Port: 22}, DockerNetwork: "host"})
	st.Clusters[0].Monitor.VM = "vm4"
	st.Clusters[0].Monitor.Recreate = tok
	return st
}

// followed gives every node container of o a keeper following uri, node1
// primary; the monitor that answers at the desired address knows none.
func followed(st *desired.State, o *observe.Observation, uri string) {
	c := &st.Clusters[0]
	for i, n := range c.Nodes {
		role := "secondary"
		if i == 0 {
			role = "primary"
		}
		containerOf(o, n.VM, ContainerName(c.Name, n.Name)).Keeper = &observe.Keeper{Monitor: uri, NodeID: int64(i + 1), CurrentRole: role, AssignedRole: role}
	}
}

func planSteps(p *Result) []string {
	var out []string
	for _, a := range p.Actions() {
		out = append(out, string(a.Kind)+" "+a.Node+"@"+a.VM)
	}
	return out
}

func TestMonitorMove(t *testing.T) {
	old := refState()
	oldURI := MonitorURI(old, &old.Clusters[0])
	// before: converged on the vm3 monitor, which still runs; the desired
	// state moves it to vm4.
	before := func(st *desired.State) *observe.Observation {
		o := converged(old)
		o.VMs = append(o.VMs, observe.VM{Name: "vm4", Reached: true, Containers: []observe.Container{}, Volumes: []observe.Volume{}})
		followed(st, o, oldURI)
		o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "dial tcp 10.0.0.14:5432: connect: connection refused"}
		return o
	}
	full := []string{
		"fence_monitor monitor@vm3", "create_monitor monitor@vm4", "wait monitor@vm4",
		"disable_monitor node2@vm2", "disable_monitor node3@vm3", "disable_monitor node1@vm1",
		"enable_monitor node1@vm1", "wait node1@vm1", "enable_monitor node2@vm2", "wait node2@vm2", "enable_monitor node3@vm3", "wait node3@vm3",
	}

	t.Run("alive_monitor_moved_by_a_new_token", func(t *testing.T) {
		st := moveState("move-1")
		p := Plan(st, before(st))
		if got := planSteps(p); !slices.Equal(got, full) {
			t.Errorf("steps\n got %q\nwant %q", got, full)
		}
		a := p.Actions()[0]
		if !a.Disruptive || !strings.HasPrefix(a.Fenced, "main-monitor-fenced-") {
			t.Errorf("fence %+v", a)
		}
		if c := p.Actions()[1]; c.Volume != "main-monitor-move-1-data" || c.Trigger != "monitor-recreate" {
			t.Errorf("create_monitor volume %q trigger %q", c.Volume, c.Trigger)
		}
		en := p.Actions()[6]
		if en.Settings["monitor"] != MonitorURI(st, &st.Clusters[0]) || !strings.Contains(en.Reason, "node id 1") {
			t.Errorf("enable_monitor %+v", en)
		}
	})

	for _, tc := range []struct{ name, tok string }{{"no_token", ""}, {"token_of_the_running_monitor", "t0"}} {
		t.Run("refused_"+tc.name, func(t *testing.T) {
			st := moveState(tc.tok)
			o := before(st)
			containerOf(o, "vm3", "main-monitor").Rebuild = "t0"
			p := Plan(st, o)
			if len(p.Actions()) != 0 {
				t.Errorf("planned %q", planSteps(p))
			}
			if b := p.Clusters[0].Blocked; len(b) != 1 || b[0].Guard != GuardMonitorMove || !strings.Contains(b[0].Reason, "new monitor.recreate token") {
				t.Errorf("blocked %+v", b)
			}
		})
	}

	// midway: fenced, the new monitor answers with node1 not registered
	// yet and node2's keeper disabled (a kill -9 after that step).
	midway := func(st *desired.State) *observe.Observation {
		o := before(st)
		ct := containerOf(o, "vm3", "main-monitor")
		ct.Name, ct.State = "main-monitor-fenced-0123456789ab", "exited"
		putContainer(o, MonitorSpec(st, &st.Clusters[0]))
		o.Clusters[0].Monitor = observe.Monitor{Reached: true, Version: "2.0", Formation: observe.Formation{Name: "default", NumberSyncStandbys: 0}, Nodes: []observe.Node{}}
		containerOf(o, "vm2", "main-node2").Keeper.Monitor = observe.KeeperMonitorDisabled
		return o
	}
	t.Run("refused_onto_a_port_another_monitor_holds", func(t *testing.T) {
		st := moveState("move-1")
		o := before(st)
		other := refState("other")
		spec := MonitorSpec(other, &other.Clusters[0])
		spec.VM = "vm4"
		putContainer(o, spec)
		p := Plan(st, o)
		if got := planSteps(p); len(got) != 0 {
			t.Errorf("steps %q (the old monitor must not be fenced for a new one that cannot listen)", got)
		}
		if b := p.Clusters[0].Blocked; len(b) != 1 || b[0].Guard != GuardMonitorMove || !strings.Contains(b[0].Reason, `vm4 already runs a monitor on port 5432: container other-monitor of cluster "other"`) {
			t.Errorf("blocked %+v", b)
		}
	})

	t.Run("resumes_after_an_interrupted_move", func(t *testing.T) {
		st := moveState("move-1")
		p := Plan(st, midway(st))
		want := []string{"disable_monitor node3@vm3", "disable_monitor node1@vm1", "enable_monitor node1@vm1", "wait node1@vm1",
			"enable_monitor node2@vm2", "wait node2@vm2", "enable_monitor node3@vm3", "wait node3@vm3"}
		if got := planSteps(p); !slices.Equal(got, want) {
			t.Errorf("steps\n got %q\nwant %q", got, want)
		}
		if !slices.ContainsFunc(p.Notes, func(n string) bool {
			return strings.Contains(n, "main-monitor-fenced-0123456789ab on vm3 is an earlier monitor")
		}) {
			t.Errorf("notes lack the fenced monitor: %q", p.Notes)
		}
	})

	t.Run("two_primaries_refused", func(t *testing.T) {
		st := moveState("move-1")
		o := midway(st)
		containerOf(o, "vm2", "main-node2").Keeper.CurrentRole = "primary"
		p := Plan(st, o)
		if len(p.Actions()) != 0 || !slices.ContainsFunc(p.Clusters[0].Blocked, func(b Blocked) bool {
			return b.Guard == GuardMonitorMove && strings.Contains(b.Reason, "exactly one primary")
		}) {
			t.Errorf("planned %q, blocked %+v", planSteps(p), p.Clusters[0].Blocked)
		}
	})

	t.Run("moved_nodes_keep_their_containers", func(t *testing.T) {
		st := moveState("move-1")
		o := midway(st)
		conv := converged(st)
		o.Clusters[0].Monitor = conv.Clusters[0].Monitor
		// The new monitor registered them with pg_autoctl's defaults.
		for i := range o.Clusters[0].Monitor.Nodes {
			o.Clusters[0].Monitor.Nodes[i].CandidatePriority = 50
		}
		st.Clusters[0].Nodes[2].CandidatePriority = 0
		followed(st, o, MonitorURI(st, &st.Clusters[0]))
		p := Plan(st, o)
		want := []string{"set_node_settings node3@vm3"}
		if got := planSteps(p); !slices.Equal(got, want) {
			t.Errorf("steps\n got %q\nwant %q", got, want)
		}
		// A container whose node the monitor does not know is not current,
		// whatever its command: what its keeper follows is not known.
		o.Clusters[0].Monitor.Nodes = slices.DeleteFunc(o.Clusters[0].Monitor.Nodes, func(n observe.Node) bool { return n.Name == "node2" })
		containerOf(o, "vm2", "main-node2").Keeper = nil
		if got := planSteps(Plan(st, o)); !slices.Contains(got, "replace_container node2@vm2") {
			t.Errorf("steps %q", got)
		}
	})

	t.Run("lost_volume_on_the_same_vm", func(t *testing.T) {
		st := refState()
		st.Clusters[0].Monitor.Recreate = "lost 2026-12-04" // not a plain name: the volume takes its digest
		o := converged(refState())
		followed(st, o, oldURI)
		vm := vmOf(o, "vm3")
		vm.Containers = slices.DeleteFunc(vm.Containers, func(c observe.Container) bool { return c.Node == "monitor" })
		vm.Volumes = slices.DeleteFunc(vm.Volumes, func(v observe.Volume) bool { return v.Node == "monitor" })
		o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
		p := Plan(st, o)
		want := []string{"create_monitor monitor@vm3", "wait monitor@vm3",
			"disable_monitor node2@vm2", "disable_monitor node3@vm3", "disable_monitor node1@vm1",
			"enable_monitor node1@vm1", "wait node1@vm1", "enable_monitor node2@vm2", "wait node2@vm2", "enable_monitor node3@vm3", "wait node3@vm3"}
		if got := planSteps(p); !slices.Equal(got, want) {
			t.Errorf("steps\n got %q\nwant %q", got, want)
		}
		if v := p.Actions()[0].Volume; !strings.HasPrefix(v, "main-monitor-") || v == "main-monitor-data" || strings.Contains(v, " ") {
			t.Errorf("volume %q", v)
		}
	})

	t.Run("same_vm_new_token_fences_the_running_monitor", func(t *testing.T) {
		st := refState()
		st.Clusters[0].Monitor.Recreate = "again"
		o := converged(refState())
		followed(st, o, oldURI)
		p := Plan(st, o) // the monitor at vm3:5432 answers: it is the old one
		if got := planSteps(p); len(got) < 3 || got[0] != "fence_monitor monitor@vm3" || got[1] != "create_monitor monitor@vm3" {
			t.Errorf("steps %q", got)
		}
	})
}

func TestMonitorMoveSameAddressAfterCreate(t *testing.T) {
	st := refState()
	st.Clusters[0].Monitor.Recreate = "lost-1"
	o := converged(refState())
	followed(st, o, MonitorURI(st, &st.Clusters[0]))
	vm := vmOf(o, "vm3")
	vm.Containers = slices.DeleteFunc(vm.Containers, func(c observe.Container) bool { return c.Node == "monitor" })
	vm.Volumes = slices.DeleteFunc(vm.Volumes, func(v observe.Volume) bool { return v.Node == "monitor" })
	for i := range o.VMs {
		for j := range o.VMs[i].Containers {
			o.VMs[i].Containers[j].StartedAt = o.Time.Add(-time.Hour)
		}
	}
	putContainer(o, MonitorSpec(st, &st.Clusters[0])) // started at o.Time
	o.Clusters[0].Monitor = observe.Monitor{Reached: true, Version: "2.0", Formation: observe.Formation{Name: "default"}, Nodes: []observe.Node{}}
	want := []string{"disable_monitor node2@vm2", "disable_monitor node3@vm3", "disable_monitor node1@vm1",
		"enable_monitor node1@vm1", "wait node1@vm1", "enable_monitor node2@vm2", "wait node2@vm2", "enable_monitor node3@vm3", "wait node3@vm3"}
	if got := planSteps(Plan(st, o)); !slices.Equal(got, want) {
		t.Errorf("steps\n got %q\nwant %q", got, want)
	}
	// A node created after the new monitor started is registering: left
	// to its own planning.
	containerOf(o, "vm2", "main-node2").StartedAt = o.Time.Add(time.Second)
	if got := planSteps(Plan(st, o)); slices.Contains(got, "disable_monitor node2@vm2") || slices.Contains(got, "enable_monitor node2@vm2") {
		t.Errorf("steps %q", got)
	}
}

// A token acts once: lost again after the nodes were moved for it, the
// monitor needs another.
func TestMonitorRecreateTokenActsOnce(t *testing.T) {
	st := refState()
	st.Clusters[0].Monitor.Recreate = "lost-1"
	o := converged(st)
	followed(st, o, MonitorURI(st, &st.Clusters[0]))
	containerOf(o, "vm2", "main-node2").Keeper.Recreate = "lost-1"
	vm := vmOf(o, "vm3")
	vm.Containers = slices.DeleteFunc(vm.Containers, func(c observe.Container) bool { return c.Node == "monitor" })
	vm.Volumes = slices.DeleteFunc(vm.Volumes, func(v observe.Volume) bool { return v.Node == "monitor" })
	o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
	p := Plan(st, o)
	if len(p.Actions()) != 0 || len(p.Clusters[0].Blocked) != 1 || p.Clusters[0].Blocked[0].Guard != GuardMonitorLost ||
		!strings.Contains(p.Clusters[0].Blocked[0].Reason, `monitor.recreate "lost-1" already acted: node2 moved`) {
		t.Errorf("planned %q, blocked %+v", planSteps(p), p.Clusters[0].Blocked)
	}
	st.Clusters[0].Monitor.Recreate = "lost-2"
	if got := planSteps(Plan(st, o)); len(got) == 0 || got[0] != "create_monitor monitor@vm3" {
		t.Errorf("a new token: steps %q", got)
	}
}
