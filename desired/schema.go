package desired

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// The schema of a desired-state file: which keys each mapping allows and
// where their values go. Lists from several files are concatenated, so
// paths use the index in the whole State.

func (l *loader) root(n *yaml.Node) {
	if isNull(n) {
		return // an empty document contributes nothing
	}
	if n.Kind != yaml.MappingNode && n.Kind != yaml.AliasNode {
		l.errorf(l.at(n), "the top level must be a mapping with the keys vms and clusters, got %s", describe(n))
		return
	}
	l.mapping(n, "the top level", []field{
		{"vms", func(v *yaml.Node) {
			l.sequence(v, "vms", "vms@"+l.file, func(_ int, item *yaml.Node) { l.vm(item) })
		}},
		{"clusters", func(v *yaml.Node) {
			l.sequence(v, "clusters", "clusters@"+l.file, func(_ int, item *yaml.Node) { l.cluster(item) })
		}},
	})
}

func (l *loader) vm(n *yaml.Node) {
	i := len(l.st.VMs)
	l.st.VMs = append(l.st.VMs, VM{})
	vm := &l.st.VMs[i]
	p := fmt.Sprintf("vms/%d", i)
	l.record(p, n)
	l.bad[p] = !l.mapping(n, "vm", []field{
		{"name", func(v *yaml.Node) { l.str(v, "name", p+"/name", &vm.Name) }},
		{"address", func(v *yaml.Node) { l.str(v, "address", p+"/address", &vm.Address) }},
		{"ssh", func(v *yaml.Node) {
			l.record(p+"/ssh", v)
			l.bad[p+"/ssh"] = !l.mapping(v, "ssh", []field{
				{"user", func(v *yaml.Node) { l.str(v, "user", p+"/ssh/user", &vm.SSH.User) }},
				{"port", func(v *yaml.Node) { l.integer(v, "port", p+"/ssh/port", &vm.SSH.Port, 1, 65535) }},
				{"host_key_fingerprint", func(v *yaml.Node) {
					l.strOpt(v, "host_key_fingerprint", p+"/ssh/host_key_fingerprint", &vm.SSH.HostKeyFingerprint)
				}},
			})
		}},
		{"docker_network", func(v *yaml.Node) { l.str(v, "docker_network", p+"/docker_network", &vm.DockerNetwork) }},
	})
}

func (l *loader) cluster(n *yaml.Node) {
	i := len(l.st.Clusters)
	l.st.Clusters = append(l.st.Clusters, Cluster{})
	c := &l.st.Clusters[i]
	p := fmt.Sprintf("clusters/%d", i)
	l.record(p, n)
	l.bad[p] = !l.mapping(n, "cluster", []field{
		{"name", func(v *yaml.Node) { l.str(v, "name", p+"/name", &c.Name) }},
		{"formation", func(v *yaml.Node) { l.str(v, "formation", p+"/formation", &c.Formation) }},
		{"image", func(v *yaml.Node) { l.str(v, "image", p+"/image", &c.Image) }},
		{"database", func(v *yaml.Node) { l.str(v, "database", p+"/database", &c.Database) }},
		{"user", func(v *yaml.Node) { l.str(v, "user", p+"/user", &c.User) }},
		{"monitor", func(v *yaml.Node) {
			l.record(p+"/monitor", v)
			l.bad[p+"/monitor"] = !l.mapping(v, "monitor", []field{
				{"vm", func(v *yaml.Node) { l.str(v, "vm", p+"/monitor/vm", &c.Monitor.VM) }},
				{"port", func(v *yaml.Node) { l.integer(v, "port", p+"/monitor/port", &c.Monitor.Port, 1, 65535) }},
				{"image", func(v *yaml.Node) { l.str(v, "image", p+"/monitor/image", &c.Monitor.Image) }},
				{"recreate", func(v *yaml.Node) { l.text(v, "recreate", p+"/monitor/recreate", &c.Monitor.Recreate) }},
			})
		}},
		{"nodes", func(v *yaml.Node) {
			l.sequence(v, "nodes", p+"/nodes", func(j int, item *yaml.Node) { l.node(c, fmt.Sprintf("%s/nodes/%d", p, j), item) })
		}},
		{"number_sync_standbys", func(v *yaml.Node) {
			l.integer(v, "number_sync_standbys", p+"/number_sync_standbys", &c.NumberSyncStandbys, 0, 1<<31-1)
		}},
		{"auth", func(v *yaml.Node) { l.str(v, "auth", p+"/auth", &c.Auth) }},
		{"ssl", func(v *yaml.Node) { l.str(v, "ssl", p+"/ssl", &c.SSL) }},
		{"client_networks", func(v *yaml.Node) {
			l.strList(v, "client_networks", p+"/client_networks", &c.ClientNetworks)
		}},
		{"monitor_settings", func(v *yaml.Node) {
			l.strMap(v, "monitor_settings", p+"/monitor_settings", &c.MonitorSettings)
		}},
		{"keeper_settings", func(v *yaml.Node) {
			l.strMap(v, "keeper_settings", p+"/keeper_settings", &c.KeeperSettings)
		}},
		{"postgresql_parameters", func(v *yaml.Node) {
			l.strMap(v, "postgresql_parameters", p+"/postgresql_parameters", &c.PostgreSQLParameters)
		}},
		{"diverged_nodes", func(v *yaml.Node) {
			l.record(p+"/diverged_nodes", v)
			l.bad[p+"/diverged_nodes"] = !l.mapping(v, "diverged_nodes", []field{
				{"policy", func(v *yaml.Node) { l.str(v, "policy", p+"/diverged_nodes/policy", &c.Diverged.Policy) }},
				{"grace_period", func(v *yaml.Node) {
					l.duration(v, "grace_period", p+"/diverged_nodes/grace_period", &c.Diverged.GracePeriod)
				}},
			})
		}},
		{"removed_node_data", func(v *yaml.Node) { l.str(v, "removed_node_data", p+"/removed_node_data", &c.RemovedNodeData) }},
	})
}

func (l *loader) node(c *Cluster, p string, n *yaml.Node) {
	c.Nodes = append(c.Nodes, Node{CandidatePriority: UnsetCandidatePriority})
	nd := &c.Nodes[len(c.Nodes)-1]
	l.record(p, n)
	l.bad[p] = !l.mapping(n, "node", []field{
		{"name", func(v *yaml.Node) { l.str(v, "name", p+"/name", &nd.Name) }},
		{"vm", func(v *yaml.Node) { l.str(v, "vm", p+"/vm", &nd.VM) }},
		{"port", func(v *yaml.Node) { l.integer(v, "port", p+"/port", &nd.Port, 1, 65535) }},
		{"candidate_priority", func(v *yaml.Node) {
			l.integer(v, "candidate_priority", p+"/candidate_priority", &nd.CandidatePriority, 0, MaxCandidatePriority)
		}},
		{"replication_quorum", func(v *yaml.Node) {
			l.boolean(v, "replication_quorum", p+"/replication_quorum", &nd.ReplicationQuorum)
		}},
		{"rebuild", func(v *yaml.Node) { l.text(v, "rebuild", p+"/rebuild", &nd.Rebuild) }},
	})
}
