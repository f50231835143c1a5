package reconcile

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// TestExplain explains one node in a desired state and observation built
// here, checks the parts of the explanation each case is about, and
// compares the text with testdata/explain/NAME.txt (-update rewrites it).
func TestExplain(t *testing.T) {
	cases := []struct {
		name  string
		node  string
		setup func(st *desired.State) *observe.Observation
		check func(t *testing.T, e *Explanation)
	}{
		{name: "converged", node: "node2", setup: converged, check: func(t *testing.T, e *Explanation) {
			if len(e.Actions) != 0 || len(e.Blocked) != 0 {
				t.Errorf("actions %v, blocked %v; want none", e.Actions, e.Blocked)
			}
			if !hasCheck(e.Guards, GuardVMUnobserved, true) || !hasCheck(e.ClusterGuards, GuardMonitorUnobserved, true) {
				t.Errorf("guards %v, cluster guards %v", e.Guards, e.ClusterGuards)
			}
			for _, g := range append(e.Guards, e.ClusterGuards...) {
				if !g.Passed {
					t.Errorf("guard blocked on a converged cluster: %+v", g)
				}
			}
			if e.Desired == nil || e.Container == nil || e.Desired.SpecHash != e.Container.SpecHash {
				t.Errorf("desired %+v, container %+v", e.Desired, e.Container)
			}
		}},
		{name: "vm_unreachable", node: "node2", setup: func(st *desired.State) *observe.Observation {
			o := converged(st)
			*vmOf(o, "vm2") = observe.VM{Name: "vm2", Reached: false, Error: "ssh: dial tcp 10.0.0.12:22: connect: no route to host"}
			n := monNode(o, "main", "node2")
			n.Health, n.PGIsRunning, n.AssignedState = observe.HealthBad, false, "catchingup"
			return o
		}, check: func(t *testing.T, e *Explanation) {
			if len(e.Actions) != 0 || len(e.Blocked) != 1 || e.Blocked[0].Guard != GuardVMUnobserved {
				t.Errorf("actions %v, blocked %v; want one vm_unobserved", e.Actions, e.Blocked)
			}
			if !hasCheck(e.Guards, GuardVMUnobserved, false) || e.VMReached || e.Container != nil {
				t.Errorf("guards %v, vm reached %v, container %v", e.Guards, e.VMReached, e.Container)
			}
		}},
		{name: "monitor_down", node: "node1", setup: func(st *desired.State) *observe.Observation {
			o := converged(st)
			*vmOf(o, "vm3") = observe.VM{Name: "vm3", Reached: false, Error: "ssh: dial tcp 10.0.0.13:22: i/o timeout"}
			o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "dial tcp 10.0.0.13:5432: i/o timeout"}
			return o
		}, check: func(t *testing.T, e *Explanation) {
			if e.Stopped == nil || e.Stopped.Guard != GuardVMUnobserved || len(e.Guards) != 0 || len(e.Actions) != 0 {
				t.Errorf("stopped %+v, guards %v, actions %v; want the planning stopped at the monitor", e.Stopped, e.Guards, e.Actions)
			}
		}},
		{name: "diverged_auto", node: "node1", setup: func(st *desired.State) *observe.Observation {
			st.Clusters[0].Diverged.Policy = "auto"
			return divergedObs(st)
		}, check: func(t *testing.T, e *Explanation) {
			var kinds []Kind
			for _, a := range e.Actions {
				kinds = append(kinds, a.Kind)
			}
			if !slices.Contains(kinds, RemoveVolume) || !slices.Contains(kinds, CreateNode) || e.Actions[0].Step != 1 {
				t.Errorf("actions %v; want the wipe, first in the plan", kinds)
			}
			if len(e.Actions[0].Evidence) == 0 {
				t.Errorf("the wipe has no evidence")
			}
			for _, g := range []string{GuardVMUnobserved, GuardManualPolicy, GuardMonitorUnobserved, GuardTargetPrimary, GuardNoHealthyPrimary,
				GuardNewestData, GuardInFlight, GuardRedundancy, GuardOneAtATime} {
				if !hasCheck(e.Guards, g, true) {
					t.Errorf("guard %s not passed: %v", g, e.Guards)
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			obs := tc.setup(st)
			e, err := Explain(st, obs, "", tc.node)
			if err != nil {
				t.Fatal(err)
			}
			if e.Cluster != "main" || e.Node != tc.node {
				t.Fatalf("explained %s of %s", e.Node, e.Cluster)
			}
			tc.check(t, e)
			checkExplanation(t, st, obs, e)
			var text bytes.Buffer
			if err := e.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata/explain", tc.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, text.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), text.String()); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", path, diff)
			}
		})
	}
}

func hasCheck(checks []GuardCheck, guard string, passed bool) bool {
	for _, g := range checks {
		if g.Guard == guard && g.Passed == passed {
			return true
		}
	}
	return false
}

func TestExplainUnknown(t *testing.T) {
	st := refState()
	obs := converged(st)
	cases := []struct {
		name, cluster, node string
		want                []string
	}{
		{name: "unknown_node", node: "node9", want: []string{`no node "node9" in any cluster`, "main (node1, node2, node3)"}},
		{name: "unknown_node_in_cluster", cluster: "main", node: "node9", want: []string{`no node "node9" in cluster main; its nodes: node1, node2, node3`}},
		{name: "unknown_cluster", cluster: "other", node: "node1", want: []string{`no cluster "other"`, "its clusters: main"}},
		{name: "monitor", node: "monitor", want: []string{"explain takes a node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Explain(st, obs, tc.cluster, tc.node)
			if err == nil {
				t.Fatalf("no error; explained %s of %s", e.Node, e.Cluster)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	two := refState("a", "b")
	if _, err := Explain(two, converged(two), "", "node1"); err == nil || !strings.Contains(err.Error(), "is in clusters a, b: name the cluster") {
		t.Errorf("ambiguous node: %v", err)
	}
	if e, err := Explain(two, converged(two), "b", "node1"); err != nil || e.Cluster != "b" {
		t.Errorf("named cluster: %v", err)
	}
}

// TestExplainAgreesWithPlan explains every member of every golden fixture
// and checks each explanation against the plan.
func TestExplainAgreesWithPlan(t *testing.T) {
	dirs, err := filepath.Glob("testdata/plans/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			st, obs := readGoldenInputs(t, dir)
			for _, c := range Plan(st, obs).Clusters {
				for _, m := range c.Members {
					if m.Node == "monitor" {
						continue
					}
					e, err := Explain(st, obs, c.Name, m.Node)
					if err != nil {
						t.Fatalf("%s: %v", m.Node, err)
					}
					checkExplanation(t, st, obs, e)
				}
			}
		})
	}
}

// checkExplanation checks an explanation against Plan: the same actions
// at the same steps and the same blocked entries; every blocked entry is a
// guard that blocked, and every guard that blocked is a blocked entry; a
// destructive action passed the one-disruption guard, and, on a node
// the monitor knows, the target_is_primary guard. The JSON decodes.
func checkExplanation(t *testing.T, st *desired.State, obs *observe.Observation, e *Explanation) {
	t.Helper()
	var want []PlannedAction
	var blocked []Blocked
	var clusterBlocked []Blocked
	for _, c := range Plan(st, obs).Clusters {
		if c.Name != e.Cluster {
			continue
		}
		for i, a := range c.Actions {
			if a.Node == e.Node {
				want = append(want, PlannedAction{Step: i + 1, Action: a})
			}
		}
		for _, b := range c.Blocked {
			switch b.Node {
			case e.Node:
				blocked = append(blocked, b)
			case "monitor":
				clusterBlocked = append(clusterBlocked, b)
			}
		}
	}
	if diff := cmp.Diff(want, e.Actions, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: actions differ from the plan's (-plan +explain):\n%s", e.Node, diff)
	}
	if diff := cmp.Diff(blocked, e.Blocked, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: blocked entries differ from the plan's (-plan +explain):\n%s", e.Node, diff)
	}
	failed := func(checks []GuardCheck) []Blocked {
		var out []Blocked
		for _, g := range checks {
			if !g.Passed {
				out = append(out, Blocked{Cluster: e.Cluster, Node: g.Node, Guard: g.Guard, Reason: g.Detail})
			}
		}
		return out
	}
	if diff := cmp.Diff(blocked, failed(e.Guards), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: guards that blocked differ from the blocked entries (-blocked +guards):\n%s", e.Node, diff)
	}
	if diff := cmp.Diff(clusterBlocked, failed(e.ClusterGuards), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s: cluster guards that blocked differ from the monitor's blocked entries (-blocked +guards):\n%s", e.Node, diff)
	}
	for _, a := range e.Actions {
		if !a.Destructive {
			continue
		}
		if !hasCheck(e.Guards, GuardOneAtATime, true) {
			t.Errorf("%s: destructive %s without a passed %s", e.Node, a.Kind, GuardOneAtATime)
		}
		if e.Registered != nil && !hasCheck(e.Guards, GuardTargetPrimary, true) {
			t.Errorf("%s: destructive %s on a registered node without a passed %s", e.Node, a.Kind, GuardTargetPrimary)
		}
	}
	var b bytes.Buffer
	if err := e.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Explanation
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Version != ExplainSchemaVersion {
		t.Errorf("%s: JSON does not decode: %v", e.Node, err)
	}
	if err := e.WriteText(&bytes.Buffer{}); err != nil {
		t.Error(err)
	}
}

// TestExplainGenerated checks explanations against the plan over random
// observations: nodes in any state, unhealthy, on other timelines, VMs
// and the monitor out of reach, containers stopped or changed.
func TestExplainGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	explained := 0
	for i := range 400 {
		st, obs := generatedCase(rng)
		for _, node := range []string{"node1", "node2", "node3"} {
			e, err := Explain(st, obs, "main", node)
			if err != nil {
				continue // node3 neither desired nor observed
			}
			checkExplanation(t, st, obs, e)
			explained++
		}
		if t.Failed() {
			t.Fatalf("case %d failed", i)
		}
	}
	if explained < 1100 {
		t.Errorf("only %d nodes explained in 400 cases", explained)
	}
}
