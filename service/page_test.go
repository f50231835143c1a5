package service

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// parseState parses desired YAML, failing the test on errors.
func parseState(t testing.TB, yaml string) *desired.State {
	t.Helper()
	st, err := desired.Parse(map[string][]byte{"desired.yaml": []byte(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// pageObservation is st observed right after a failover from node2 to
// node1: every container running as specified, node1 primary, node2
// rejoining and marked bad, the monitor's events of the failover, and vm
// named unreached (none when "").
func pageObservation(st *desired.State, unreached string) *observe.Observation {
	o := &observe.Observation{Version: observe.SchemaVersion, Time: t0}
	vms := map[string]*observe.VM{}
	for _, vm := range st.VMs {
		o.VMs = append(o.VMs, observe.VM{Name: vm.Name, Reached: true, Containers: []observe.Container{}, Volumes: []observe.Volume{}})
	}
	for i := range o.VMs {
		vms[o.VMs[i].Name] = &o.VMs[i]
	}
	put := func(spec reconcile.ContainerSpec) {
		vm := vms[spec.VM]
		vm.Containers = append(vm.Containers, observe.Container{Name: spec.Name, Cluster: spec.Labels[observe.LabelCluster],
			Node: spec.Labels[observe.LabelNode], Role: spec.Labels[observe.LabelRole], Image: spec.Image, State: "running",
			StartedAt: t0.Add(-time.Hour), SpecHash: spec.Hash(), Rebuild: spec.Labels[observe.LabelRebuild],
			Postgres: &observe.Postgres{StartTime: t0.Add(-time.Hour), Parameters: map[string]string{}}})
		vm.Volumes = append(vm.Volumes, observe.Volume{Name: spec.Volume, Cluster: spec.Labels[observe.LabelCluster],
			Node: spec.Labels[observe.LabelNode], Rebuild: spec.Labels[observe.LabelRebuild], SizeBytes: -1})
	}
	for ci := range st.Clusters {
		c := &st.Clusters[ci]
		ms := reconcile.MonitorSpec(st, c)
		ms.Labels[observe.LabelRole] = observe.RoleMonitor
		put(ms)
		mon := observe.Monitor{Reached: true, Version: "2.0", Settings: map[string]string{},
			Formation: observe.Formation{Name: c.Formation, Kind: "pgsql", NumberSyncStandbys: c.NumberSyncStandbys}}
		for k, v := range c.MonitorSettings {
			mon.Settings[k] = v
		}
		for i := range c.Nodes {
			n := &c.Nodes[i]
			put(reconcile.NodeSpec(st, c, n))
			state, lsn, health := "secondary", "0/3000000", observe.HealthGood
			switch i {
			case 0:
				state, lsn = "primary", "0/3000100"
			case 1:
				health = observe.HealthBad
			}
			var host string
			for _, vm := range st.VMs {
				if vm.Name == n.VM {
					host = vm.Address
				}
			}
			mon.Nodes = append(mon.Nodes, observe.Node{ID: int64(i + 1), Name: n.Name, Host: host, Port: n.Port,
				ReportedState: state, AssignedState: state, Timeline: 2, LSN: lsn, Health: health,
				CandidatePriority: n.CandidatePriority, ReplicationQuorum: n.ReplicationQuorum == nil || *n.ReplicationQuorum,
				ReportTime: t0, StateChangeTime: t0.Add(-90 * time.Second), PGIsRunning: true})
		}
		// The primary's server lists every standby with a replay lag.
		lag := 1.25
		for ci := range vms[c.Nodes[0].VM].Containers {
			if ct := &vms[c.Nodes[0].VM].Containers[ci]; ct.Cluster == c.Name && ct.Node == c.Nodes[0].Name {
				for _, n := range mon.Nodes[1:] {
					ct.Postgres.Standbys = append(ct.Postgres.Standbys, observe.Standby{Name: observe.StandbyName(n.ID), State: "streaming", ReplayLagSeconds: &lag})
				}
			}
		}
		mon.Events = failoverEvents(t0.Add(-2 * time.Minute))
		o.Clusters = append(o.Clusters, observe.Cluster{Name: c.Name, Monitor: mon})
	}
	if vm := vms[unreached]; vm != nil {
		*vm = observe.VM{Name: vm.Name, Error: "ssh: dial tcp 10.0.0.12:22: connect: no route to host", Containers: []observe.Container{}, Volumes: []observe.Volume{}}
	}
	return o
}

// failoverEvents are the monitor's events of node2 (id 2), primary, lost
// at start and replaced by node1 (id 1), as pg_auto_failover's monitor
// writes them (two nodes: the candidate is assigned first).
func failoverEvents(start time.Time) []observe.Event {
	evs := []observe.Event{
		{NodeID: 2, NodeName: "node2", Reported: "primary", Assigned: "primary", Description: `Node node 2 "node2" (10.0.0.12:5432) is marked as unhealthy by the monitor`},
		{NodeID: 1, NodeName: "node1", Reported: "secondary", Assigned: "prepare_promotion", Description: `Setting goal state of node 2 "node2" (10.0.0.12:5432) to draining and node 1 "node1" (10.0.0.11:5432) to prepare_promotion after node 2 "node2" (10.0.0.12:5432) became unhealthy.`},
		{NodeID: 2, NodeName: "node2", Reported: "primary", Assigned: "draining", Description: `Setting goal state of node 2 "node2" (10.0.0.12:5432) to draining and node 1 "node1" (10.0.0.11:5432) to prepare_promotion after node 2 "node2" (10.0.0.12:5432) became unhealthy.`},
		{NodeID: 1, NodeName: "node1", Reported: "prepare_promotion", Assigned: "prepare_promotion", Description: `New state is reported by node 1 "node1" (10.0.0.11:5432): "prepare_promotion"`},
		{NodeID: 1, NodeName: "node1", Reported: "prepare_promotion", Assigned: "stop_replication", Description: `Setting goal state of node 2 "node2" (10.0.0.12:5432) to demote_timeout and node 1 "node1" (10.0.0.11:5432) to stop_replication after node 1 "node1" (10.0.0.11:5432) converged to prepare_promotion.`},
		{NodeID: 2, NodeName: "node2", Reported: "primary", Assigned: "demote_timeout", Description: `Setting goal state of node 2 "node2" (10.0.0.12:5432) to demote_timeout and node 1 "node1" (10.0.0.11:5432) to stop_replication after node 1 "node1" (10.0.0.11:5432) converged to prepare_promotion.`},
		{NodeID: 1, NodeName: "node1", Reported: "stop_replication", Assigned: "stop_replication", Description: `New state is reported by node 1 "node1" (10.0.0.11:5432): "stop_replication"`},
		{NodeID: 1, NodeName: "node1", Reported: "stop_replication", Assigned: "wait_primary", Description: `Setting goal state of node 1 "node1" (10.0.0.11:5432) to wait_primary and node 2 "node2" (10.0.0.12:5432) to demoted after the demote timeout expired.`},
		{NodeID: 2, NodeName: "node2", Reported: "primary", Assigned: "demoted", Description: `Setting goal state of node 1 "node1" (10.0.0.11:5432) to wait_primary and node 2 "node2" (10.0.0.12:5432) to demoted after the demote timeout expired.`},
		{NodeID: 1, NodeName: "node1", Reported: "wait_primary", Assigned: "wait_primary", Description: `New state is reported by node 1 "node1" (10.0.0.11:5432): "wait_primary"`},
	}
	// Seconds after start: unhealthy at 0, draining at 0.1, ..., node1
	// reports wait_primary at 31.2.
	offsets := []float64{0, 0.1, 0.1, 0.5, 1.2, 1.2, 1.6, 31.1, 31.1, 31.2}
	for i := range evs {
		evs[i].ID = int64(100 + i)
		evs[i].Time = start.Add(time.Duration(offsets[i] * float64(time.Second)))
	}
	return evs
}

// observingEngine is a fakeEngine that hands obs to the Observed hook
// first, as the live engine does with each observation.
type observingEngine struct {
	*fakeEngine
	obs func(st *desired.State) *observe.Observation
}

func (e observingEngine) Plan(ctx context.Context, st *desired.State, h Hooks) (*reconcile.Result, error) {
	h.Observed(e.obs(st), 80*time.Millisecond)
	return e.fakeEngine.Plan(ctx, st, h)
}

func (e observingEngine) Apply(ctx context.Context, st *desired.State, h Hooks) (*actuators.Outcome, error) {
	h.Observed(e.obs(st), 80*time.Millisecond)
	return e.fakeEngine.Apply(ctx, st, h)
}

// pageText is the page as a reader sees it: tags dropped, entities
// decoded, white space squeezed.
func pageText(page string) string {
	page = regexp.MustCompile(`(?s)<script>.*?</script>|<style>.*?</style>|<[^>]*>`).ReplaceAllString(page, " ")
	return strings.Join(strings.Fields(html.UnescapeString(page)), " ")
}

const hostile = `<script>alert("x")</script>`

func TestStatusPageShowsWhatStatusPrintsAndWhatHappened(t *testing.T) {
	r := newRepo(t)
	c1 := r.Repo.Commit(hostile, nil, map[string]string{"desired.yaml": desiredYAML("img:1")})
	step := reconcile.Action{Cluster: "main", Kind: reconcile.CreateNode, Node: "node2", VM: "vm2", Volume: "main-node2-data",
		Spec: &reconcile.ContainerSpec{Image: "img:1"}, Reason: "container main-node2 absent",
		Evidence: []string{"vm2 observed at 12:00:00: no container main-node2"}}
	eng := observingEngine{&fakeEngine{actions: []reconcile.Action{step}}, func(st *desired.State) *observe.Observation {
		return pageObservation(st, "vm2")
	}}
	h := start(t, gitSource(t, r, ""), eng.fakeEngine, func(c *Config) { c.Engine = eng; c.Now = func() time.Time { return t0 } })
	h.waitFor("first commit applied", applied(c1))

	code, page := h.get("/")
	if code != http.StatusOK {
		t.Fatalf("GET / %d", code)
	}
	text := pageText(page)
	for _, want := range []string{
		// The joined table: node, id, VM:port, container, image, reported,
		// assigned, timeline:LSN, lag, replay lag, sync, priority, health,
		// time in state.
		"node1 1 vm1:5432 running img:1 primary primary 2:0/3000100 - - - 50 good 1m30s",
		"node2 2 vm2:5432 unknown - secondary secondary 2:0/3000000 256 B 1.2 s sync 50 bad 1m30s",
		"main primary node1 node2 256 B 1 0 node2 → node1 2m0s ago",
		"main primary node1 monitor vm1:6432",
		"NOT REACHED: VM vm2: ssh: dial tcp 10.0.0.12:22: connect: no route to host",
		// A blocked change with its guard.
		"blocked node2, guard vm_unobserved : vm2 was not reached",
		// The failover, and an event.
		"2026-11-26 11:58:00 2m0s ago failover node2 node1 31.1s 2026-11-26 11:58:00",
		`2026-11-26 11:58:31 node1 wait_primary wait_primary New state is reported by node 1 "node1" (10.0.0.11:5432): "wait_primary"`,
		// The run and its step with the planner's reason and evidence.
		"start " + c1[:12] + " success",
		"create_node node2 on vm2 (image img:1, volume main-node2-data) (1ms, ok) why: container main-node2 absent vm2 observed at 12:00:00: no container main-node2",
		hostile,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Errorf("the commit subject reached the page unescaped")
	}
	if m := regexp.MustCompile(`(?i)<link|src=|url\(|@import|(href|action)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("page loads an external asset or links out (%q); the source is a file:// URL", m)
	}
	if !strings.Contains(page, `<noscript><meta http-equiv="refresh"`) {
		t.Error("without script the page does not refresh")
	}

	code, live := h.get("/?part=live")
	if code != http.StatusOK || strings.Contains(live, "<html") || strings.Contains(live, "<script>") ||
		!strings.Contains(pageText(live), "node1 1 vm1:5432 running img:1 primary primary") {
		t.Errorf("live part %d:\n%s", code, live)
	}

	st := h.getStatus()
	if st.Report == nil || len(st.Report.Clusters) != 1 {
		t.Fatalf("/status report %+v", st.Report)
	}
	c := st.Report.Clusters[0]
	if lag := c.Rows[1].LagBytes; lag == nil || *lag != 256 || len(c.Failovers) != 1 || c.Failovers[0].From != "node2" || len(c.Blocked) == 0 {
		t.Errorf("/status report cluster %+v", c)
	}
	if len(st.Runs) != 1 || st.Runs[0].Commit != c1 || len(st.Runs[0].Steps) != 1 || st.Runs[0].Steps[0].Reason != step.Reason ||
		len(st.Runs[0].Steps[0].Evidence) != 1 {
		t.Errorf("/status runs %+v", st.Runs)
	}
}

func TestRunHistoryIsBoundedNewestFirst(t *testing.T) {
	r := newRepo(t)
	r.commit(desiredYAML("img:1"))
	h := start(t, gitSource(t, r, ""), &fakeEngine{}, nil)
	h.waitFor("first run", func(st Status) bool { return st.LastRun != nil })
	n := RunHistory + 3
	for i := 1; i <= n; i++ {
		why := fmt.Sprintf("t%d", i)
		h.svc.Trigger(why)
		h.waitFor(why, func(st Status) bool { return st.LastRun != nil && st.LastRun.Trigger == why })
	}
	st := h.getStatus()
	if len(st.Runs) != RunHistory || st.Runs[0].Trigger != fmt.Sprintf("t%d", n) || st.Runs[RunHistory-1].Trigger != fmt.Sprintf("t%d", n-RunHistory+1) {
		var got []string
		for _, r := range st.Runs {
			got = append(got, r.Trigger)
		}
		t.Errorf("runs %v, want the newest %d, newest first", got, RunHistory)
	}
}

// The monitor hands out its newest 20 events; a failover longer than that
// is still seen whole across observations.
func TestFailoversAreReadFromEveryEventSeen(t *testing.T) {
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}})
	if err != nil {
		t.Fatal(err)
	}
	st := parseState(t, desiredYAML("img:1"))
	evs := failoverEvents(t0.Add(-time.Minute))
	for _, part := range [][]observe.Event{evs[:4], evs[3:7], evs[7:]} {
		obs := pageObservation(st, "")
		obs.Clusters[0].Monitor.Events = part
		rep := s.report(st, obs)
		if len(rep.Clusters[0].Events) != len(part) {
			t.Errorf("the report's events are not the observation's")
		}
	}
	obs := pageObservation(st, "")
	obs.Clusters[0].Monitor.Events = evs[9:]
	f := s.report(st, obs).Clusters[0].Failovers
	if len(f) != 1 || f[0].From != "node2" || f[0].To != "node1" || f[0].Kind != report.KindFailover {
		t.Errorf("failovers %+v, want node2 -> node1", f)
	}
}

func TestCommitLink(t *testing.T) {
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		source, want string
	}{
		{"https://github.com/acme/pg-desired.git (branch main, path /)", "https://github.com/acme/pg-desired/commit/" + sha},
		{"https://git:xxxxx@git.example.com:8443/ops/clusters (tag v1, path /prod)", "https://git.example.com:8443/ops/clusters/commit/" + sha},
		{"https://gitlab.com/group/sub/repo.git (branch main, path /)", ""},
		{"http://github.com/acme/repo.git (branch main, path /)", ""},
		{"git@github.com:acme/repo.git (branch main, path /)", ""},
		{"ssh://git@github.com/acme/repo.git (branch main, path /)", ""},
		{"file:///srv/git/desired (branch main, path /)", ""},
		{"/etc/pgaf/desired", ""},
	}
	for _, tc := range tests {
		p := &pageData{commitBase: commitBase(tc.source)}
		if got := p.Link(sha); got != tc.want {
			t.Errorf("%s: link %q, want %q", tc.source, got, tc.want)
		}
	}
	p := &pageData{commitBase: commitBase(tests[0].source)}
	for _, c := range []string{"", "sha256:" + sha, sha[:12], strings.ToUpper(sha)} {
		if got := p.Link(c); got != "" {
			t.Errorf("Link(%q) = %q, want none: not a commit id", c, got)
		}
	}
}

// pageStatus is the status of a service over n clusters of three nodes,
// each with 20 monitor events, after RunHistory runs of two steps.
func pageStatus(t testing.TB, n int) Status {
	st := parseState(t, clustersYAML(n))
	obs := pageObservation(st, "")
	for ci := range obs.Clusters {
		obs.Clusters[ci].Monitor.Events = twentyEvents()
	}
	rep := report.Build(st, obs)
	status := Status{Source: "https://github.com/acme/pg-desired.git (branch main, path /)", Instance: "vm9",
		Condition: Ready, Reason: ReasonSucceeded, Message: "converged on 0123456789ab", Report: &rep, ObservedAt: t0, ObservationAge: "2s",
		LocksHeld: []string{"cluster1"}}
	commit := "0123456789abcdef0123456789abcdef01234567"
	rev := &Revision{Revision: commit, Commit: commit, Subject: "cluster3: node2 priority 60", At: t0}
	status.LastSeen, status.InForce, status.LastApplied = rev, rev, rev
	for i := range RunHistory {
		run := Run{Trigger: "interval", Start: t0.Add(-time.Duration(i) * time.Minute), Duration: "1.2s", Revision: commit, Commit: commit, Result: "success"}
		for s := range 2 {
			run.Steps = append(run.Steps, Step{Cluster: fmt.Sprintf("cluster%d", s+1), Node: "node2", Action: "set_node_settings",
				What: "set_node_settings node2 on vm2: candidate_priority 50 -> 60", Reason: "candidate_priority is 50, desired 60",
				Evidence: []string{"monitor of cluster1: node2 candidate_priority 50"}, Duration: "120ms"})
		}
		status.Runs = append(status.Runs, run)
	}
	status.LastRun = &status.Runs[0]
	return status
}

// clustersYAML is a desired state of n clusters of three nodes.
func clustersYAML(n int) string {
	var y strings.Builder
	y.WriteString("vms:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&y, "  - {name: vm%d, address: 10.0.0.1%d, ssh: {user: ops}}\n", i, i)
	}
	y.WriteString("clusters:\n")
	for c := range n {
		fmt.Fprintf(&y, "  - name: cluster%d\n    image: pgaf/postgres:15-2.0\n    monitor: {vm: vm3, port: %d}\n    nodes:\n", c+1, 6000+c)
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&y, "      - {name: node%d, vm: vm%d, port: %d}\n", i, i, 5432+c)
		}
	}
	return y.String()
}

// twentyEvents are a failover's events, then ten reports of node3.
func twentyEvents() []observe.Event {
	evs := failoverEvents(t0.Add(-10 * time.Minute))
	for i := range 10 {
		evs = append(evs, observe.Event{ID: int64(200 + i), Time: t0.Add(time.Duration(i-9) * time.Minute), NodeID: 3, NodeName: "node3",
			Reported: "secondary", Assigned: "secondary", Description: `New state is reported by node 3 "node3" (10.0.0.13:5434): "secondary"`})
	}
	return evs
}

// serve answers one GET of path by h.
func serve(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// renderPage serves the page of status once.
func renderPage(t testing.TB, status Status) string {
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	s.status = status
	rec := serve(s.Handler(""), "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestStatusPageAtEightClustersIsSmall(t *testing.T) {
	page := renderPage(t, pageStatus(t, 8))
	if len(page) > 200<<10 {
		t.Errorf("page is %d bytes at 8 clusters, goal under 200 KB", len(page))
	}
	text := pageText(page)
	for _, want := range []string{"cluster8", "failover node2 node1", `href="https://github.com/acme/pg-desired/commit/0123456789abcdef0123456789abcdef01234567"`} {
		if !strings.Contains(text, want) && !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func BenchmarkStatusPage(b *testing.B) {
	status := pageStatus(b, 8)
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	s.status = status
	handler := s.Handler("")
	var size int
	for b.Loop() {
		size = serve(handler, "/").Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}

// BenchmarkObservedReport is the work of each observation for the page at
// 8 clusters: the report (which plans), the events merged, the failovers.
func BenchmarkObservedReport(b *testing.B) {
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}})
	if err != nil {
		b.Fatal(err)
	}
	st := parseState(b, clustersYAML(8))
	obs := pageObservation(st, "")
	for ci := range obs.Clusters {
		obs.Clusters[ci].Monitor.Events = twentyEvents()
	}
	for b.Loop() {
		s.report(st, obs)
	}
}
