//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaf-gitops/reconciler/report"
)

// Two clusters in one desired state, on the same VMs (their own ports,
// volumes and monitors), share one reconciler: both come up from empty
// in one apply, and a fault in one leaves the other converging.

// clusterPorts are the two clusters' ports (monitor and nodes): clear of
// the other tests' 5432-5433 and 6432-6433.
var clusterPorts = map[string]int{"north": 7432, "south": 8432}

// clustersYAML is the lab's VMs and the two clusters, node2 of each at
// priority.
func clustersYAML(t *testing.T, l *Lab, priority int) string {
	t.Helper()
	b, err := os.ReadFile(l.Desired)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "\nclusters:")
	if i < 0 {
		t.Fatalf("%s has no clusters: section", l.Desired)
	}
	var y strings.Builder
	y.WriteString(string(b[:i+1]) + "clusters:\n")
	for _, name := range []string{"north", "south"} {
		fmt.Fprintf(&y, `  - name: %s
    formation: default
    image: %s
    monitor: {vm: vm3, port: %d}
    nodes:
      - {name: node1, vm: vm1, port: %[3]d}
      - {name: node2, vm: vm2, port: %[3]d, candidate_priority: %d}
    auth: trust
    ssl: "off"
    client_networks: ["172.30.77.0/24"]
`, name, l.Image, clusterPorts[name], priority)
	}
	return y.String()
}

func clusterMonitorURI(l *Lab, cluster string) string {
	vm, _ := l.VM("vm3")
	return fmt.Sprintf("postgres://autoctl_node@%s:%d/pg_auto_failover?sslmode=disable&connect_timeout=3", vm.Address, clusterPorts[cluster])
}

// statusOf runs `status --output json`.
func statusOf(t *testing.T, ctx context.Context, r *rec) report.Report {
	t.Helper()
	out, errOut, _ := r.run(t, ctx, "status", "--output", "json")
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --output json: %v\n%s\n%s", err, out, tail(errOut, 20))
	}
	return rep
}

// priorityOf reads node2's candidate priority from a cluster's monitor.
func priorityOf(t *testing.T, ctx context.Context, l *Lab, cluster string) int {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, clusterMonitorURI(l, cluster))
	if err != nil {
		t.Fatalf("%s: %v", cluster, err)
	}
	defer conn.Close(ctx)
	var prio int
	if err := conn.QueryRow(cctx, `SELECT candidatepriority FROM pgautofailover.node WHERE nodename = 'node2'`).Scan(&prio); err != nil {
		t.Fatalf("%s: %v", cluster, err)
	}
	return prio
}

func TestClustersOnLab(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for name := range clusterPorts {
		freshCluster(t, ctx, l, name)
	}
	r := newRec(t, l)
	write := func(priority int) {
		if err := os.WriteFile(r.desired, []byte(clustersYAML(t, l, priority)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(50)

	start := time.Now()
	out := r.apply(t, ctx)
	t.Logf("both clusters from empty VMs in %s", time.Since(start).Round(100*time.Millisecond))
	for name := range clusterPorts {
		if !strings.Contains(out, name+": Converged after") {
			t.Errorf("apply output lacks %s's convergence", name)
		}
		nodes, err := monitorNodes(ctx, clusterMonitorURI(l, name))
		if _, ok := stable(nodes, 2); err != nil || !ok {
			t.Errorf("%s not a primary and a secondary: %s %v", name, summary(nodes), err)
		}
	}
	rep := statusOf(t, ctx, r)
	if len(rep.Clusters) != 2 || rep.Clusters[0].Name != "north" || rep.Clusters[0].Primaries != 1 || rep.Clusters[1].Primaries != 1 {
		t.Fatalf("status: %+v, want north and south with one primary each", rep.Clusters)
	}

	// north's monitor hangs (paused: its container can be neither started
	// nor reached), then a commit changes node2 in both clusters.
	if _, err := l.SSH(ctx, "vm3", "docker pause north-monitor"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = l.SSH(cleanupCtx(t), "vm3", "docker unpause north-monitor") })
	write(60)
	start = time.Now()
	out, errOut, code := r.run(t, ctx, "apply")
	t.Logf("apply with north's monitor paused: exit %d after %s:\n%s", code, time.Since(start).Round(100*time.Millisecond), out)
	if code == 0 || !strings.Contains(out+errOut, "north") {
		t.Errorf("apply exited %d with north's monitor paused, want a failure naming north:\n%s", code, tail(errOut, 20))
	}
	if !strings.Contains(out, "south: Converged after") {
		t.Errorf("south did not converge beside north's fault:\n%s", out)
	}
	if p := priorityOf(t, ctx, l, "south"); p != 60 {
		t.Errorf("south's node2 priority %d, want 60", p)
	}
	rep = statusOf(t, ctx, r)
	if len(rep.Clusters) != 2 || rep.Clusters[0].Primaries != -1 || rep.Clusters[1].Primaries != 1 {
		t.Errorf("status with north's monitor paused: %+v, want north not reached and south with its primary", rep.Clusters)
	}

	if _, err := l.SSH(ctx, "vm3", "docker unpause north-monitor"); err != nil {
		t.Fatal(err)
	}
	r.apply(t, ctx)
	if p := priorityOf(t, ctx, l, "north"); p != 60 {
		t.Errorf("north's node2 priority %d after its monitor is back, want 60", p)
	}
}
