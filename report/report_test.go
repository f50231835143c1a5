package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// sizeRunner answers the du of observe.VolumeSizeCommand per volume.
type sizeRunner struct {
	mu    sync.Mutex
	calls []string
}

func (s *sizeRunner) Run(_ context.Context, vm string, argv []string) ([]byte, error) {
	s.mu.Lock()
	s.calls = append(s.calls, vm+" "+strings.Join(argv, " "))
	s.mu.Unlock()
	for _, a := range argv {
		switch a {
		case "main-node4-data:/v:ro":
			return []byte("74310785\t/v\n"), nil
		case "main-node5-data:/v:ro":
			return nil, errors.New("ssh: connection refused")
		}
	}
	return nil, errors.New("unexpected command")
}

func TestStatusMeasuresOrphanedVolumes(t *testing.T) {
	rep := Report{Clusters: []Cluster{{Name: "main", Orphans: []Orphan{
		{VM: "vm4", Volume: "main-node4-data", Node: "node4", SizeBytes: -1, image: "pgaf/postgres:15-2.0"},
		{VM: "vm2", Volume: "main-node5-data", Node: "node5", SizeBytes: -1, image: "pgaf/postgres:15-2.0"},
	}}}}
	r := &sizeRunner{}
	MeasureOrphans(t.Context(), r, &rep, time.Second)
	if len(r.calls) != 2 {
		t.Fatalf("%d measures, want 2: %v", len(r.calls), r.calls)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"orphaned volume main-node4-data on vm4 (node node4, 74310785 bytes, 70.9 MiB)",
		"orphaned volume main-node5-data on vm2 (node node5, size unknown: measure volume main-node5-data on vm2: ssh: connection refused)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	var _ observe.Runner = r
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 74310785: "70.9 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

const twoClusters = `vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
  - {name: vm3, address: 10.0.0.13, ssh: {user: ops}}
clusters:
  - name: main
    image: img:1
    monitor: {vm: vm3, port: 6432}
    nodes:
      - {name: node1, vm: vm1}
      - {name: node2, vm: vm2}
      - {name: node3, vm: vm3, replication_quorum: false, candidate_priority: 0}
  - name: split
    image: img:1
    monitor: {vm: vm3, port: 6433}
    nodes:
      - {name: node1, vm: vm1, port: 5433}
      - {name: node2, vm: vm2, port: 5433}
`

func TestBuildLagSyncAndPrimaries(t *testing.T) {
	st, err := desired.Parse(map[string][]byte{"desired.yaml": []byte(twoClusters)})
	if err != nil {
		t.Fatal(err)
	}
	node := func(id int64, name, state, lsn string, quorum bool, prio int) observe.Node {
		return observe.Node{ID: id, Name: name, ReportedState: state, AssignedState: state, Timeline: 1, LSN: lsn,
			Health: observe.HealthGood, ReplicationQuorum: quorum, CandidatePriority: prio, StateChangeTime: t0.Add(-time.Minute)}
	}
	lag := 0.0042
	// The primary's server lists node2 (id 2) with a replay lag, node3 not
	// at all; split's node1 (a second writer) lists node2 too.
	primary := func(cluster string, standbys ...observe.Standby) observe.Container {
		return observe.Container{Cluster: cluster, Node: "node1", State: "running", Postgres: &observe.Postgres{Standbys: standbys}}
	}
	obs := &observe.Observation{Time: t0, VMs: []observe.VM{{Name: "vm1", Reached: true, Containers: []observe.Container{
		primary("main", observe.Standby{Name: observe.StandbyName(2), State: "streaming", ReplayLagSeconds: &lag}),
		primary("split", observe.Standby{Name: observe.StandbyName(2), State: "streaming", ReplayLagSeconds: &lag}),
	}}}, Clusters: []observe.Cluster{
		{Name: "main", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node(1, "node1", "primary", "0/3000100", true, 50),
			node(2, "node2", "secondary", "0/3000000", true, 50),
			node(3, "node3", "secondary", "not-an-lsn", false, 0),
		}, Events: powerCut()}},
		{Name: "split", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{
			node(1, "node1", "primary", "0/10", true, 50),
			node(2, "node2", "wait_primary", "0/20", true, 50),
		}}},
	}}
	r := Build(st, obs)
	type row struct {
		Node, Sync     string
		Lag, ReplayLag string
		Prio           int
	}
	got := map[string][]row{}
	for _, c := range r.Clusters {
		for _, x := range c.Rows {
			got[c.Name] = append(got[c.Name], row{x.Node, x.Sync, x.Lag(), x.ReplayLag(), x.CandidatePriority})
		}
	}
	want := map[string][]row{
		"main": {{"node1", "-", "-", "-", 50}, {"node2", "sync", "256 B", "4 ms", 50}, {"node3", "async", "-", "-", 0}},
		// Two writers: no lag against either, neither shown as a standby.
		"split": {{"node1", "-", "-", "-", 50}, {"node2", "-", "-", "-", 50}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if p := []int{r.Clusters[0].Primaries, r.Clusters[1].Primaries}; p[0] != 1 || p[1] != 2 {
		t.Errorf("primaries %v, want [1 2]", p)
	}
	if f := r.Clusters[0].Failovers; len(f) != 1 || f[0].To != "node2" {
		t.Errorf("failovers %v, want node1 -> node2", f)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"TL:LSN        LAG    REPLAY LAG  SYNC   PRIO  HEALTH",
		"1:0/3000000   256 B  4 ms        sync   50    good",
		"failover node1 -> node2 at 2026-11-26 12:00:00Z: writes unavailable 31.9s",
		"MORE THAN ONE PRIMARY: 2 nodes are writable",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestBuildMonitorNotReached(t *testing.T) {
	st, err := desired.Parse(map[string][]byte{"desired.yaml": []byte(twoClusters)})
	if err != nil {
		t.Fatal(err)
	}
	r := Build(st, &observe.Observation{Time: t0})
	for _, c := range r.Clusters {
		if c.Primaries != -1 || c.Rows[0].Sync != "-" || c.Rows[0].LagBytes != nil || len(c.Failovers) != 0 {
			t.Errorf("%s: primaries %d, row %+v, failovers %v", c.Name, c.Primaries, c.Rows[0], c.Failovers)
		}
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "PRIMARY") {
		t.Errorf("no monitor reached, yet a primary count is printed:\n%s", b.String())
	}
}

// status prints the newest ShownEvents events; the report keeps them all
// (the page's failover history reads them).
func TestStatusShowsTheNewestEvents(t *testing.T) {
	c := Cluster{Name: "main"}
	for i := range ShownEvents + 5 {
		c.Events = append(c.Events, observe.Event{ID: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Second), NodeName: "node1",
			Description: fmt.Sprintf("event number %d.", i+1)})
	}
	var b strings.Builder
	if err := (Report{Clusters: []Cluster{c}}).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= ShownEvents+5; i++ {
		if shown, want := strings.Contains(b.String(), fmt.Sprintf("event number %d.", i)), i > 5; shown != want {
			t.Errorf("event %d shown %v, want %v:\n%s", i, shown, want, b.String())
		}
	}
}
