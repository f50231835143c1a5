package reconcile

import (
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// TestConvergeScenarios starts from a converged cluster, changes the
// desired state as a commit would, and checks that simulation converges
// with the expected kinds of action, each exactly as often as expected.
func TestConvergeScenarios(t *testing.T) {
	cases := []struct {
		name   string
		change func(st *desired.State, obs *observe.Observation)
		want   map[Kind]int
	}{
		{"rebuild_token_changed", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Nodes[1].Rebuild = "2026-11-26"
		}, map[Kind]int{StopContainer: 1, RemoveNode: 2, RemoveContainer: 1, RemoveVolume: 1, CreateNode: 1}},
		{"node_removed_keeps_volume", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Nodes = st.Clusters[0].Nodes[:2]
		}, map[Kind]int{StopContainer: 1, RemoveNode: 2, RemoveContainer: 1}},
		{"node_removed_with_data", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Nodes = st.Clusters[0].Nodes[:2]
			st.Clusters[0].RemovedNodeData = "delete"
		}, map[Kind]int{StopContainer: 1, RemoveNode: 2, RemoveContainer: 1, RemoveVolume: 1}},
		{"primary_removed_switches_over_first", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Nodes = st.Clusters[0].Nodes[1:]
		}, map[Kind]int{Switchover: 1, StopContainer: 1, RemoveNode: 2, RemoveContainer: 1}},
		{"new_image_rolls_primary_last", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Image = "pgaf/postgres:15-2.0-b"
		}, map[Kind]int{ReplaceContainer: 4, Switchover: 1, EnableMaintenance: 3, DisableMaintenance: 3}},
		{"reloadable_parameter_set_on_every_node", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].PostgreSQLParameters = map[string]string{"work_mem": "8MB"}
		}, map[Kind]int{SetPostgresParameters: 3}},
		{"restart_parameter_rolls_primary_last", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].PostgreSQLParameters = map[string]string{"max_connections": "150", "work_mem": "8MB"}
		}, map[Kind]int{SetPostgresParameters: 3, EnableMaintenance: 3, RestartContainer: 3, DisableMaintenance: 3, Switchover: 1}},
		{"interrupted_roll_resumes_in_maintenance", func(st *desired.State, obs *observe.Observation) {
			st.Clusters[0].Image = "pgaf/postgres:15-2.0-b"
			// apply stopped after start_maintenance of node2 on the old image
			n := monNode(obs, "main", "node2")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "maintenance", "maintenance", obs.Time
			ct := containerOf(obs, "vm3", "main-monitor")
			ct.Image, ct.SpecHash = "pgaf/postgres:15-2.0-b", MonitorSpec(st, &st.Clusters[0]).Hash()
		}, map[Kind]int{ReplaceContainer: 3, Switchover: 1, EnableMaintenance: 2, DisableMaintenance: 3}},
		{"replaced_in_maintenance_is_lifted", func(st *desired.State, obs *observe.Observation) {
			// apply stopped after node2's container was replaced in maintenance
			n := monNode(obs, "main", "node2")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "maintenance", "maintenance", obs.Time.Add(-time.Minute)
		}, map[Kind]int{DisableMaintenance: 1}},
		{"settings_changed", func(st *desired.State, _ *observe.Observation) {
			c := &st.Clusters[0]
			c.Nodes[2].CandidatePriority = 0
			c.Nodes[2].ReplicationQuorum = boolp(false)
			c.NumberSyncStandbys = 0
			c.MonitorSettings = map[string]string{"health_check_period": "1000"}
		}, map[Kind]int{SetNodeSettings: 1, SetFormation: 1, SetMonitorSettings: 1}},
		{"container_removed_by_hand", func(_ *desired.State, obs *observe.Observation) {
			vm := vmOf(obs, "vm2")
			vm.Containers = vm.Containers[:0]
		}, map[Kind]int{CreateNode: 1}},
		{"container_stopped_by_hand", func(_ *desired.State, obs *observe.Observation) {
			vmOf(obs, "vm2").Containers[0].State = "exited"
		}, map[Kind]int{StartContainer: 1}},
		{"node_added", func(st *desired.State, _ *observe.Observation) {
			st.Clusters[0].Nodes = append(st.Clusters[0].Nodes, desired.Node{Name: "node4", VM: "vm2", Port: 5433, CandidatePriority: 50, ReplicationQuorum: boolp(true)})
		}, map[Kind]int{CreateNode: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			obs := converged(st)
			tc.change(st, obs)
			got := map[Kind]int{}
			for round := 0; ; round++ {
				if round == 20 {
					t.Fatal("no convergence after 20 rounds")
				}
				p := Plan(st, obs)
				if p.Empty() {
					if n := len(p.Clusters[0].Blocked); n != 0 {
						t.Errorf("converged with %d blocked: %+v", n, p.Clusters[0].Blocked)
					}
					break
				}
				checkInvariants(t, obs, p)
				for _, a := range p.Actions() {
					if a.Kind != Wait {
						got[a.Kind]++
					}
				}
				simulate(t, st, obs, p)
			}
			checkKinds(t, got, tc.want)
		})
	}
}

// checkKinds compares how often each kind of action ran with want.
func checkKinds(t *testing.T, got, want map[Kind]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s ran %d times, want %d (all: %v)", k, got[k], n, got)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s ran %d times", k, n)
		}
	}
}

// At bring-up the first node gets the PostgreSQL parameters before the
// next node is created: the others clone them from it, so only it is set,
// and a parameter that needs a restart restarts it alone, in place while
// it is single, before any other node exists (no rolling restart, no
// switchover).
func TestBringUpClonesParameters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   map[Kind]int
	}{
		{"reload_only", map[string]string{"wal_sender_timeout": "3s"},
			map[Kind]int{CreateMonitor: 1, CreateNode: 3, SetPostgresParameters: 1, SetFormation: 1}},
		{"restart_needed", map[string]string{"wal_sender_timeout": "3s", "max_connections": "150"},
			map[Kind]int{CreateMonitor: 1, CreateNode: 3, SetPostgresParameters: 1, RestartContainer: 1, SetFormation: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			st.Clusters[0].PostgreSQLParameters = tc.params
			obs := emptyObs(st)
			got := map[Kind]int{}
			firstSet, secondCreate := -1, -1
			step := 0
			for round := 0; ; round++ {
				if round == 20 {
					t.Fatal("no convergence after 20 rounds")
				}
				p := Plan(st, obs)
				if p.Empty() {
					break
				}
				checkInvariants(t, obs, p)
				for _, a := range p.Actions() {
					step++
					if a.Kind == Wait {
						continue
					}
					got[a.Kind]++
					if a.Kind == SetPostgresParameters && firstSet < 0 {
						firstSet = step
						if a.Node != "node1" {
							t.Errorf("parameters first set on %s, want node1 (the first node)", a.Node)
						}
					}
					if a.Kind == CreateNode && got[CreateNode] == 2 {
						secondCreate = step
					}
				}
				simulate(t, st, obs, p)
			}
			if firstSet < 0 || secondCreate < 0 || firstSet > secondCreate {
				t.Errorf("parameters set at step %d, the second node created at step %d: want the parameters first", firstSet, secondCreate)
			}
			checkKinds(t, got, tc.want)
		})
	}
}

// A container that started after the node's last report makes the
// monitor's view of that node stale: the planner waits for a fresh
// report before it disrupts anything else.
func TestStaleReportWaits(t *testing.T) {
	st := refState()
	obs := converged(st)
	st.Clusters[0].Image = "pgaf/postgres:15-2.0-b"
	// node2's container was just replaced; the monitor still shows the
	// report it made before.
	obs.Time = t0.Add(time.Minute)
	for i := range obs.VMs {
		for j := range obs.VMs[i].Containers {
			ct := &obs.VMs[i].Containers[j]
			ct.Image = "pgaf/postgres:15-2.0-b"
			if ct.Node == "node2" {
				ct.StartedAt = obs.Time
				ct.SpecHash = NodeSpec(st, &st.Clusters[0], &st.Clusters[0].Nodes[1]).Hash()
			}
			if ct.Node == "monitor" {
				ct.SpecHash = MonitorSpec(st, &st.Clusters[0]).Hash()
			}
		}
	}
	p := Plan(st, obs)
	acts := p.Actions()
	if len(acts) == 0 || acts[0].Kind != Wait || acts[0].Node != "node2" {
		t.Fatalf("first action is not a wait for node2: %+v", acts)
	}
	for _, a := range acts {
		if a.Disruptive {
			t.Errorf("disruptive %s of %s planned while node2's state is stale", a.Kind, a.Node)
		}
	}
	if acts[0].Until.Satisfied("main", obs) {
		t.Error("the wait is satisfied by a report older than the container")
	}
	monNode(obs, "main", "node2").ReportTime = obs.Time.Add(time.Second)
	if !acts[0].Until.Satisfied("main", obs) {
		t.Error("the wait is not satisfied by a fresh report")
	}
}

// A parameter PostgreSQL 15 does not have (io_method, context postmaster
// since PostgreSQL 18) is a restart when the servers say so, and a reload
// when they do not list it: the plan follows each server's pg_settings,
// not a list kept by hand for one major version.
func TestRestartOnlyParametersComeFromTheServers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		restartOnly []string
		wantRestart bool
	}{
		{"server_lists_it", []string{"io_method", "shared_buffers"}, true},
		{"server_does_not", []string{"shared_buffers"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			obs := converged(st)
			for vi := range obs.VMs {
				for ci := range obs.VMs[vi].Containers {
					if pg := obs.VMs[vi].Containers[ci].Postgres; pg != nil {
						pg.RestartOnly = tc.restartOnly
					}
				}
			}
			st.Clusters[0].PostgreSQLParameters = map[string]string{"io_method": "worker"}
			p := Plan(st, obs)
			sets := 0
			for _, a := range p.Actions() {
				if a.Kind != SetPostgresParameters {
					continue
				}
				sets++
				if got := len(a.Restart) == 1 && a.Restart[0] == "io_method"; got != tc.wantRestart {
					t.Errorf("%s: restart %v, want io_method restarting: %v", a.Node, a.Restart, tc.wantRestart)
				}
			}
			if sets != 3 {
				t.Errorf("%d set_postgresql_parameters, want 3:\n%s", sets, planJSON(t, p))
			}
		})
	}
}
