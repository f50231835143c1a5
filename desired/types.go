package desired

import (
	"slices"
	"time"
)

// State is the whole desired state: every VM and every cluster, after
// defaults were applied. It is what the planner reads.
type State struct {
	VMs      []VM      `json:"vms" yaml:"vms"`
	Clusters []Cluster `json:"clusters" yaml:"clusters"`
	// Commit is the git commit (or "" for a local directory) the state was
	// read from. It is not part of the YAML; sources set it.
	Commit string `json:"commit,omitempty" yaml:"-"`
	// Siblings name the clusters of the whole desired state that Only left
	// out of this one: their containers and volumes are not strays.
	Siblings []string `json:"siblings,omitempty" yaml:"-"`
}

// Only is st with the named cluster alone, every VM kept (a node being
// removed may sit on a VM no desired node uses), the other clusters named
// in Siblings; nil when st has no such cluster. The clusters' values are
// shared, not copied: neither is changed after loading.
func (st *State) Only(cluster string) *State {
	for i := range st.Clusters {
		if st.Clusters[i].Name != cluster {
			continue
		}
		sub := &State{VMs: st.VMs, Clusters: st.Clusters[i : i+1 : i+1], Commit: st.Commit, Siblings: slices.Clone(st.Siblings)}
		for _, c := range st.Clusters {
			if c.Name != cluster {
				sub.Siblings = append(sub.Siblings, c.Name)
			}
		}
		return sub
	}
	return nil
}

// VM is one machine that runs Docker and is reached over SSH.
type VM struct {
	Name    string `json:"name" yaml:"name"`
	Address string `json:"address" yaml:"address"` // IP or hostname; nodes listen on it
	SSH     SSH    `json:"ssh" yaml:"ssh"`
	// DockerNetwork is the --network value for containers started on this VM:
	// "host" on real VMs (the default), "container:<name>" in the lab.
	DockerNetwork string `json:"docker_network" yaml:"docker_network"`
}

// SSH says how to reach a VM.
type SSH struct {
	// User is required: which account the reconciler logs in as is the
	// operator's decision, and a guessed default would only fail at SSH.
	User string `json:"user" yaml:"user"`
	Port int    `json:"port" yaml:"port"` // default 22
	// HostKeyFingerprint pins the VM's host key ("SHA256:..."), as an
	// alternative to the known_hosts files of the reconciler's config.
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty" yaml:"host_key_fingerprint"`
}

// Cluster is one pg_auto_failover formation: a monitor and its nodes.
type Cluster struct {
	Name      string  `json:"name" yaml:"name"`
	Formation string  `json:"formation" yaml:"formation"` // default "default"
	Image     string  `json:"image" yaml:"image"`
	Database  string  `json:"database" yaml:"database"` // default "postgres"; used by dsn
	User      string  `json:"user" yaml:"user"`         // default "postgres"; used by dsn
	Monitor   Monitor `json:"monitor" yaml:"monitor"`
	Nodes     []Node  `json:"nodes" yaml:"nodes"`
	// NumberSyncStandbys is the formation's number_sync_standbys (default 0).
	NumberSyncStandbys int `json:"number_sync_standbys" yaml:"number_sync_standbys"`
	// Auth is "trust" or "scram-sha-256" (default "trust").
	Auth string `json:"auth" yaml:"auth"`
	// SSL is "off" or "self-signed" (default "off").
	SSL string `json:"ssl" yaml:"ssl"`
	// ClientNetworks are the CIDRs of application hosts admitted in pg_hba.
	ClientNetworks []string `json:"client_networks" yaml:"client_networks"`
	// MonitorSettings are pgautofailover.* GUCs, keyed without the prefix
	// (for example "health_check_period": "2000").
	MonitorSettings map[string]string `json:"monitor_settings" yaml:"monitor_settings"`
	// KeeperSettings are pg_autoctl keeper settings of every node, keyed by
	// their pg_autoctl.cfg name (for example
	// "timeout.network_partition_timeout": "5", in seconds). The image's
	// entrypoint applies them with `pg_autoctl config set` and reloads the
	// keeper, so a change replaces each node's container (rolling). Empty
	// means pg_autoctl's defaults.
	KeeperSettings map[string]string `json:"keeper_settings,omitempty" yaml:"keeper_settings,omitempty"`
	// PostgreSQLParameters are set on every node (ALTER SYSTEM).
	PostgreSQLParameters map[string]string `json:"postgresql_parameters" yaml:"postgresql_parameters"`
	Diverged             DivergedPolicy    `json:"diverged_nodes" yaml:"diverged_nodes"`
	// RemovedNodeData is "keep" (default) or "delete": what happens to the
	// volume of a node removed from the desired state.
	RemovedNodeData string `json:"removed_node_data" yaml:"removed_node_data"`
}

// Monitor places the cluster's pg_auto_failover monitor.
type Monitor struct {
	VM    string `json:"vm" yaml:"vm"`
	Port  int    `json:"port" yaml:"port"`   // default 5432
	Image string `json:"image" yaml:"image"` // default: the cluster's image
	// Recreate is an opaque token that asks for a new, empty monitor, on
	// VM (which may change in the same commit): after the monitor's data
	// was lost, or to move the monitor on purpose. The planner fences the
	// old monitor and moves every node to the new one (README, "Replacing
	// the monitor"). Without a new token it refuses: guard monitor_lost
	// when the data is gone, monitor_move when a monitor of the cluster
	// runs elsewhere. The token is stored as a label on the new monitor's
	// container and volume, and names that volume.
	Recreate string `json:"recreate,omitempty" yaml:"recreate,omitempty"`
}

// Node is one PostgreSQL instance of a cluster.
type Node struct {
	Name              string `json:"name" yaml:"name"`
	VM                string `json:"vm" yaml:"vm"`
	Port              int    `json:"port" yaml:"port"`                             // default 5432
	CandidatePriority int    `json:"candidate_priority" yaml:"candidate_priority"` // 0..100, default 50 (see UnsetCandidatePriority)
	// ReplicationQuorum defaults to true.
	ReplicationQuorum *bool `json:"replication_quorum" yaml:"replication_quorum"`
	// Rebuild is an opaque token: changing it in a commit asks for one
	// wipe-and-re-clone of this node.
	Rebuild string `json:"rebuild,omitempty" yaml:"rebuild"`
}

// DivergedPolicy says what to do with a node that is stuck or diverged.
type DivergedPolicy struct {
	Policy string `json:"policy" yaml:"policy"` // "manual" (default) or "auto"
	// GracePeriod is how long a node may stay stuck before the auto policy
	// wipes and re-clones it: default 5m, at least 1m with "auto".
	GracePeriod Duration `json:"grace_period" yaml:"grace_period"`
}

// Duration is a time.Duration written as "90s" or "5m" in YAML and JSON.
type Duration struct{ time.Duration }

// MarshalText writes the duration as Go prints it ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
