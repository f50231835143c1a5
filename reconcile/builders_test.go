package reconcile

import (
	"fmt"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func boolp(b bool) *bool { return &b }

// refState builds the reference layout in code, every field set as the
// defaults would set it: vm1 and vm2 run a node on 5432, vm3 runs the
// monitor on 5432 and a node on 5433.
func refState(clusters ...string) *desired.State {
	if len(clusters) == 0 {
		clusters = []string{"main"}
	}
	st := &desired.State{Commit: "0123456789abcdef0123456789abcdef01234567"}
	for i := 1; i <= 3; i++ {
		st.VMs = append(st.VMs, desired.VM{Name: fmt.Sprintf("vm%d", i), Address: fmt.Sprintf("10.0.0.1%d", i),
			SSH: desired.SSH{User: "ops", Port: 22}, DockerNetwork: "host"})
	}
	for ci, name := range clusters {
		base := 5432 + 10*ci
		st.Clusters = append(st.Clusters, desired.Cluster{
			Name: name, Formation: "default", Image: "pgaf/postgres:15-2.0", Database: "postgres", User: "postgres",
			Monitor: desired.Monitor{VM: "vm3", Port: base},
			Nodes: []desired.Node{
				{Name: "node1", VM: "vm1", Port: base, CandidatePriority: 50, ReplicationQuorum: boolp(true)},
				{Name: "node2", VM: "vm2", Port: base, CandidatePriority: 50, ReplicationQuorum: boolp(true)},
				{Name: "node3", VM: "vm3", Port: base + 1, CandidatePriority: 50, ReplicationQuorum: boolp(true)},
			},
			NumberSyncStandbys:   1,
			Auth:                 "trust",
			SSL:                  "off",
			ClientNetworks:       []string{"10.0.0.0/24"},
			MonitorSettings:      map[string]string{},
			PostgreSQLParameters: map[string]string{},
			Diverged:             desired.DivergedPolicy{Policy: "manual", GracePeriod: desired.Duration{Duration: 5 * time.Minute}},
			RemovedNodeData:      "keep",
		})
	}
	return st
}

// emptyObs observes every VM of st, reached, with nothing on it.
func emptyObs(st *desired.State) *observe.Observation {
	o := &observe.Observation{Version: observe.SchemaVersion, Time: t0}
	for _, vm := range st.VMs {
		o.VMs = append(o.VMs, observe.VM{Name: vm.Name, Reached: true, Containers: []observe.Container{}, Volumes: []observe.Volume{}})
	}
	return o
}

func vmOf(o *observe.Observation, name string) *observe.VM {
	for i := range o.VMs {
		if o.VMs[i].Name == name {
			return &o.VMs[i]
		}
	}
	return nil
}

func clusterOf(o *observe.Observation, name string) *observe.Cluster {
	if c := findObsCluster(o, name); c != nil {
		return c
	}
	o.Clusters = append(o.Clusters, observe.Cluster{Name: name, Monitor: observe.Monitor{Nodes: []observe.Node{}}})
	return &o.Clusters[len(o.Clusters)-1]
}

// putContainer records spec as a running container with its volume.
func putContainer(o *observe.Observation, spec ContainerSpec) {
	vm := vmOf(o, spec.VM)
	ct := observe.Container{Name: spec.Name, Cluster: spec.Labels[observe.LabelCluster], Node: spec.Labels[observe.LabelNode],
		Role: spec.Labels[observe.LabelRole], Image: spec.Image, State: "running", StartedAt: o.Time, SpecHash: spec.Hash(),
		Rebuild: spec.Labels[observe.LabelRebuild], Command: spec.Command}
	replaced := false
	for i := range vm.Containers {
		if vm.Containers[i].Name == spec.Name {
			vm.Containers[i], replaced = ct, true
		}
	}
	if !replaced {
		vm.Containers = append(vm.Containers, ct)
	}
	for _, v := range vm.Volumes {
		if v.Name == spec.Volume {
			return
		}
	}
	vm.Volumes = append(vm.Volumes, observe.Volume{Name: spec.Volume, Cluster: ct.Cluster, Node: ct.Node, Rebuild: ct.Rebuild, SizeBytes: -1})
}

// converged builds the observation of st fully converged: node1 primary,
// the others secondaries, every setting as desired.
func converged(st *desired.State) *observe.Observation {
	o := emptyObs(st)
	for ci := range st.Clusters {
		c := &st.Clusters[ci]
		putContainer(o, MonitorSpec(st, c))
		oc := clusterOf(o, c.Name)
		oc.Monitor.Reached = true
		oc.Monitor.Version = "2.0"
		oc.Monitor.Formation = observe.Formation{Name: c.Formation, Kind: "pgsql", NumberSyncStandbys: c.NumberSyncStandbys}
		oc.Monitor.Settings = map[string]string{}
		for k, v := range c.MonitorSettings {
			oc.Monitor.Settings[k] = v
		}
		for i := range c.Nodes {
			n := &c.Nodes[i]
			spec := NodeSpec(st, c, n)
			putContainer(o, spec)
			params := map[string]string{}
			for k, v := range c.PostgreSQLParameters {
				params[k] = v
			}
			containerOf(o, spec.VM, spec.Name).Postgres = &observe.Postgres{StartTime: o.Time.Add(-time.Hour), Parameters: params}
			state := "secondary"
			if i == 0 {
				state = "primary"
			}
			oc.Monitor.Nodes = append(oc.Monitor.Nodes, observe.Node{ID: int64(i + 1), Name: n.Name, Host: findVM(st, n.VM).Address, Port: n.Port,
				ReportedState: state, AssignedState: state, Timeline: 1, LSN: "0/3000148", Health: observe.HealthGood,
				CandidatePriority: n.CandidatePriority, ReplicationQuorum: n.ReplicationQuorum == nil || *n.ReplicationQuorum,
				ReportTime: o.Time, StateChangeTime: o.Time.Add(-time.Hour), PGIsRunning: true})
		}
	}
	return o
}

func monNode(o *observe.Observation, cluster, name string) *observe.Node {
	c := findObsCluster(o, cluster)
	for i := range c.Monitor.Nodes {
		if c.Monitor.Nodes[i].Name == name {
			return &c.Monitor.Nodes[i]
		}
	}
	return nil
}

func containerOf(o *observe.Observation, vmName, name string) *observe.Container {
	vm := vmOf(o, vmName)
	for i := range vm.Containers {
		if vm.Containers[i].Name == name {
			return &vm.Containers[i]
		}
	}
	return nil
}
