package reconcile

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/plans (inputs from the case table, then the expected plans)")

// goldenCase builds one fixture from the reference layout in
// examples/cluster.yaml: a commit's change to the desired state, and the
// observation it is planned against.
type goldenCase struct {
	change func(st *desired.State)
	obs    func(st *desired.State) *observe.Observation
	// example names the file of examples/observations/ this observation
	// is also published as.
	example string
}

var goldenCases = map[string]goldenCase{
	"empty_vms": {obs: emptyObs, example: "empty-vms.json"},
	"half_built": {obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		dropNode(o, "main", "node3")
		n2 := monNode(o, "main", "node2")
		n2.ReportedState, n2.AssignedState = "catchingup", "secondary"
		n1 := monNode(o, "main", "node1")
		n1.ReportedState, n1.AssignedState = "wait_primary", "wait_primary"
		o.Clusters[0].Monitor.Formation.NumberSyncStandbys = 0
		return o
	}, example: "half-built.json"},
	"converged": {obs: converged, example: "converged.json"},
	"vm_unreachable": {obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		vm := vmOf(o, "vm2")
		*vm = observe.VM{Name: "vm2", Reached: false, Error: "ssh: dial tcp 10.0.0.12:22: connect: no route to host", Containers: []observe.Container{}, Volumes: []observe.Volume{}}
		n := monNode(o, "main", "node2")
		n.Health, n.PGIsRunning, n.AssignedState = observe.HealthBad, false, "catchingup"
		return o
	}, example: "vm-unreachable.json"},
	"monitor_down": {obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		vm := vmOf(o, "vm3")
		*vm = observe.VM{Name: "vm3", Reached: false, Error: "ssh: dial tcp 10.0.0.13:22: i/o timeout", Containers: []observe.Container{}, Volumes: []observe.Volume{}}
		o.Clusters[0].Monitor = observe.Monitor{Reached: false, Error: "dial tcp 10.0.0.13:5432: i/o timeout", Nodes: []observe.Node{}}
		return o
	}, example: "monitor-down.json"},
	"node_added": {change: func(st *desired.State) {
		st.Clusters[0].Nodes = append(st.Clusters[0].Nodes, desired.Node{Name: "node4", VM: "vm2", Port: 5433, CandidatePriority: 50, ReplicationQuorum: boolp(true)})
	}, obs: converged},
	"node_removed": {change: func(st *desired.State) {
		st.Clusters[0].Nodes = st.Clusters[0].Nodes[:2]
		st.Clusters[0].NumberSyncStandbys = 0
	}, obs: func(st *desired.State) *observe.Observation {
		full := st.Clusters[0].Nodes
		st.Clusters[0].Nodes = append(full[:2:2], desired.Node{Name: "node3", VM: "vm3", Port: 5433, CandidatePriority: 50, ReplicationQuorum: boolp(true)})
		o := converged(st)
		st.Clusters[0].Nodes = full[:2]
		return o
	}},
	// node4's VM was removed from the desired state with it (gone for
	// good): the monitor drops it alone and what vm4 holds is reported.
	"node_removed_with_its_vm": {obs: func(st *desired.State) *observe.Observation {
		full, vms := st.Clusters[0].Nodes, st.VMs
		st.VMs = append(vms[:3:3], desired.VM{Name: "vm4", Address: "10.0.0.14", SSH: desired.SSH{User: "ops", Port: 22}, DockerNetwork: "host"})
		st.Clusters[0].Nodes = append(full[:3:3], desired.Node{Name: "node4", VM: "vm4", Port: 5432, CandidatePriority: 50, ReplicationQuorum: boolp(true)})
		o := converged(st)
		st.Clusters[0].Nodes, st.VMs = full, vms
		o.VMs = slices.DeleteFunc(o.VMs, func(vm observe.VM) bool { return vm.Name == "vm4" })
		n := monNode(o, "main", "node4")
		n.Health, n.PGIsRunning, n.ReportedState, n.AssignedState = observe.HealthBad, false, "secondary", "catchingup"
		return o
	}},
	"primary_removed": {change: func(st *desired.State) {
		st.Clusters[0].Nodes = st.Clusters[0].Nodes[1:]
		st.Clusters[0].NumberSyncStandbys = 0
	}, obs: func(st *desired.State) *observe.Observation {
		c := &st.Clusters[0]
		kept := c.Nodes
		c.Nodes = append([]desired.Node{{Name: "node1", VM: "vm1", Port: 5432, CandidatePriority: 50, ReplicationQuorum: boolp(true)}}, kept...)
		o := converged(st)
		c.Nodes = kept
		return o
	}},
	"settings_changed": {change: func(st *desired.State) {
		c := &st.Clusters[0]
		c.Nodes[2].CandidatePriority = 0
		c.Nodes[2].ReplicationQuorum = boolp(false)
		c.NumberSyncStandbys = 0
		c.MonitorSettings["health_check_period"] = "2000"
	}, obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		o.Clusters[0].Monitor.Settings["health_check_period"] = "5000"
		o.Clusters[0].Monitor.Formation.NumberSyncStandbys = 1
		n := monNode(o, "main", "node3")
		n.CandidatePriority, n.ReplicationQuorum = 50, true
		return o
	}},
	"rebuild_token_changed": {change: func(st *desired.State) {
		st.Clusters[0].Nodes[1].Rebuild = "2026-11-26-disk-replaced"
	}, obs: func(st *desired.State) *observe.Observation {
		tok := st.Clusters[0].Nodes[1].Rebuild
		st.Clusters[0].Nodes[1].Rebuild = ""
		o := converged(st)
		st.Clusters[0].Nodes[1].Rebuild = tok
		return o
	}},
	"image_changed": {change: func(st *desired.State) {
		c := &st.Clusters[0]
		c.Image, c.Monitor.Image = "pgaf/postgres:15-2.0-b", "pgaf/postgres:15-2.0-b"
	}, obs: func(st *desired.State) *observe.Observation {
		c := &st.Clusters[0]
		c.Image, c.Monitor.Image = "pgaf/postgres:15-2.0", "pgaf/postgres:15-2.0"
		o := converged(st)
		c.Image, c.Monitor.Image = "pgaf/postgres:15-2.0-b", "pgaf/postgres:15-2.0-b"
		return o
	}},
	"postgresql_reload": {change: func(st *desired.State) {
		st.Clusters[0].PostgreSQLParameters["work_mem"] = "8MB"
	}, obs: converged},
	"postgresql_restart": {change: func(st *desired.State) {
		st.Clusters[0].PostgreSQLParameters["max_connections"] = "300"
		st.Clusters[0].PostgreSQLParameters["work_mem"] = "8MB"
	}, obs: func(st *desired.State) *observe.Observation {
		c := &st.Clusters[0]
		c.PostgreSQLParameters["max_connections"] = "200"
		delete(c.PostgreSQLParameters, "work_mem")
		o := converged(st)
		c.PostgreSQLParameters["max_connections"] = "300"
		c.PostgreSQLParameters["work_mem"] = "8MB"
		return o
	}},
	// max_connections was written on every node; node2 restarted already
	// and is a secondary again: node3 is next, the primary last.
	"postgresql_restart_pending": {change: func(st *desired.State) {
		st.Clusters[0].PostgreSQLParameters["max_connections"] = "300"
	}, obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		for _, vm := range []string{"vm1", "vm3"} {
			for i := range vmOf(o, vm).Containers {
				if ct := &vmOf(o, vm).Containers[i]; ct.Postgres != nil {
					ct.Postgres.PendingRestart = []string{"max_connections"}
				}
			}
		}
		return o
	}},
	// A rolling upgrade stopped after node2 entered maintenance: the
	// monitor runs the new image, node2's container is still the old one.
	"rolling_upgrade_resumes_in_maintenance": {change: setImageB, obs: func(st *desired.State) *observe.Observation {
		o := oldImageObs(st)
		ct := containerOf(o, "vm3", "main-monitor")
		ct.Image, ct.SpecHash = "pgaf/postgres:15-2.0-b", MonitorSpec(st, &st.Clusters[0]).Hash()
		n := monNode(o, "main", "node2")
		n.ReportedState, n.AssignedState, n.StateChangeTime = "maintenance", "maintenance", o.Time.Add(-10*time.Second)
		return o
	}},
	// Every secondary runs the new image: the primary is last, after a
	// switchover.
	"rolling_upgrade_primary_last": {change: setImageB, obs: func(st *desired.State) *observe.Observation {
		o := oldImageObs(st)
		for _, name := range []string{"monitor", "node2", "node3"} {
			for i := range o.VMs {
				for j := range o.VMs[i].Containers {
					if ct := &o.VMs[i].Containers[j]; ct.Node == name {
						var spec ContainerSpec
						if name == "monitor" {
							spec = MonitorSpec(st, &st.Clusters[0])
						} else {
							for k := range st.Clusters[0].Nodes {
								if n := &st.Clusters[0].Nodes[k]; n.Name == name {
									spec = NodeSpec(st, &st.Clusters[0], n)
								}
							}
						}
						ct.Image, ct.SpecHash = spec.Image, spec.Hash()
					}
				}
			}
		}
		return o
	}},
	// An operator put node3 in maintenance by hand (its container is
	// older than the maintenance): the reconciler leaves it there.
	"operator_maintenance": {obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		n := monNode(o, "main", "node3")
		n.ReportedState, n.AssignedState, n.StateChangeTime = "maintenance", "maintenance", o.Time.Add(time.Minute)
		o.Time = o.Time.Add(2 * time.Minute)
		return o
	}},
	// A container and a volume made by hand with the cluster's labels for
	// nodes that are not desired: reported, left alone.
	"stray_objects": {obs: func(st *desired.State) *observe.Observation {
		o := converged(st)
		vm := vmOf(o, "vm2")
		labels := func(node string) map[string]string {
			return map[string]string{observe.LabelManaged: "true", observe.LabelCluster: "main", observe.LabelNode: node, observe.LabelVM: "vm2"}
		}
		vm.Containers = append(vm.Containers, observe.Container{Name: "main-scratch", Cluster: "main", Node: "scratch", Role: observe.RoleNode,
			Image: "pgaf/postgres:15-2.0", State: "running", StartedAt: o.Time, Labels: labels("scratch")})
		vm.Volumes = append(vm.Volumes, observe.Volume{Name: "main-node9-data", Cluster: "main", Node: "node9", SizeBytes: 41943040, Labels: labels("node9")})
		return o
	}},
	"diverged_manual": {obs: divergedObs},
	"diverged_auto": {change: func(st *desired.State) {
		st.Clusters[0].Diverged.Policy = "auto"
	}, obs: divergedObs},
}

func setImageB(st *desired.State) {
	c := &st.Clusters[0]
	c.Image, c.Monitor.Image = "pgaf/postgres:15-2.0-b", "pgaf/postgres:15-2.0-b"
}

// oldImageObs is st converged on the first image.
func oldImageObs(st *desired.State) *observe.Observation {
	c := &st.Clusters[0]
	img, mimg := c.Image, c.Monitor.Image
	c.Image, c.Monitor.Image = "pgaf/postgres:15-2.0", "pgaf/postgres:15-2.0"
	o := converged(st)
	c.Image, c.Monitor.Image = img, mimg
	return o
}

// divergedObs: node1, the old primary, came back after a failover and
// cannot follow node2's timeline.
func divergedObs(st *desired.State) *observe.Observation {
	o := converged(st)
	n1, n2 := monNode(o, "main", "node1"), monNode(o, "main", "node2")
	n2.ReportedState, n2.AssignedState, n2.Timeline, n2.LSN = "primary", "primary", 2, "0/5000060"
	n1.ReportedState, n1.AssignedState, n1.Timeline, n1.LSN = "catchingup", "secondary", 1, "0/3000148"
	n1.StateChangeTime = o.Time.Add(-10 * time.Minute)
	vmOf(o, "vm1").Containers[0].StartedAt = o.Time.Add(-10 * time.Minute) // stuck since it came back
	vmOf(o, "vm1").Containers[0].LogEvidence = []string{"FATAL:  requested timeline 2 is not a child of this server's history"}
	return o
}

func dropNode(o *observe.Observation, cluster, name string) {
	c := findObsCluster(o, cluster)
	var kept []observe.Node
	for _, n := range c.Monitor.Nodes {
		if n.Name != name {
			kept = append(kept, n)
		}
	}
	c.Monitor.Nodes = kept
	for i := range o.VMs {
		vm := &o.VMs[i]
		var cs []observe.Container
		for _, ct := range vm.Containers {
			if ct.Node != name {
				cs = append(cs, ct)
			}
		}
		var vs []observe.Volume
		for _, v := range vm.Volumes {
			if v.Node != name {
				vs = append(vs, v)
			}
		}
		vm.Containers, vm.Volumes = cs, vs
	}
}

func loadExample(t *testing.T) *desired.State {
	t.Helper()
	st, err := desired.Load("../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st.Commit = "0123456789abcdef0123456789abcdef01234567"
	return st
}

// TestGolden plans every fixture under testdata/plans and compares the
// text, markdown and JSON renderings. -update rewrites the fixtures.
func TestGolden(t *testing.T) {
	names := make([]string, 0, len(goldenCases))
	for n := range goldenCases {
		names = append(names, n)
	}
	sort.Strings(names)
	if *update {
		for _, name := range names {
			writeGoldenInputs(t, name, goldenCases[name])
		}
	}
	dirs, err := filepath.Glob("testdata/plans/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < len(goldenCases) {
		t.Fatalf("%d fixture directories for %d cases: run go test ./reconcile -run TestGolden -update", len(dirs), len(goldenCases))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			st, obs := readGoldenInputs(t, dir)
			p := Plan(st, obs)
			var text, md, js bytes.Buffer
			if err := p.WriteText(&text, Style{}); err != nil {
				t.Fatal(err)
			}
			if err := p.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			js.WriteString(planJSON(t, p))
			checkInvariants(t, obs, p)
			checkDeterministic(t, st, obs)
			for file, got := range map[string][]byte{"plan.txt": text.Bytes(), "plan.md": md.Bytes(), "plan.json": js.Bytes()} {
				path := filepath.Join(dir, file)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s differs (-want +got):\n%s", path, diff)
				}
			}
		})
	}
}

func writeGoldenInputs(t *testing.T, name string, gc goldenCase) {
	t.Helper()
	dir := filepath.Join("testdata/plans", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st := loadExample(t)
	if gc.change != nil {
		gc.change(st)
	}
	obs := gc.obs(st)
	var d, o bytes.Buffer
	if err := desired.Render(&d, st); err != nil {
		t.Fatal(err)
	}
	if err := observe.Write(&o, obs); err != nil {
		t.Fatal(err)
	}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "desired.yaml"), d.Bytes())
	write(filepath.Join(dir, "observation.json"), o.Bytes())
	if gc.example != "" {
		write(filepath.Join("../examples/observations", gc.example), o.Bytes())
	}
}

func readGoldenInputs(t *testing.T, dir string) (*desired.State, *observe.Observation) {
	t.Helper()
	st, err := desired.Load(filepath.Join(dir, "desired.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st.Commit = "0123456789abcdef0123456789abcdef01234567"
	f, err := os.Open(filepath.Join(dir, "observation.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obs, err := observe.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return st, obs
}
