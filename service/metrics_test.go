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
)

// The cluster metrics the alerting rules of deploy/prometheus read.
func TestClusterMetrics(t *testing.T) {
	node := func(name, reported, assigned, lsn string) observe.Node {
		return observe.Node{Name: name, ReportedState: reported, AssignedState: assigned, LSN: lsn, Health: observe.HealthGood}
	}
	obs := &observe.Observation{Time: time.Unix(1700000000, 0), Clusters: []observe.Cluster{
		{Name: "steady", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node("node1", "primary", "primary", "0/3000100"),
			node("node2", "secondary", "secondary", "0/3000000"),
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
	m := newMetrics()
	m.observed(obs)
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
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want),
		"pgaf_cluster_primaries", "pgaf_monitor_up", "pgaf_node_replication_lag_bytes"); err != nil {
		t.Error(err)
	}

	// The next observation replaces the last: a cluster gone from it
	// leaves no series behind.
	m.observed(&observe.Observation{Time: obs.Time, Clusters: obs.Clusters[:1]})
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
	go func() { newMetrics().reg.Describe(ch); close(ch) }()
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
