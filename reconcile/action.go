package reconcile

import (
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
)

// PlanSchemaVersion is the version of the JSON encoding of a Plan. It
// changes only when a field changes meaning or is removed.
const PlanSchemaVersion = 1

// Kind is what an action does. The set is closed: the executor switches on
// it and on nothing else.
type Kind string

// The kinds of action.
const (
	// CreateMonitor ensures the monitor's volume and starts its container.
	CreateMonitor Kind = "create_monitor"
	// CreateNode ensures a node's volume and starts its container; with an
	// empty volume pg_autoctl registers the node and clones from the primary.
	CreateNode Kind = "create_node"
	// StartContainer starts a stopped container, as it is.
	StartContainer Kind = "start_container"
	// ReplaceContainer re-creates a container whose spec changed, on the
	// same volume (same node id, same data).
	ReplaceContainer Kind = "replace_container"
	// Wait polls observations until a condition holds or its timeout passes.
	Wait Kind = "wait"
	// SetMonitorSettings applies pgautofailover.* GUCs: ALTER SYSTEM, reload.
	SetMonitorSettings Kind = "set_monitor_settings"
	// SetFormation sets the formation's number_sync_standbys.
	SetFormation Kind = "set_formation"
	// SetNodeSettings sets a node's candidate priority and replication quorum.
	SetNodeSettings Kind = "set_node_settings"
	// EnableMaintenance and DisableMaintenance put a secondary in and out of
	// pg_auto_failover's maintenance.
	EnableMaintenance  Kind = "enable_maintenance"
	DisableMaintenance Kind = "disable_maintenance"
	// Switchover asks pg_auto_failover to perform a planned failover. It is
	// planned only when a committed change needs the primary elsewhere.
	Switchover Kind = "switchover"
	// StopContainer stops a node's container before it is dropped.
	StopContainer Kind = "stop_container"
	// RemoveNode drops a node from the monitor (Force: delete its row at once).
	RemoveNode Kind = "remove_node"
	// RemoveContainer removes a container; its volume stays.
	RemoveContainer Kind = "remove_container"
	// RemoveVolume deletes a node's data.
	RemoveVolume Kind = "remove_volume"
	// SetPostgresParameters writes PostgreSQL parameters on one node (ALTER
	// SYSTEM: postgresql.auto.conf is per node, not replicated) and reloads
	// its configuration. Restart names those that take effect only after a
	// restart, which later steps do one node at a time.
	SetPostgresParameters Kind = "set_postgresql_parameters"
	// RestartContainer stops and starts a node's container as it is (a
	// parameter that needs a restart), while the node is in maintenance.
	RestartContainer Kind = "restart_container"
	// FenceMonitor fences an old monitor before a new one replaces it: its
	// restart policy set to no, stopped, renamed to Fenced; its volume kept.
	FenceMonitor Kind = "fence_monitor"
	// DisableMonitor makes a node's keeper follow no monitor (pg_autoctl
	// disable monitor --force); PostgreSQL keeps running as it is.
	DisableMonitor Kind = "disable_monitor"
	// EnableMonitor registers a node whose keeper follows no monitor with
	// the new one (pg_autoctl enable monitor), under its name and node id.
	EnableMonitor Kind = "enable_monitor"
)

// Action is one step of a plan.
type Action struct {
	Cluster string `json:"cluster"`
	Kind    Kind   `json:"kind"`
	// Node is the node's name, or "monitor".
	Node string `json:"node"`
	VM   string `json:"vm,omitempty"`
	// Reason says, for people, why the action was chosen.
	Reason string `json:"reason"`
	// Trigger names what in the desired state or observation asked for it:
	// "bring-up", "drift", "settings", "rebuild-token", "removed", "diverged".
	Trigger string `json:"trigger"`
	// Disruptive actions interrupt service or redundancy of a node.
	Disruptive bool `json:"disruptive"`
	// Destructive actions drop a node or delete data.
	Destructive bool `json:"destructive"`
	// Evidence lists the observations a disruptive action rests on.
	Evidence []string `json:"evidence,omitempty"`

	Spec   *ContainerSpec `json:"spec,omitempty"`   // create/replace
	Volume string         `json:"volume,omitempty"` // remove_volume, create
	NodeID int64          `json:"node_id,omitempty"`
	Force  bool           `json:"force,omitempty"` // remove_node
	// Settings carries the values to set (GUCs, candidate_priority,
	// replication_quorum, number_sync_standbys), as strings.
	Settings map[string]string `json:"settings,omitempty"`
	// Previous carries the observed values Settings replace.
	Previous map[string]string `json:"previous,omitempty"`
	Until    *Condition        `json:"until,omitempty"` // wait
	// Restart names the parameters of a set_postgresql_parameters that
	// need a restart (PostgreSQL context postmaster).
	Restart []string `json:"restart,omitempty"`
	// Fenced is the name a fence_monitor renames the old monitor's
	// container to.
	Fenced string `json:"fenced,omitempty"`
}

// Condition is what a wait action waits for.
type Condition struct {
	// Node whose state is awaited, or "monitor" for the monitor answering.
	Node string `json:"node"`
	// States the node must report (and be assigned); empty for the monitor.
	States  []string `json:"states,omitempty"`
	Timeout Duration `json:"timeout"`
}

// Duration is a time.Duration encoded as "1m30s" in JSON.
type Duration time.Duration

// MarshalText writes the duration as Go prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Blocked is a change the planner wanted but a guard refused, or a
// condition that needs a person.
type Blocked struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node,omitempty"`
	// Guard names the rule that blocks: see the Guard* constants.
	Guard  string `json:"guard"`
	Reason string `json:"reason"`
}

// The guards that can block a change.
const (
	GuardVMUnobserved      = "vm_unobserved"
	GuardMonitorUnobserved = "monitor_unobserved"
	GuardTargetPrimary     = "target_is_primary"
	GuardNewestData        = "newest_data"
	GuardNoHealthyPrimary  = "no_healthy_primary"
	GuardRedundancy        = "redundancy"
	GuardInFlight          = "disruption_in_flight"
	GuardOneAtATime        = "one_disruption_per_plan"
	GuardManualPolicy      = "manual_policy"
	GuardNoCandidate       = "no_switchover_candidate"
	// GuardMaintenance: a node is in maintenance that the reconciler did
	// not start (its container is older than the maintenance); it is the
	// operator's to lift.
	GuardMaintenance = "operator_maintenance"
	// GuardPostgresUnobserved: a node's PostgreSQL server could not be
	// read, so its parameters cannot be compared.
	GuardPostgresUnobserved = "postgres_unobserved"
)

// Member is one row of the "what exists" summary of a cluster.
type Member struct {
	Node string `json:"node"`
	// VM is the member's VM; empty for a node registered at a host that no
	// declared VM has (Host says where).
	VM        string `json:"vm"`
	Host      string `json:"host,omitempty"`
	Port      int    `json:"port"`
	Container string `json:"container"` // Docker state, or "absent" / "unknown"
	Image     string `json:"image,omitempty"`
	State     string `json:"state,omitempty"` // reported/assigned on the monitor
	Desired   bool   `json:"desired"`
}

// ClusterPlan is the plan of one cluster.
type ClusterPlan struct {
	Name      string    `json:"name"`
	Formation string    `json:"formation"`
	Members   []Member  `json:"members"`
	Actions   []Action  `json:"actions"`
	Blocked   []Blocked `json:"blocked"`
}

// Result is the plan: the ordered list of actions that converge the observation to the
// desired state, cluster by cluster (clusters by name). Only the first
// action of a plan is executed before observing and planning again; the
// rest tell reviewers what will follow.
type Result struct {
	Version    int           `json:"version"`
	Commit     string        `json:"commit"`
	ObservedAt time.Time     `json:"observed_at"`
	Clusters   []ClusterPlan `json:"clusters"`
	// Notes report drift that the plan leaves alone (objects with our labels
	// that no desired cluster owns).
	Notes []string `json:"notes"`
}

// Actions returns every action of the plan, in order.
func (p *Result) Actions() []Action {
	var out []Action
	for _, c := range p.Clusters {
		out = append(out, c.Actions...)
	}
	return out
}

// Empty reports whether the plan changes nothing.
func (p *Result) Empty() bool { return len(p.Actions()) == 0 }

// Satisfied reports whether the wait condition holds in obs: the monitor
// answers, or the node is in one of the states, healthy, and has reported
// since its container started.
func (c *Condition) Satisfied(cluster string, obs *observe.Observation) bool {
	oc := findObsCluster(obs, cluster)
	if oc == nil || !oc.Monitor.Reached {
		return false
	}
	if c.Node == "monitor" {
		return true
	}
	for _, n := range oc.Monitor.Nodes {
		if n.Name != c.Node {
			continue
		}
		// A node in maintenance may have its PostgreSQL stopped (pg_autoctl
		// does not start it again after a restart in maintenance): waiting
		// for maintenance asks for the state only.
		if !c.maintenance() && (n.Health != observe.HealthGood || !n.PGIsRunning) {
			return false
		}
		// A report older than the container's start says nothing of the
		// node as it runs now.
		for _, vm := range obs.VMs {
			for i := range vm.Containers {
				if ct := &vm.Containers[i]; ct.Cluster == cluster && ct.Node == n.Name && reportedBefore(&n, ct) {
					return false
				}
			}
		}
		for _, s := range c.States {
			if n.ReportedState == s && n.AssignedState == s {
				return true
			}
		}
	}
	return false
}

// maintenance reports whether the condition waits for the maintenance
// state only.
func (c *Condition) maintenance() bool {
	return len(c.States) == 1 && c.States[0] == stateMaintenance
}

func findObsCluster(obs *observe.Observation, name string) *observe.Cluster {
	for i := range obs.Clusters {
		if obs.Clusters[i].Name == name {
			return &obs.Clusters[i]
		}
	}
	return nil
}
