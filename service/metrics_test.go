package service

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/report"
)

// The cluster metrics the alerting rules of deploy/prometheus read.
func TestClusterMetrics(t *testing.T) {
	node := func(name, reported, assigned, lsn string) observe.Node {
		return observe.Node{Name: name, ReportedState: reported, AssignedState: assigned, LSN: lsn, Health: observe.HealthGood}
	}
	withID := func(n observe.Node, id int64) observe.Node { n.ID = id; return n }
	lag := 0.25
	// steady's primary lists node2 (id 2) with its replay lag, node3 not.
	obs := &observe.Observation{Time: time.Unix(1700000000, 0), VMs: []observe.VM{{Name: "vm1", Reached: true, Containers: []observe.Container{
		{Cluster: "steady", Node: "node1", State: "running", Postgres: &observe.Postgres{Standbys: []observe.Standby{
			{Name: observe.StandbyName(2), State: "streaming", ReplayLagSeconds: &lag}}}},
	}}}, Clusters: []observe.Cluster{
		{Name: "steady", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node("node1", "primary", "primary", "0/3000100"),
			withID(node("node2", "secondary", "secondary", "0/3000000"), 2),
			// A standby whose last report is newer than the primary's.
			node("node3", "secondary", "secondary", "0/3000200"),
		}}},
		// The monitor assigned draining to the old primary and has not
		// promoted anyone yet: no writer.
		{Name: "failing", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node("node1", "primary", "draining", "1/0"),
			node("node2", "secondary", "prepare_promotion", "0/FFFFFF00"),
		}}},
		// Two writers: no lag is computed against either.
		{Name: "split", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node("node1", "primary", "primary", "0/10"),
			node("node2", "wait_primary", "wait_primary", "0/20"),
			node("node3", "secondary", "secondary", "0/5"),
		}}},
		{Name: "dark", Monitor: observe.Monitor{Error: "connection refused"}},
	}}
	m := newMetrics(obs.Time)
	m.observed(obs, 80*time.Millisecond)
	want := `
# HELP pgaf_cluster_primaries Nodes the monitor shows as writable (reported and assigned single, primary, wait_primary, join_primary or apply_settings); absent while the monitor is not reached.
# TYPE pgaf_cluster_primaries gauge
pgaf_cluster_primaries{cluster="failing"} 0
pgaf_cluster_primaries{cluster="split"} 2
pgaf_cluster_primaries{cluster="steady"} 1
# HELP pgaf_monitor_up 1 when the cluster's monitor answered the last observation, 0 otherwise.
# TYPE pgaf_monitor_up gauge
pgaf_monitor_up{cluster="dark"} 0
pgaf_monitor_up{cluster="failing"} 1
pgaf_monitor_up{cluster="split"} 1
pgaf_monitor_up{cluster="steady"} 1
# HELP pgaf_node_replication_lag_bytes WAL bytes a standby is behind the one primary, from the LSNs the keepers last reported to the monitor; absent unless there is exactly one primary.
# TYPE pgaf_node_replication_lag_bytes gauge
pgaf_node_replication_lag_bytes{cluster="steady",node="node2"} 256
pgaf_node_replication_lag_bytes{cluster="steady",node="node3"} 0
# HELP pgaf_node_replication_lag_seconds Replay lag of a standby as the one primary's pg_stat_replication shows it (0 when it replayed all it was sent); absent when the primary's server was not read or does not list the standby.
# TYPE pgaf_node_replication_lag_seconds gauge
pgaf_node_replication_lag_seconds{cluster="steady",node="node2"} 0.25
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"pgaf_cluster_primaries", "pgaf_monitor_up", "pgaf_node_replication_lag_bytes", "pgaf_node_replication_lag_seconds"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.observeTime); n != 1 {
		t.Errorf("pgaf_observation_duration_seconds has %d series, want 1", n)
	}

	// The next observation replaces the last: a cluster gone from it
	// leaves no series behind.
	m.observed(&observe.Observation{Time: obs.Time, Clusters: obs.Clusters[:1]}, 80*time.Millisecond)
	if n := testutil.CollectAndCount(m.monitorUp); n != 1 {
		t.Errorf("pgaf_monitor_up has %d series after the next observation, want 1", n)
	}

	m.planned(&reconcile.Result{Commit: "c1", Clusters: []reconcile.ClusterPlan{
		{Name: "main", Blocked: []reconcile.Blocked{
			{Node: "node1", Guard: reconcile.GuardVMUnobserved},
			{Node: "node2", Guard: reconcile.GuardVMUnobserved},
			{Node: "node3", Guard: reconcile.GuardTargetPrimary},
		}},
		{Name: "other"},
	}})
	want = `
# HELP pgaf_blocked_changes Changes the last plan of each cluster leaves blocked, by the guard that blocks them.
# TYPE pgaf_blocked_changes gauge
pgaf_blocked_changes{cluster="main",guard="target_is_primary"} 1
pgaf_blocked_changes{cluster="main",guard="vm_unobserved"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "pgaf_blocked_changes"); err != nil {
		t.Error(err)
	}
}

// Each change of primary is counted once, when it completes after the
// service started; the newest one's end is the last failover's time.
func TestFailoverMetrics(t *testing.T) {
	start := time.Unix(1700000000, 0)
	at := func(min int) time.Time { return start.Add(time.Duration(min) * time.Minute) }
	history := report.Failover{Kind: report.KindFailover, From: "node1", To: "node2", Start: at(-11), End: at(-10)}
	switch1 := report.Failover{Kind: report.KindSwitchover, From: "node2", To: "node1", Start: at(1), End: at(2)}
	fail2 := report.Failover{Kind: report.KindFailover, From: "node1", To: "node3", Start: at(4), End: at(5)}
	running := report.Failover{Kind: report.KindFailover, From: "node3", Start: at(6)}
	m := newMetrics(start)
	count := func(kind string) float64 { return testutil.ToFloat64(m.failovers.WithLabelValues("main", kind)) }
	last := func() float64 { return testutil.ToFloat64(m.lastFailover.WithLabelValues("main")) }

	m.changesOfPrimary(map[string][]report.Failover{"main": {history}})
	if count(report.KindFailover) != 0 || last() != float64(at(-10).Unix()) {
		t.Errorf("history before the start: counted %v, last %v; want 0 and its end", count(report.KindFailover), last())
	}
	// The same events seen again, then newer ones: each counted once.
	for range 3 {
		m.changesOfPrimary(map[string][]report.Failover{"main": {history, switch1}})
	}
	m.changesOfPrimary(map[string][]report.Failover{"main": {history, switch1, fail2, running}})
	m.changesOfPrimary(map[string][]report.Failover{"main": {switch1, fail2, running}})
	if count(report.KindSwitchover) != 1 || count(report.KindFailover) != 1 {
		t.Errorf("switchovers %v failovers %v, want 1 and 1", count(report.KindSwitchover), count(report.KindFailover))
	}
	if last() != float64(at(5).Unix()) {
		t.Errorf("last failover at %v, want the end of the newest completed one, %v", last(), at(5).Unix())
	}
	m.changesOfPrimary(map[string][]report.Failover{})
	if n := testutil.CollectAndCount(m.lastFailover); n != 0 {
		t.Errorf("%d last-failover series for no cluster, want 0", n)
	}
}

// Every metric the shipped alerting rules and dashboard read is one the
// service exports: a renamed metric would leave an alert silent forever.
func TestAlertsReadExportedMetrics(t *testing.T) {
	for _, f := range []string{"../deploy/prometheus/alerts.yaml", "../deploy/grafana/pgaf.json"} {
		t.Run(filepath.Base(f), func(t *testing.T) { readsExportedMetrics(t, f) })
	}
}

func readsExportedMetrics(t *testing.T, file string) {
	rules, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() { newMetrics(time.Time{}).reg.Describe(ch); close(ch) }()
	for d := range ch {
		if m := regexp.MustCompile(`fqName: "([a-z_]+)"`).FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	used := regexp.MustCompile(`\bpgaf_[a-z_]+`).FindAllString(string(rules), -1)
	if len(used) == 0 {
		t.Fatalf("%s reads no pgaf_ metric", file)
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} { // a histogram's series
			base = strings.TrimSuffix(base, suffix)
		}
		if !exported[name] && !exported[base] {
			t.Errorf("%s reads %s, which the service does not export", file, name)
		}
	}
}

// BenchmarkMetricsScrape is one GET /metrics at 8 clusters of three nodes
// after an observation, a plan and the page's failovers: its time, its
// size and the series it holds (the Go and process collectors included).
func BenchmarkMetricsScrape(b *testing.B) {
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}, Now: func() time.Time { return t0.Add(-time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	st := parseState(b, clustersYAML(8))
	obs := pageObservation(st, "")
	s.metrics.observed(obs, 80*time.Millisecond)
	s.metrics.planned(reconcile.Plan(st, obs))
	s.report(st, obs)
	handler := s.Handler("")
	var body string
	for b.Loop() {
		body = serve(handler, "/metrics").Body.String()
	}
	series := 0
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			series++
		}
	}
	if !strings.Contains(body, `pgaf_node_replication_lag_seconds{cluster="cluster8",node="node3"}`) ||
		!strings.Contains(body, `pgaf_failovers_total{cluster="cluster8",kind="failover"} 1`) {
		b.Fatalf("scrape lacks cluster8's lag or failover:\n%s", body)
	}
	b.ReportMetric(float64(series), "series")
	b.ReportMetric(float64(len(body)), "bytes/scrape")
}
