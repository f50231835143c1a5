package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// simulate applies every action of p to obs as the actuators and
// pg_auto_failover would, so that planning again shows what is left.
func simulate(t *testing.T, st *desired.State, obs *observe.Observation, p *Result) {
	t.Helper()
	for _, a := range p.Actions() {
		// Time passes between steps, and every running node keeps
		// reporting to the monitor.
		obs.Time = obs.Time.Add(time.Second)
		oc := clusterOf(obs, a.Cluster)
		for i := range oc.Monitor.Nodes {
			if n := &oc.Monitor.Nodes[i]; n.PGIsRunning || n.ReportedState == "maintenance" {
				n.ReportTime = obs.Time
			}
		}
		switch a.Kind {
		case CreateMonitor, ReplaceContainer, StartContainer, CreateNode:
			var pg *observe.Postgres
			if old := containerOf(obs, a.Spec.VM, a.Spec.Name); old != nil && old.Postgres != nil {
				pg = &observe.Postgres{StartTime: obs.Time, Parameters: old.Postgres.Parameters}
			}
			if pg == nil && a.Kind == CreateNode && monNode(obs, a.Cluster, a.Node) == nil {
				// A new node clones the primary, postgresql.auto.conf
				// included (pg_basebackup).
				for _, n := range oc.Monitor.Nodes {
					if n.ReportedState != "primary" && n.ReportedState != "single" {
						continue
					}
					for _, vm := range obs.VMs {
						for _, ct := range vm.Containers {
							if ct.Cluster == a.Cluster && ct.Node == n.Name && ct.Postgres != nil {
								pg = &observe.Postgres{StartTime: obs.Time, Parameters: maps.Clone(ct.Postgres.Parameters)}
							}
						}
					}
				}
			}
			putContainer(obs, *a.Spec)
			if a.Node != "monitor" {
				if pg == nil {
					pg = &observe.Postgres{StartTime: obs.Time}
				}
				containerOf(obs, a.Spec.VM, a.Spec.Name).Postgres = pg
			}
			if n := monNode(obs, a.Cluster, a.Node); n != nil {
				n.ReportTime = obs.Time
			}
			if a.Node == "monitor" {
				if !oc.Monitor.Reached {
					oc.Monitor = observe.Monitor{Reached: true, Version: "2.0", Settings: map[string]string{},
						Formation: observe.Formation{Name: "default", Kind: "pgsql"}, Nodes: oc.Monitor.Nodes}
				}
				continue
			}
			if n := monNode(obs, a.Cluster, a.Node); n != nil {
				n.Health, n.PGIsRunning = observe.HealthGood, true
				continue
			}
			var maxID int64
			for _, n := range oc.Monitor.Nodes {
				maxID = max(maxID, n.ID)
			}
			state := "secondary"
			if len(oc.Monitor.Nodes) == 0 {
				state = "single"
			}
			oc.Monitor.Nodes = append(oc.Monitor.Nodes, observe.Node{ID: maxID + 1, Name: a.Node, ReportedState: "wait_standby", AssignedState: state,
				Timeline: 1, LSN: "0/3000148", Health: observe.HealthGood, CandidatePriority: 50, ReplicationQuorum: true, PGIsRunning: true,
				StateChangeTime: obs.Time})
		case Wait:
			if a.Until.Node != "monitor" {
				n := monNode(obs, a.Cluster, a.Until.Node)
				if n == nil {
					t.Fatalf("wait for %s, which the simulation never created", a.Until.Node)
				}
				s := a.Until.States[0]
				if s == "secondary" && len(oc.Monitor.Nodes) == 1 {
					s = "single"
				}
				// the first secondary turns a single into a primary
				for i := range oc.Monitor.Nodes {
					if m := &oc.Monitor.Nodes[i]; m.ReportedState == "single" && s == "secondary" {
						m.ReportedState, m.AssignedState = "primary", "primary"
					}
				}
				n.ReportedState, n.AssignedState = s, s
			}
		case SetMonitorSettings:
			for k, v := range a.Settings {
				oc.Monitor.Settings[k] = v
			}
		case SetFormation:
			var want int
			fmt.Sscan(a.Settings["number_sync_standbys"], &want)
			// pg_auto_failover refuses (55000, 22023) unless the primary
			// is settled and want+1 standbys are in the replication quorum.
			primary, standbys := false, 0
			for _, n := range oc.Monitor.Nodes {
				if n.ReportedState == n.AssignedState && (n.ReportedState == "primary" || n.ReportedState == "wait_primary" && want == 0) {
					primary = true
				} else if n.ReplicationQuorum && n.ReportedState == "secondary" {
					standbys++
				}
			}
			if !primary || want > 0 && standbys < want+1 {
				t.Fatalf("set_formation number_sync_standbys %d with primary settled %v and %d quorum standbys: pg_auto_failover refuses it", want, primary, standbys)
			}
			oc.Monitor.Formation.NumberSyncStandbys = want
		case SetNodeSettings:
			n := monNode(obs, a.Cluster, a.Node)
			if v, ok := a.Settings["candidate_priority"]; ok {
				fmt.Sscan(v, &n.CandidatePriority)
			}
			if v, ok := a.Settings["replication_quorum"]; ok {
				n.ReplicationQuorum = v == "true"
			}
		case Switchover:
			for i := range oc.Monitor.Nodes {
				if m := &oc.Monitor.Nodes[i]; m.Name != a.Node && m.ReportedState == "secondary" && m.CandidatePriority > 0 {
					m.ReportedState, m.AssignedState = "primary", "primary"
					break
				}
			}
			n := monNode(obs, a.Cluster, a.Node)
			n.ReportedState, n.AssignedState = "secondary", "secondary"
		case StopContainer:
			for _, vm := range obs.VMs {
				for i := range vm.Containers {
					if vm.Containers[i].Cluster == a.Cluster && vm.Containers[i].Node == a.Node {
						vm.Containers[i].State, vm.Containers[i].FinishedAt = "exited", obs.Time
					}
				}
			}
			if n := monNode(obs, a.Cluster, a.Node); n != nil {
				n.Health, n.PGIsRunning = observe.HealthBad, false
			}
		case RemoveNode:
			if !a.Force {
				monNode(obs, a.Cluster, a.Node).AssignedState = "dropped"
				continue
			}
			oc.Monitor.Nodes = slices.DeleteFunc(oc.Monitor.Nodes, func(n observe.Node) bool { return n.Name == a.Node })
		case RemoveContainer:
			vm := vmOf(obs, a.VM)
			vm.Containers = slices.DeleteFunc(vm.Containers, func(c observe.Container) bool { return c.Cluster == a.Cluster && c.Node == a.Node })
		case RemoveVolume:
			vm := vmOf(obs, a.VM)
			vm.Volumes = slices.DeleteFunc(vm.Volumes, func(v observe.Volume) bool { return v.Name == a.Volume })
		case EnableMaintenance:
			n := monNode(obs, a.Cluster, a.Node)
			if n.ReportedState != "secondary" {
				t.Fatalf("start_maintenance of %s, which is %s", a.Node, n.ReportedState)
			}
			n.AssignedState, n.StateChangeTime = "maintenance", obs.Time
		case DisableMaintenance:
			n := monNode(obs, a.Cluster, a.Node)
			if n.ReportedState != "maintenance" {
				t.Fatalf("stop_maintenance of %s, which is %s (pg_auto_failover refuses with 55000)", a.Node, n.ReportedState)
			}
			n.AssignedState, n.StateChangeTime = "catchingup", obs.Time
		case RestartContainer:
			ct := containerOf(obs, a.VM, ContainerName(a.Cluster, a.Node))
			ct.StartedAt, ct.State = obs.Time, "running"
			ct.Postgres.StartTime, ct.Postgres.PendingRestart = obs.Time, nil
			monNode(obs, a.Cluster, a.Node).ReportTime = obs.Time
		case SetPostgresParameters:
			ct := containerOf(obs, a.VM, ContainerName(a.Cluster, a.Node))
			if ct.Postgres.Parameters == nil {
				ct.Postgres.Parameters = map[string]string{}
			}
			for k, v := range a.Settings {
				ct.Postgres.Parameters[k] = v
			}
			ct.Postgres.PendingRestart = append(ct.Postgres.PendingRestart, a.Restart...)
		default:
			t.Fatalf("unknown action kind %q", a.Kind)
		}
	}
}

// converge plans and simulates until the plan is empty, failing when it
// takes more than limit rounds. It returns the rounds taken.
func converge(t *testing.T, st *desired.State, obs *observe.Observation, limit int) int {
	t.Helper()
	for round := 1; round <= limit; round++ {
		p := Plan(st, obs)
		if p.Empty() {
			return round - 1
		}
		checkInvariants(t, obs, p)
		simulate(t, st, obs, p)
	}
	var b bytes.Buffer
	Plan(st, obs).WriteText(&b, Style{})
	t.Fatalf("no convergence after %d rounds; last plan:\n%s", limit, b.String())
	return limit
}

// checkInvariants checks the rules every plan must follow, whatever the
// input.
func checkInvariants(t *testing.T, obs *observe.Observation, p *Result) {
	t.Helper()
	for _, c := range p.Clusters {
		oc := findObsCluster(obs, c.Name)
		// A change is blocked once: a reader counts the lines.
		seen := map[Blocked]bool{}
		for _, b := range c.Blocked {
			if seen[b] {
				t.Errorf("cluster %s: %s blocked twice by %s: %s", c.Name, b.Node, b.Guard, b.Reason)
			}
			seen[b] = true
		}
		target := ""
		for i, a := range c.Actions {
			if a.Disruptive || a.Destructive {
				if target != "" && target != a.Node {
					t.Errorf("cluster %s: disruptive actions on %s and %s in one plan", c.Name, target, a.Node)
				}
				target = a.Node
			}
			if a.Kind == Switchover && a.Trigger != "removed" && a.Trigger != "drift" && a.Trigger != "settings" {
				t.Errorf("switchover planned for trigger %q: failover decisions belong to pg_auto_failover", a.Trigger)
			}
			if !a.Destructive {
				continue
			}
			// A remove_node without a VM drops a node whose host is no
			// declared VM (dropUndeclared): it acts on the monitor alone.
			if a.VM == "" && a.Kind != RemoveNode {
				t.Errorf("action %d %s on %s names no VM", i, a.Kind, a.Node)
			} else if vm := vmOfName(obs, a.VM); a.VM != "" && (vm == nil || !vm.Reached) {
				t.Errorf("action %d %s on %s: its VM %s was not observed", i, a.Kind, a.Node, a.VM)
			}
			if oc == nil || !oc.Monitor.Reached {
				t.Errorf("action %d %s on %s while the monitor was not observed", i, a.Kind, a.Node)
				continue
			}
			for _, n := range oc.Monitor.Nodes {
				if n.Name == a.Node && isPrimary(&n) {
					t.Errorf("action %d %s on %s, which the monitor reports as %s/%s", i, a.Kind, a.Node, n.ReportedState, n.AssignedState)
				}
			}
			if a.Kind == StopContainer {
				if len(a.Evidence) == 0 {
					t.Errorf("destructive %s on %s without evidence", a.Kind, a.Node)
				}
				ok := false
				for _, n := range oc.Monitor.Nodes {
					if n.Name != a.Node && healthy(&n) && settled(&n) && (n.ReportedState == "primary" || n.ReportedState == "single") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("stop_container of %s without a healthy primary", a.Node)
				}
			}
		}
	}
}

func vmOfName(o *observe.Observation, name string) *observe.VM { return vmOf(o, name) }

func TestConvergeFromEmpty(t *testing.T) {
	st := refState("main", "second")
	st.Clusters[0].MonitorSettings = map[string]string{"health_check_period": "1000"}
	obs := emptyObs(st)
	rounds := converge(t, st, obs, 10)
	if rounds != 2 {
		// One plan brings every member up; number_sync_standbys can be
		// set only once the standbys joined, in the next.
		t.Errorf("bring-up from empty VMs took %d plan rounds in simulation, want 2 (members, then number_sync_standbys)", rounds)
	}
	for _, c := range st.Clusters {
		if got := len(findObsCluster(obs, c.Name).Monitor.Nodes); got != 3 {
			t.Errorf("cluster %s: %d nodes after convergence, want 3", c.Name, got)
		}
	}
}

func TestConvergedIsEmpty(t *testing.T) {
	st := refState()
	p := Plan(st, converged(st))
	if !p.Empty() || len(p.Clusters[0].Blocked) != 0 {
		var b bytes.Buffer
		p.WriteText(&b, Style{})
		t.Fatalf("converged cluster gives a plan:\n%s", b.String())
	}
}

// generatedStates are the states a generated case gives nodes at random.
var generatedStates = []string{"single", "primary", "secondary", "wait_primary", "wait_standby", "catchingup", "draining",
	"demote_timeout", "demoted", "prepare_promotion", "stop_replication", "maintenance", "wait_maintenance", "report_lsn", "dropped"}

// generatedCase is a random desired state and observation drawn from rng:
// the reference cluster, converged, then states, health, timelines,
// tokens, policies, removed nodes, parameters, unreachable VMs, container
// states, spec hashes, log evidence, restart counts, servers and a monitor
// not reached, each changed at random.
func generatedCase(rng *rand.Rand) (*desired.State, *observe.Observation) {
	st := refState()
	c := &st.Clusters[0]
	obs := converged(st)
	oc := &obs.Clusters[0]
	for j := range oc.Monitor.Nodes {
		n := &oc.Monitor.Nodes[j]
		if rng.IntN(3) == 0 {
			n.ReportedState = generatedStates[rng.IntN(len(generatedStates))]
		}
		if rng.IntN(4) == 0 {
			n.AssignedState = generatedStates[rng.IntN(len(generatedStates))]
		}
		if rng.IntN(4) == 0 {
			n.Health = []string{observe.HealthBad, observe.HealthUnknown}[rng.IntN(2)]
		}
		n.Timeline = 1 + rng.IntN(3)
		n.StateChangeTime = obs.Time.Add(-time.Duration(rng.IntN(20)) * time.Minute)
	}
	if rng.IntN(5) == 0 {
		c.Nodes[rng.IntN(3)].Rebuild = "token-" + fmt.Sprint(rng.IntN(3))
	}
	if rng.IntN(5) == 0 {
		c.Diverged.Policy = "auto"
	}
	if rng.IntN(6) == 0 {
		k := rng.IntN(3)
		c.Nodes = slices.Delete(c.Nodes, k, k+1)
	}
	if rng.IntN(6) == 0 {
		c.RemovedNodeData = "delete"
	}
	if rng.IntN(4) == 0 {
		c.PostgreSQLParameters = map[string]string{"max_connections": "150", "work_mem": "8MB"}
	}
	for j := range obs.VMs {
		vm := &obs.VMs[j]
		if rng.IntN(8) == 0 {
			vm.Reached, vm.Error, vm.Containers, vm.Volumes = false, "dial tcp: i/o timeout", nil, nil
		}
		for k := range vm.Containers {
			ct := &vm.Containers[k]
			if rng.IntN(6) == 0 {
				ct.State = []string{"exited", "restarting", "created"}[rng.IntN(3)]
			}
			if rng.IntN(6) == 0 {
				ct.SpecHash = "0000000000000000"
			}
			if rng.IntN(8) == 0 {
				ct.LogEvidence = []string{"FATAL: requested timeline 2 is not a child of this server's history"}
			}
			ct.RestartCount = rng.IntN(7)
			if ct.Postgres != nil {
				switch rng.IntN(6) {
				case 0:
					ct.Postgres = nil
				case 1:
					ct.Postgres.PendingRestart = []string{"max_connections"}
				case 2:
					ct.Postgres.Parameters = map[string]string{"max_connections": "150"}
				}
			}
			if rng.IntN(8) == 0 {
				ct.StartedAt = obs.Time.Add(-time.Duration(rng.IntN(20)) * time.Minute)
			}
		}
	}
	if rng.IntN(8) == 0 {
		oc.Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
	}
	return st, obs
}

// TestGeneratedObservations plans over many random observations and
// checks the invariants, then that simulation converges when every VM and
// the monitor are reachable.
func TestGeneratedObservations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		st, obs := generatedCase(rng)
		p := Plan(st, obs)
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checkInvariants(t, obs, p)
			checkDeterministic(t, st, obs)
		})
		if t.Failed() {
			var b bytes.Buffer
			p.WriteText(&b, Style{})
			t.Fatalf("case %d failed; its plan:\n%s", i, b.String())
		}
	}
}

func checkDeterministic(t *testing.T, st *desired.State, obs *observe.Observation) {
	t.Helper()
	want := planJSON(t, Plan(st, obs))
	rng := rand.New(rand.NewPCG(7, 9))
	for range 3 {
		st2, obs2 := shuffled(rng, st, obs)
		if got := planJSON(t, Plan(st2, obs2)); got != want {
			t.Fatalf("plan depends on input order:\n%s", cmp.Diff(want, got))
		}
	}
}

func planJSON(t *testing.T, p *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("plan JSON does not decode: %v", err)
	}
	var b2 bytes.Buffer
	if err := back.WriteJSON(&b2); err != nil {
		t.Fatal(err)
	}
	if b.String() != b2.String() {
		t.Fatalf("plan JSON does not round-trip:\n%s", cmp.Diff(b.String(), b2.String()))
	}
	return b.String()
}

// shuffled deep-copies st and obs with every list in a random order.
func shuffled(rng *rand.Rand, st *desired.State, obs *observe.Observation) (*desired.State, *observe.Observation) {
	var st2 desired.State
	var obs2 observe.Observation
	deepCopy(st, &st2)
	st2.Commit = st.Commit
	deepCopy(obs, &obs2)
	shuffle(rng, st2.VMs)
	shuffle(rng, st2.Clusters)
	for i := range st2.Clusters {
		shuffle(rng, st2.Clusters[i].Nodes)
	}
	shuffle(rng, obs2.VMs)
	for i := range obs2.VMs {
		shuffle(rng, obs2.VMs[i].Containers)
		shuffle(rng, obs2.VMs[i].Volumes)
	}
	shuffle(rng, obs2.Clusters)
	for i := range obs2.Clusters {
		shuffle(rng, obs2.Clusters[i].Monitor.Nodes)
	}
	return &st2, &obs2
}

func shuffle[T any](rng *rand.Rand, s []T) {
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func deepCopy(from, to any) {
	b, err := json.Marshal(from)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		panic(err)
	}
}

func TestSettingsNotCorrectedMidFailover(t *testing.T) {
	st := refState()
	obs := converged(st)
	n1 := monNode(obs, "main", "node1")
	n1.ReportedState, n1.AssignedState = "primary", "draining"
	monNode(obs, "main", "node2").CandidatePriority = 0 // lowered by pg_auto_failover
	for _, a := range Plan(st, obs).Actions() {
		if a.Kind == SetNodeSettings {
			t.Fatalf("candidate priority corrected mid-failover: %s", a.Describe())
		}
	}
}
