package observe

import (
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON encoding of an Observation.
// It changes only when a field changes meaning or is removed; adding a
// field keeps the version.
const SchemaVersion = 1

// Labels put on every container and volume the reconciler manages. They tie
// an object to its VM, cluster and node; observers select by LabelVM.
const (
	LabelManaged  = "pgaf.managed"   // always "true"
	LabelVM       = "pgaf.vm"        // VM name from the desired state
	LabelCluster  = "pgaf.cluster"   // cluster name
	LabelNode     = "pgaf.node"      // node name, or "monitor"
	LabelRole     = "pgaf.role"      // RoleMonitor or RoleNode
	LabelSpecHash = "pgaf.spec-hash" // hash of the container spec
	LabelRebuild  = "pgaf.rebuild"   // the rebuild token the data was created for
)

// Roles of a managed container.
const (
	RoleMonitor = "monitor"
	RoleNode    = "node"
)

// Observation is one consistent look at every VM and every cluster.
type Observation struct {
	Version int `json:"version"`
	// Time is when the observation was taken (UTC). The planner's only clock.
	Time     time.Time `json:"time"`
	VMs      []VM      `json:"vms"`
	Clusters []Cluster `json:"clusters"`
}

// VM is what one VM's Docker engine showed.
type VM struct {
	Name    string `json:"name"`
	Reached bool   `json:"reached"`
	// Error says why the VM was not reached (empty when Reached).
	Error      string      `json:"error,omitempty"`
	Containers []Container `json:"containers"`
	Volumes    []Volume    `json:"volumes"`
}

// Container is one container labelled as ours.
type Container struct {
	Name    string `json:"name"`
	ID      string `json:"id,omitempty"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"` // node name, or "monitor"
	Role    string `json:"role"` // RoleMonitor or RoleNode
	Image   string `json:"image"`
	// State is Docker's: created, running, restarting, paused, exited, dead.
	State        string    `json:"state"`
	RestartCount int       `json:"restart_count"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	// FinishedAt is when a container that is not running stopped (zero
	// for a running one, or one that never ran).
	FinishedAt time.Time         `json:"finished_at,omitzero"`
	SpecHash   string            `json:"spec_hash"`
	Rebuild    string            `json:"rebuild,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// LogEvidence holds recent fatal lines of the container's log that show
	// a node cannot follow the primary (failed pg_rewind, timeline not a
	// child, system identifier mismatch, ...). Filled for node containers.
	LogEvidence []string `json:"log_evidence,omitempty"`
	// Postgres is what the PostgreSQL server of a running node container
	// answered PostgresQuery (nil for the monitor, for a container that is
	// not running, or an observer that did not ask).
	Postgres *Postgres `json:"postgres,omitempty"`
	// Command is the container's command, as it was created.
	Command []string `json:"command,omitempty"`
	// Keeper is what a node container's pg_autoctl files say, read only
	// for a node its cluster's monitor does not list (or a cluster whose
	// monitor was not reached): the nodes a monitor's replacement moves.
	// Nil otherwise, for the monitor, and for a node that has not written
	// them yet.
	Keeper *Keeper `json:"keeper,omitempty"`
}

// Postgres is one node's PostgreSQL server as it reports itself.
type Postgres struct {
	// Error says why the server could not be read ("" when it answered).
	Error string `json:"error,omitempty"`
	// StartTime is pg_postmaster_start_time().
	StartTime time.Time `json:"start_time,omitzero"`
	// Parameters are the entries of postgresql.auto.conf (what ALTER
	// SYSTEM wrote, on this node: the file is not replicated), as written.
	Parameters map[string]string `json:"parameters,omitempty"`
	// PendingRestart names the parameters whose new value takes effect
	// only after a restart (pg_settings.pending_restart).
	PendingRestart []string `json:"pending_restart,omitempty"`
	// RestartOnly names the parameters that take effect only when the
	// server restarts (pg_settings.context = 'postmaster'), sorted.
	RestartOnly []string `json:"restart_only,omitempty"`
	// Standbys are the rows of pg_stat_replication, ordered by name: on a
	// primary, its streaming standbys as it sees them (empty elsewhere).
	Standbys []Standby `json:"standbys,omitempty"`
}

// Standby is one standby streaming from a node's server, as that server's
// pg_stat_replication shows it.
type Standby struct {
	// Name is the standby's application_name; pg_auto_failover names its
	// standbys StandbyName(node id).
	Name      string `json:"name"`
	State     string `json:"state"`      // streaming, catchup, backup, ...
	SyncState string `json:"sync_state"` // sync, quorum, potential or async
	// ReplayLagSeconds is pg_stat_replication.replay_lag: how long the
	// last WAL the standby replayed took from being written on the primary
	// to being replayed there. It is 0 for a standby that replayed all the
	// primary sent (PostgreSQL shows NULL once such a standby has been idle
	// a while), nil while unknown.
	ReplayLagSeconds *float64 `json:"replay_lag_seconds,omitempty"`
}

// StandbyName is the application_name pg_auto_failover gives the
// replication connection of the node with id.
func StandbyName(id int64) string { return "pgautofailover_standby_" + strconv.FormatInt(id, 10) }

// Volume is one volume labelled as ours.
type Volume struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Rebuild string `json:"rebuild,omitempty"`
	// SizeBytes is the volume's size when known, -1 otherwise.
	SizeBytes int64             `json:"size_bytes"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// Cluster is what the monitor of one cluster said.
type Cluster struct {
	Name    string  `json:"name"`
	Monitor Monitor `json:"monitor"`
}

// Monitor is the pg_auto_failover monitor's view of a formation.
type Monitor struct {
	Reached bool   `json:"reached"`
	Error   string `json:"error,omitempty"`
	// Version is the pgautofailover extension version (e.g. "2.0").
	Version   string    `json:"version,omitempty"`
	Formation Formation `json:"formation"`
	// Settings are the pgautofailover.* GUCs, keyed without the prefix.
	Settings map[string]string `json:"settings,omitempty"`
	Nodes    []Node            `json:"nodes"`
	Events   []Event           `json:"events,omitempty"`
}

// Formation holds the formation-level settings.
type Formation struct {
	Name               string `json:"name"`
	Kind               string `json:"kind,omitempty"`
	NumberSyncStandbys int    `json:"number_sync_standbys"`
}

// Health values of a node, as the monitor's health checks see it.
const (
	HealthGood    = "good"
	HealthBad     = "bad"
	HealthUnknown = "unknown"
)

// Node is one row of pgautofailover.node.
type Node struct {
	ID                int64     `json:"id"`
	Name              string    `json:"name"`
	Host              string    `json:"host"`
	Port              int       `json:"port"`
	GroupID           int       `json:"group_id"`
	ReportedState     string    `json:"reported_state"`
	AssignedState     string    `json:"assigned_state"`
	Timeline          int       `json:"timeline"`
	LSN               string    `json:"lsn"`
	Health            string    `json:"health"`
	CandidatePriority int       `json:"candidate_priority"`
	ReplicationQuorum bool      `json:"replication_quorum"`
	ReportTime        time.Time `json:"report_time,omitzero"`
	StateChangeTime   time.Time `json:"state_change_time,omitzero"`
	// PGIsRunning is what the node's keeper last reported.
	PGIsRunning bool `json:"pg_is_running"`
}

// Event is one row of the monitor's event log.
type Event struct {
	ID          int64     `json:"id"`
	Time        time.Time `json:"time"`
	NodeID      int64     `json:"node_id"`
	NodeName    string    `json:"node_name"`
	Reported    string    `json:"reported_state"`
	Assigned    string    `json:"assigned_state"`
	Description string    `json:"description"`
}

// ParseLSN reads a PostgreSQL LSN written as "X/Y" (two hexadecimal
// halves), as the monitor reports it; ok is false for anything else.
func ParseLSN(s string) (lsn uint64, ok bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}
