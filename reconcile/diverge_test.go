package reconcile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// divergeObs is the reference layout converged, node2 primary on
// timeline 2 for an hour, every container started an hour ago.
func divergeObs(st *desired.State) *observe.Observation {
	o := converged(st)
	for _, vm := range o.VMs {
		for i := range vm.Containers {
			vm.Containers[i].StartedAt = o.Time.Add(-time.Hour)
		}
	}
	for _, name := range []string{"node1", "node2", "node3"} {
		monNode(o, "main", name).Timeline = 2
	}
	n1, n2 := monNode(o, "main", "node1"), monNode(o, "main", "node2")
	n1.ReportedState, n1.AssignedState = "secondary", "secondary"
	n2.ReportedState, n2.AssignedState = "primary", "primary"
	return o
}

func containerOfNode(o *observe.Observation, node string) *observe.Container {
	for i := range o.VMs {
		for j := range o.VMs[i].Containers {
			if c := &o.VMs[i].Containers[j]; c.Node == node {
				return c
			}
		}
	}
	return nil
}

func TestDivergence(t *testing.T) {
	const grace = 2 * time.Minute
	cases := []struct {
		name  string
		setup func(o *observe.Observation)
		// want is a substring of the evidence, or "" for no divergence.
		want string
	}{
		{name: "converged_is_not_diverged", setup: func(o *observe.Observation) {}},
		{name: "stuck_past_grace", want: "reported catchingup, assigned secondary for 10m0s", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.ReportedState, n.StateChangeTime = "catchingup", o.Time.Add(-10*time.Minute)
		}},
		{name: "stuck_within_grace", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.ReportedState, n.StateChangeTime = "catchingup", o.Time.Add(-time.Minute)
		}},
		{name: "stuck_but_container_just_started", setup: func(o *observe.Observation) {
			// A VM powered on after a long outage: the node gets the whole
			// grace period to rejoin by itself.
			n := monNode(o, "main", "node1")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "secondary", "catchingup", o.Time.Add(-30*time.Minute)
			containerOfNode(o, "node1").StartedAt = o.Time.Add(-30 * time.Second)
		}},
		{name: "stuck_but_back_from_a_partition", setup: func(o *observe.Observation) {
			// The container never stopped, but the monitor marked the node
			// healthy again 20 s ago: it gets the whole grace period.
			n := monNode(o, "main", "node1")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "secondary", "catchingup", o.Time.Add(-10*time.Minute)
			o.Clusters[0].Monitor.Events = append(o.Clusters[0].Monitor.Events, observe.Event{ID: 9, Time: o.Time.Add(-20 * time.Second), NodeID: n.ID, NodeName: "node1",
				Reported: "secondary", Assigned: "catchingup", Description: `Node node 1 "node1" (10.0.0.11:5432) is marked as healthy by the monitor`})
		}},
		{name: "stuck_and_quiet_since_its_last_event", want: "reported secondary, assigned catchingup for 4m0s", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "secondary", "catchingup", o.Time.Add(-10*time.Minute)
			o.Clusters[0].Monitor.Events = append(o.Clusters[0].Monitor.Events, observe.Event{ID: 9, Time: o.Time.Add(-4 * time.Minute), NodeID: n.ID, NodeName: "node1",
				Description: `Node node 1 "node1" (10.0.0.11:5432) is marked as healthy by the monitor`})
		}},
		{name: "forked_timeline_ahead_while_secondary", want: "timeline 3 ahead of the primary node2's 2", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.Timeline, n.StateChangeTime = 3, o.Time.Add(-5*time.Minute)
		}},
		{name: "forked_within_grace", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.Timeline, n.StateChangeTime = 3, o.Time.Add(-time.Minute)
		}},
		{name: "forked_and_catching_up", want: "timeline 3 ahead of the primary node2's 2 while catchingup", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.Timeline, n.ReportedState, n.AssignedState, n.StateChangeTime = 3, "catchingup", "secondary", o.Time.Add(-5*time.Minute)
		}},
		{name: "fork_wipe_resumes_after_its_stop", want: "timeline 3 ahead of the primary node2's 2", setup: func(o *observe.Observation) {
			// The wipe stopped the container; the monitor marked the node
			// unhealthy a second ago. The fork is still a fork.
			n := monNode(o, "main", "node1")
			n.Timeline, n.AssignedState, n.StateChangeTime, n.Health, n.PGIsRunning = 3, "catchingup", o.Time.Add(-time.Second), observe.HealthBad, false
			containerOfNode(o, "node1").State = "exited"
		}},
		{name: "stopped_by_hand_and_unsettled", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.AssignedState, n.StateChangeTime, n.Health, n.PGIsRunning = "catchingup", o.Time.Add(-10*time.Minute), observe.HealthBad, false
			n.Timeline = 1
			containerOfNode(o, "node1").State = "exited"
		}},
		{name: "behind_wipe_resumes_after_its_stop", want: "timeline 1 behind the primary node2's 2 for 59m58s before its container stopped", setup: func(o *observe.Observation) {
			// Seen on the lab: a wipe planned on "behind" evidence stopped
			// the container, and the next plan started it again. It was
			// behind for an hour while it ran: the wipe goes on.
			n := monNode(o, "main", "node1")
			n.Timeline, n.AssignedState, n.StateChangeTime, n.Health, n.PGIsRunning = 1, "catchingup", o.Time.Add(-time.Second), observe.HealthBad, false
			ct := containerOfNode(o, "node1")
			ct.State, ct.FinishedAt = "exited", o.Time.Add(-2*time.Second)
			monNode(o, "main", "node2").StateChangeTime = o.Time.Add(-time.Hour)
		}},
		{name: "stopped_before_the_failover", setup: func(o *observe.Observation) {
			// An operator stopped node1; node2 was promoted afterwards.
			monNode(o, "main", "node1").Timeline = 1
			ct := containerOfNode(o, "node1")
			ct.State, ct.FinishedAt = "exited", o.Time.Add(-10*time.Minute)
			monNode(o, "main", "node2").StateChangeTime = o.Time.Add(-5 * time.Minute)
		}},
		{name: "stopped_within_grace_of_the_failover", setup: func(o *observe.Observation) {
			monNode(o, "main", "node1").Timeline = 1
			ct := containerOfNode(o, "node1")
			ct.State, ct.FinishedAt = "exited", o.Time.Add(-4*time.Minute)
			monNode(o, "main", "node2").StateChangeTime = o.Time.Add(-5 * time.Minute)
		}},
		{name: "stopped_within_grace_of_its_last_news", setup: func(o *observe.Observation) {
			// Back from a partition 30 s before it was stopped: it had not
			// had its grace period to rejoin.
			n := monNode(o, "main", "node1")
			n.Timeline = 1
			ct := containerOfNode(o, "node1")
			ct.State, ct.FinishedAt = "exited", o.Time.Add(-10*time.Second)
			o.Clusters[0].Monitor.Events = append(o.Clusters[0].Monitor.Events, observe.Event{ID: 9, Time: o.Time.Add(-40 * time.Second), NodeID: n.ID, NodeName: "node1",
				Description: `Node node 1 "node1" (10.0.0.11:5432) is marked as healthy by the monitor`})
		}},
		{name: "timeline_behind_not_moving", want: "timeline 1 behind the primary node2's 2", setup: func(o *observe.Observation) {
			monNode(o, "main", "node1").Timeline = 1
		}},
		{name: "timeline_behind_after_a_recent_failover", setup: func(o *observe.Observation) {
			monNode(o, "main", "node1").Timeline = 1
			monNode(o, "main", "node2").StateChangeTime = o.Time.Add(-30 * time.Second)
		}},
		{name: "restart_loop", want: "container restarting, restarted 7 times", setup: func(o *observe.Observation) {
			ct := containerOfNode(o, "node1")
			ct.State, ct.RestartCount, ct.StartedAt = "restarting", 7, o.Time.Add(-5*time.Second)
		}},
		{name: "old_log_lines_on_a_healthy_secondary", setup: func(o *observe.Observation) {
			containerOfNode(o, "node1").LogEvidence = []string{"Failed to rewind old data directory", "FATAL: could not find previous WAL record"}
		}},
		{name: "repeated_fatal_lines_and_postgres_down", want: "secondary but health bad, postgres running false, with 2 fatal log lines", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.Health, n.PGIsRunning = observe.HealthBad, false
			containerOfNode(o, "node1").LogEvidence = []string{
				"FATAL:  database system identifier differs between the primary and standby",
				"FATAL:  database system identifier differs between the primary and standby"}
		}},
		{name: "one_log_line_and_postgres_down", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.Health, n.PGIsRunning = observe.HealthBad, false
			containerOfNode(o, "node1").LogEvidence = []string{"FATAL:  requested timeline 3 is not a child of this server's history"}
		}},
		{name: "no_healthy_primary", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.ReportedState, n.StateChangeTime = "catchingup", o.Time.Add(-10*time.Minute)
			monNode(o, "main", "node2").Health = observe.HealthBad
		}},
		{name: "node_being_promoted", setup: func(o *observe.Observation) {
			n := monNode(o, "main", "node1")
			n.ReportedState, n.AssignedState, n.StateChangeTime = "secondary", "prepare_promotion", o.Time.Add(-10*time.Minute)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			st.Clusters[0].Diverged.GracePeriod.Duration = grace
			o := divergeObs(st)
			tc.setup(o)
			p := &planner{st: st, c: &st.Clusters[0], obs: o, oc: findObsCluster(o, "main"), stale: map[string]bool{}}
			for i := range p.oc.Monitor.Nodes {
				p.nodes = append(p.nodes, &p.oc.Monitor.Nodes[i])
			}
			ev := p.divergence(&st.Clusters[0].Nodes[0], containerOfNode(o, "node1"), monNode(o, "main", "node1"))
			got := strings.Join(ev, "; ")
			if tc.want == "" && len(ev) != 0 {
				t.Fatalf("diverged with evidence %q, want none", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("evidence %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// A fork is wiped under the auto policy even though its timeline is
// higher than the primary's, and blocked with the evidence under manual.
func TestForkedNodePlans(t *testing.T) {
	for _, policy := range []string{"auto", "manual"} {
		t.Run(policy, func(t *testing.T) {
			st := refState()
			st.Clusters[0].Diverged = desired.DivergedPolicy{Policy: policy, GracePeriod: desired.Duration{Duration: time.Minute}}
			o := divergeObs(st)
			n := monNode(o, "main", "node1")
			n.Timeline, n.StateChangeTime = 3, o.Time.Add(-90*time.Second)
			p := Plan(st, o)
			checkInvariants(t, o, p)
			checkGuardProperties(t, st, o, p)
			var b bytes.Buffer
			if err := p.WriteText(&b, Style{}); err != nil {
				t.Fatal(err)
			}
			c := p.Clusters[0]
			if policy == "manual" {
				if len(c.Actions) != 0 || len(c.Blocked) != 1 || c.Blocked[0].Guard != GuardManualPolicy || !strings.Contains(c.Blocked[0].Reason, "ahead of the primary") {
					t.Fatalf("manual policy: want one manual_policy block with the evidence; plan:\n%s", b.String())
				}
				return
			}
			if len(c.Actions) == 0 || c.Actions[0].Kind != StopContainer || c.Actions[0].Node != "node1" || c.Actions[0].Trigger != "diverged" ||
				!strings.Contains(strings.Join(c.Actions[0].Evidence, ";"), "forked") {
				t.Fatalf("auto policy: want the wipe of node1 with its evidence first; plan:\n%s", b.String())
			}
			last := c.Actions[len(c.Actions)-1]
			if last.Kind != Wait || last.Until.Node != "node1" {
				t.Fatalf("the wipe must end waiting for node1 to be a secondary; plan:\n%s", b.String())
			}
			// Interrupted after the stop: the monitor marked node1
			// unhealthy just now. The next plan resumes the wipe.
			containerOfNode(o, "node1").State = "exited"
			n.Health, n.PGIsRunning, n.AssignedState, n.StateChangeTime = observe.HealthBad, false, "catchingup", o.Time
			p2 := Plan(st, o)
			checkGuardProperties(t, st, o, p2)
			if a := p2.Actions(); len(a) == 0 || a[0].Kind != RemoveNode || a[0].Node != "node1" || a[0].Force {
				b.Reset()
				p2.WriteText(&b, Style{})
				t.Fatalf("after the stop, want remove_node node1 (without force) first; plan:\n%s", b.String())
			}
		})
	}
}

func TestMonitorLost(t *testing.T) {
	lose := func(o *observe.Observation) {
		vm := vmOf(o, "vm3")
		var cs []observe.Container
		for _, c := range vm.Containers {
			if c.Node != "monitor" {
				cs = append(cs, c)
			}
		}
		var vs []observe.Volume
		for _, v := range vm.Volumes {
			if v.Node != "monitor" {
				vs = append(vs, v)
			}
		}
		vm.Containers, vm.Volumes = cs, vs
		o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "dial tcp 10.0.0.13:5432: connect: connection refused"}
	}
	cases := []struct {
		name     string
		recreate string
		obs      func(st *desired.State) *observe.Observation
		wantKind Kind
		guard    string
	}{
		{name: "volume_lost_nodes_hold_state", obs: func(st *desired.State) *observe.Observation {
			o := converged(st)
			lose(o)
			return o
		}, guard: GuardMonitorLost},
		{name: "volume_lost_recreate_token", recreate: "lost-2026-11-26", obs: func(st *desired.State) *observe.Observation {
			o := converged(st)
			lose(o)
			return o
		}, wantKind: CreateMonitor},
		{name: "container_removed_volume_kept", obs: func(st *desired.State) *observe.Observation {
			o := converged(st)
			vm := vmOf(o, "vm3")
			var cs []observe.Container
			for _, c := range vm.Containers {
				if c.Node != "monitor" {
					cs = append(cs, c)
				}
			}
			vm.Containers = cs
			o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
			return o
		}, wantKind: CreateMonitor},
		{name: "bring_up_from_empty", obs: emptyObs, wantKind: CreateMonitor},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := refState()
			st.Clusters[0].Monitor.Recreate = tc.recreate
			o := tc.obs(st)
			p := Plan(st, o)
			c := p.Clusters[0]
			if tc.guard != "" {
				if len(c.Actions) != 0 || len(c.Blocked) != 1 || c.Blocked[0].Guard != tc.guard {
					t.Fatalf("want only a %s block, got actions %v blocked %v", tc.guard, c.Actions, c.Blocked)
				}
				if !strings.Contains(c.Blocked[0].Reason, "monitor.recreate") {
					t.Errorf("the block does not say how to proceed: %s", c.Blocked[0].Reason)
				}
				return
			}
			if len(c.Actions) == 0 || c.Actions[0].Kind != tc.wantKind {
				t.Fatalf("first action: want %s, got %v (blocked %v)", tc.wantKind, c.Actions, c.Blocked)
			}
			if tc.recreate != "" {
				a := c.Actions[0]
				if a.Trigger != "monitor-recreate" || len(a.Evidence) == 0 || a.Spec.Labels[observe.LabelRebuild] != tc.recreate {
					t.Errorf("recreate: trigger %q evidence %v label %q", a.Trigger, a.Evidence, a.Spec.Labels[observe.LabelRebuild])
				}
			}
		})
	}
}

// checkGuardProperties checks the guards of issue 6 on any plan:
//   - destructive actions target at most one node of a cluster;
//   - never the primary or a node being promoted, never while the monitor
//     or the node's VM is unobserved (checkInvariants covers these too);
//   - a wipe or drop of a running node leaves a healthy primary and at least
//     one ready secondary, unless the target is the only non-primary;
//   - the first destructive step carries evidence and a trigger;
//   - a new monitor is never created while nodes hold state and its volume
//     is gone, unless monitor.recreate asks for it.
func checkGuardProperties(t *testing.T, st *desired.State, obs *observe.Observation, p *Result) {
	t.Helper()
	for ci, c := range p.Clusters {
		dc := &st.Clusters[0]
		for i := range st.Clusters {
			if st.Clusters[i].Name == c.Name {
				dc = &st.Clusters[i]
			}
		}
		oc := findObsCluster(obs, c.Name)
		targets := map[string]bool{}
		first := true
		for _, a := range c.Actions {
			if a.Kind == CreateMonitor {
				hasVol, nodeState := false, false
				for _, vm := range obs.VMs {
					for _, v := range vm.Volumes {
						if v.Cluster == c.Name && v.Node == "monitor" && vm.Name == dc.Monitor.VM {
							hasVol = true
						}
						if v.Cluster == c.Name && v.Node != "monitor" {
							nodeState = true
						}
					}
					for _, ct := range vm.Containers {
						if ct.Cluster == c.Name && ct.Node != "monitor" {
							nodeState = true
						}
					}
				}
				if !hasVol && nodeState && dc.Monitor.Recreate == "" {
					t.Errorf("cluster %d: create_monitor planned while nodes hold state and no monitor.recreate token", ci)
				}
			}
			if !a.Destructive {
				continue
			}
			targets[a.Node] = true
			if !first {
				continue
			}
			first = false
			if len(a.Evidence) == 0 || a.Trigger == "" {
				t.Errorf("first destructive step %s on %s has no evidence or trigger", a.Kind, a.Node)
			}
			if a.Kind != StopContainer || oc == nil {
				continue
			}
			var prim *observe.Node
			secondaries, nonPrimaries := 0, 0
			for i := range oc.Monitor.Nodes {
				n := &oc.Monitor.Nodes[i]
				if n.Name != a.Node && healthy(n) && settled(n) && (n.ReportedState == "primary" || n.ReportedState == "single") {
					prim = n
				}
			}
			if prim == nil {
				t.Errorf("stop_container of %s leaves no healthy primary", a.Node)
				continue
			}
			for i := range oc.Monitor.Nodes {
				n := &oc.Monitor.Nodes[i]
				if n.Name == a.Node || n.Name == prim.Name {
					continue
				}
				nonPrimaries++
				if healthy(n) && settled(n) && n.ReportedState == "secondary" {
					secondaries++
				}
			}
			if nonPrimaries > 0 && secondaries == 0 {
				t.Errorf("stop_container of %s leaves the primary %s without a healthy secondary", a.Node, prim.Name)
			}
		}
		if len(targets) > 1 {
			t.Errorf("cluster %s: destructive actions on %d nodes in one plan: %v", c.Name, len(targets), targets)
		}
	}
}

// TestGuardPropertiesGenerated plans over many generated observations
// aimed at divergence: forks, timelines behind, restart loops, old log
// lines, fresh containers, lost monitor volumes, recreate tokens,
// unreachable VMs and monitors.
func TestGuardPropertiesGenerated(t *testing.T) {
	states := []string{"single", "primary", "secondary", "wait_primary", "wait_standby", "catchingup", "draining",
		"demote_timeout", "demoted", "prepare_promotion", "stop_replication", "maintenance", "report_lsn", "dropped"}
	rng := rand.New(rand.NewPCG(6, 6))
	wipes := 0
	for i := range 3000 {
		st := refState()
		c := &st.Clusters[0]
		c.Diverged = desired.DivergedPolicy{Policy: []string{"auto", "manual"}[rng.IntN(2)], GracePeriod: desired.Duration{Duration: time.Duration(1+rng.IntN(5)) * time.Minute}}
		if rng.IntN(6) == 0 {
			c.Monitor.Recreate = "tok"
		}
		obs := divergeObs(st)
		oc := &obs.Clusters[0]
		for j := range oc.Monitor.Nodes {
			n := &oc.Monitor.Nodes[j]
			if rng.IntN(3) == 0 {
				n.ReportedState = states[rng.IntN(len(states))]
			}
			if rng.IntN(4) == 0 {
				n.AssignedState = states[rng.IntN(len(states))]
			}
			if rng.IntN(5) == 0 {
				n.Health, n.PGIsRunning = []string{observe.HealthBad, observe.HealthUnknown}[rng.IntN(2)], rng.IntN(2) == 0
			}
			n.Timeline = 1 + rng.IntN(4)
			n.StateChangeTime = obs.Time.Add(-time.Duration(rng.IntN(600)) * time.Second)
			n.LSN = fmt.Sprintf("0/%X", 0x3000000+rng.IntN(0x100000))
		}
		for j := range obs.VMs {
			vm := &obs.VMs[j]
			for k := range vm.Containers {
				ct := &vm.Containers[k]
				ct.StartedAt = obs.Time.Add(-time.Duration(rng.IntN(600)) * time.Second)
				if rng.IntN(6) == 0 {
					ct.State = []string{"exited", "restarting", "created"}[rng.IntN(3)]
				}
				if rng.IntN(4) == 0 {
					ct.LogEvidence = []string{"FATAL:  requested timeline 3 is not a child of this server's history", "Failed to rewind old data directory"}[:1+rng.IntN(2)]
				}
				ct.RestartCount = rng.IntN(8)
			}
			if rng.IntN(10) == 0 {
				vm.Reached, vm.Error, vm.Containers, vm.Volumes = false, "dial tcp: i/o timeout", nil, nil
			}
		}
		if rng.IntN(10) == 0 { // the monitor's data lost
			vm := vmOf(obs, "vm3")
			if vm.Reached {
				var cs []observe.Container
				for _, ct := range vm.Containers {
					if ct.Node != "monitor" {
						cs = append(cs, ct)
					}
				}
				var vs []observe.Volume
				for _, v := range vm.Volumes {
					if v.Node != "monitor" {
						vs = append(vs, v)
					}
				}
				vm.Containers, vm.Volumes = cs, vs
			}
			oc.Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
		} else if rng.IntN(8) == 0 {
			oc.Monitor = observe.Monitor{Reached: false, Error: "connection refused"}
		}
		p := Plan(st, obs)
		for _, a := range p.Actions() {
			if a.Trigger == "diverged" && a.Kind == StopContainer {
				wipes++
			}
		}
		checkInvariants(t, obs, p)
		checkGuardProperties(t, st, obs, p)
		if t.Failed() {
			var b bytes.Buffer
			p.WriteText(&b, Style{})
			t.Fatalf("case %d failed; its plan:\n%s", i, b.String())
		}
	}
	// The generator must reach the interesting cases, or the properties
	// prove nothing.
	if wipes < 20 {
		t.Errorf("only %d generated cases planned a divergence wipe", wipes)
	}
	t.Logf("%d of 3000 generated cases planned a divergence wipe", wipes)
}

// TestDivergedWipeOneStepAtATime runs a divergence wipe as apply does:
// execute the first action, observe, plan again. The evidence lives on the
// monitor's row, which the wipe deletes; the wipe must still reach
// remove_volume before create_node (an old volume must never come back).
func TestDivergedWipeOneStepAtATime(t *testing.T) {
	// A fork ahead of the primary, and a node left behind on an old
	// timeline: the CI run where the second's wipe stopped the container
	// and the next plan started it again.
	for _, timeline := range []int{3, 1} {
		t.Run(fmt.Sprintf("timeline_%d", timeline), func(t *testing.T) { testDivergedWipeOneStepAtATime(t, timeline) })
	}
}

func testDivergedWipeOneStepAtATime(t *testing.T, timeline int) {
	st := refState()
	st.Clusters[0].Diverged = desired.DivergedPolicy{Policy: "auto", GracePeriod: desired.Duration{Duration: time.Minute}}
	o := divergeObs(st)
	n := monNode(o, "main", "node1")
	n.Timeline, n.StateChangeTime = timeline, o.Time.Add(-2*time.Minute)
	var kinds []string
	for step := 0; step < 20; step++ {
		p := Plan(st, o)
		checkInvariants(t, o, p)
		checkGuardProperties(t, st, o, p)
		acts := p.Actions()
		if len(acts) == 0 {
			break
		}
		a := acts[0]
		kinds = append(kinds, string(a.Kind)+map[bool]string{true: "(force)", false: ""}[a.Force])
		if a.Kind == Wait {
			break
		}
		simulate(t, st, o, &Result{Clusters: []ClusterPlan{{Name: "main", Actions: []Action{a}}}})
	}
	want := "stop_container remove_node remove_node(force) remove_container remove_volume create_node wait"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("steps one at a time: %s\nwant: %s", got, want)
	}
}

// A desired node that the monitor assigned dropped, with its container
// stopped and its volume kept, is the rest of a wipe whose remove_node ran:
// the wipe goes on (force remove, then container and volume), whatever
// the primary's state-change time says. With the container running it is
// left alone.
func TestDroppedNodeWipeGoesOn(t *testing.T) {
	for _, state := range []string{"exited", "running"} {
		t.Run(state, func(t *testing.T) {
			st := refState()
			o := divergeObs(st)
			n := monNode(o, "main", "node1")
			n.Timeline = 2 // not behind: no other evidence
			n.AssignedState = "dropped"
			ct := containerOfNode(o, "node1")
			ct.State = state
			if state == "exited" {
				ct.FinishedAt = o.Time.Add(-time.Second)
			}
			p := Plan(st, o)
			var kinds []string
			var first Action
			for _, a := range p.Clusters[0].Actions {
				if a.Node == "node1" {
					if len(kinds) == 0 {
						first = a
					}
					kinds = append(kinds, string(a.Kind))
				}
			}
			if state == "running" {
				if len(kinds) > 0 && first.Kind == RemoveNode {
					t.Fatalf("a running dropped node was wiped: %v", kinds)
				}
				return
			}
			if len(kinds) == 0 || first.Kind != RemoveNode || !first.Force {
				t.Fatalf("actions for node1 %v, want a forced remove_node first", kinds)
			}
			if ev := strings.Join(first.Evidence, "; "); !strings.Contains(ev, "assigned dropped on the monitor") {
				t.Errorf("evidence %q, want it to say node1 is assigned dropped", ev)
			}
		})
	}
}
