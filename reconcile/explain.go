package reconcile

// Explain: everything the planner knows of one node and why it plans what
// it plans, with the guards it evaluated on the way.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// ExplainSchemaVersion is the version of the JSON encoding of an
// Explanation.
const ExplainSchemaVersion = 1

// GuardCheck is one guard the planner evaluated, and its outcome.
type GuardCheck struct {
	Guard string `json:"guard"`
	// Node is the node the guard was evaluated for, or "monitor".
	Node   string `json:"node"`
	Passed bool   `json:"passed"`
	// Detail says why the guard held, or, when it blocked, gives the
	// reason of the plan's blocked entry.
	Detail string `json:"detail"`
}

// trace collects the guard checks of one cluster's planning. A nil trace
// records nothing: Plan does not trace.
type trace struct{ checks []GuardCheck }

func (t *trace) add(node, guard string, passed bool, detail string) {
	if t != nil {
		t.checks = append(t.checks, GuardCheck{Guard: guard, Node: node, Passed: passed, Detail: detail})
	}
}

// pass records that a guard held for node. detail is called only when
// tracing, so Plan builds no string for it.
func (p *planner) pass(node, guard string, detail func() string) {
	if p.trace != nil {
		p.trace.add(node, guard, true, detail())
	}
}

// Explanation is what the planner knows of one node of one cluster and
// what it plans for it.
type Explanation struct {
	Version    int       `json:"version"`
	Cluster    string    `json:"cluster"`
	Node       string    `json:"node"`
	ObservedAt time.Time `json:"observed_at"`
	// Desired is the node as the desired state asks for it; nil for a
	// node that is not in the desired state (one being removed).
	Desired *DesiredNode `json:"desired"`
	// VM is where the node is (the desired VM, or for a removed node the
	// VM its objects or its monitor row point to; empty when its host is
	// no declared VM, see Host).
	VM        string `json:"vm"`
	Host      string `json:"host,omitempty"`
	VMReached bool   `json:"vm_reached"`
	VMError   string `json:"vm_error,omitempty"`
	// MonitorReached says whether the cluster's monitor answered;
	// Registered is the node's row on it (nil when absent or unobserved).
	MonitorReached bool               `json:"monitor_reached"`
	MonitorError   string             `json:"monitor_error,omitempty"`
	Registered     *observe.Node      `json:"monitor_node"`
	Events         []observe.Event    `json:"events"`
	Container      *observe.Container `json:"container"`
	// SpecCurrent says whether the container is as its spec asks: its
	// hash matches, or it differs only in the monitor its command names
	// while the node is registered with the desired one (a node moved to
	// a new monitor keeps its container).
	SpecCurrent bool            `json:"spec_current"`
	Volume      *observe.Volume `json:"volume"`
	// Actions are the plan's actions for this node; Step is each one's
	// place in the cluster's plan (1: the next to run).
	Actions []PlannedAction `json:"actions"`
	Blocked []Blocked       `json:"blocked"`
	// Guards are the guards evaluated for this node, in the order the
	// planner evaluated them; ClusterGuards those evaluated for the
	// cluster's monitor and formation, on which every node's plan depends.
	Guards        []GuardCheck `json:"guards"`
	ClusterGuards []GuardCheck `json:"cluster_guards"`
	// Stopped is the cluster guard that stopped the planning of the
	// cluster at its monitor, before any node was planned; nil otherwise.
	Stopped *GuardCheck `json:"stopped,omitempty"`
}

// DesiredNode is a desired node with what the desired state implies for
// it: its container spec's image, names and hash, and the cluster's
// PostgreSQL parameters and diverged policy.
type DesiredNode struct {
	VM                string            `json:"vm"`
	Port              int               `json:"port"`
	CandidatePriority int               `json:"candidate_priority"`
	ReplicationQuorum bool              `json:"replication_quorum"`
	Rebuild           string            `json:"rebuild,omitempty"`
	Image             string            `json:"image"`
	Container         string            `json:"container"`
	Volume            string            `json:"volume"`
	SpecHash          string            `json:"spec_hash"`
	Parameters        map[string]string `json:"postgresql_parameters"`
	DivergedPolicy    string            `json:"diverged_policy"`
	GracePeriod       Duration          `json:"grace_period"`
}

// PlannedAction is an action with its place in the cluster's plan.
type PlannedAction struct {
	Step int `json:"step"`
	Action
}

// Explain plans cluster as Plan does, recording every guard the planner
// evaluates, and returns what concerns node. An empty cluster means the
// one cluster that has such a node. It is pure, as Plan is, and its
// actions and blocked entries are Plan's for that node.
func Explain(st *desired.State, obs *observe.Observation, cluster, node string) (*Explanation, error) {
	if node == "monitor" {
		return nil, fmt.Errorf("explain takes a node; the monitor's guards are listed with every node's")
	}
	clusters := make([]*desired.Cluster, 0, len(st.Clusters))
	for i := range st.Clusters {
		if c := &st.Clusters[i]; cluster == "" || c.Name == cluster {
			clusters = append(clusters, c)
		}
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })
	if len(clusters) == 0 {
		return nil, fmt.Errorf("no cluster %q in the desired state; its clusters: %s", cluster, clusterNames(st))
	}
	vms, idx := indexObservation(obs)
	var found []*planner
	var known []string // "cluster (node, ...)", by cluster
	var nodes []string // of the last cluster planned
	for _, c := range clusters {
		p := &planner{st: st, c: c, obs: obs, vms: vms, idx: idx, specs: map[string]ContainerSpec{}, trace: &trace{}}
		for i := range obs.Clusters {
			if obs.Clusters[i].Name == c.Name {
				p.oc = &obs.Clusters[i] // the last, as Plan's map keeps it
			}
		}
		p.plan()
		nodes = nil
		for _, m := range p.out.Members {
			if m.Node == node {
				found = append(found, p)
			}
			if m.Node != "monitor" {
				nodes = append(nodes, m.Node)
			}
		}
		if len(nodes) == 0 {
			nodes = []string{"none"}
		}
		known = append(known, fmt.Sprintf("%s (%s)", c.Name, strings.Join(nodes, ", ")))
	}
	switch {
	case len(found) == 0 && cluster != "":
		return nil, fmt.Errorf("no node %q in cluster %s; its nodes: %s", node, cluster, strings.Join(nodes, ", "))
	case len(found) == 0:
		return nil, fmt.Errorf("no node %q in any cluster; the clusters and their nodes: %s", node, strings.Join(known, "; "))
	case len(found) > 1:
		var in []string
		for _, p := range found {
			in = append(in, p.c.Name)
		}
		return nil, fmt.Errorf("node %q is in clusters %s: name the cluster", node, strings.Join(in, ", "))
	}
	return found[0].explain(node), nil
}

func clusterNames(st *desired.State) string {
	var names []string
	for _, c := range st.Clusters {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// explain gathers what a traced planner knows of node, after plan.
func (p *planner) explain(node string) *Explanation {
	e := &Explanation{Version: ExplainSchemaVersion, Cluster: p.c.Name, Node: node, ObservedAt: p.obs.Time,
		Events: []observe.Event{}, Actions: []PlannedAction{}, Blocked: []Blocked{}, Guards: []GuardCheck{}, ClusterGuards: []GuardCheck{}}
	for _, m := range p.out.Members {
		if m.Node == node {
			e.VM, e.Host = m.VM, m.Host
		}
	}
	for i := range p.c.Nodes {
		if n := &p.c.Nodes[i]; n.Name == node {
			spec := p.nodeSpec(n)
			params := map[string]string{}
			for k, v := range p.c.PostgreSQLParameters {
				params[k] = v
			}
			e.Desired = &DesiredNode{VM: n.VM, Port: n.Port, CandidatePriority: n.CandidatePriority,
				ReplicationQuorum: n.ReplicationQuorum == nil || *n.ReplicationQuorum, Rebuild: n.Rebuild,
				Image: spec.Image, Container: spec.Name, Volume: spec.Volume, SpecHash: spec.Labels[observe.LabelSpecHash],
				Parameters: params, DivergedPolicy: p.c.Diverged.Policy, GracePeriod: Duration(p.c.Diverged.GracePeriod.Duration)}
		}
	}
	if vm := p.vm(e.VM); vm != nil {
		e.VMReached, e.VMError = vm.Reached, vm.Error
	}
	if p.oc != nil {
		e.MonitorReached, e.MonitorError = p.oc.Monitor.Reached, p.oc.Monitor.Error
	}
	if on := p.monitorNode(node); on != nil {
		n := *on
		e.Registered = &n
	}
	if p.oc != nil {
		for _, ev := range p.oc.Monitor.Events {
			if ev.NodeName == node || (e.Registered != nil && ev.NodeID == e.Registered.ID) {
				e.Events = append(e.Events, ev)
			}
		}
		sort.SliceStable(e.Events, func(i, j int) bool { return e.Events[i].ID < e.Events[j].ID })
	}
	if e.VMReached {
		ct, vol := p.container(e.VM, node)
		if ct != nil {
			c := *ct
			e.Container = &c
			for i := range p.c.Nodes {
				if n := &p.c.Nodes[i]; n.Name == node {
					e.SpecCurrent = p.specCurrent(n, ct)
				}
			}
		}
		if vol != nil {
			v := *vol
			e.Volume = &v
		}
	}
	for i, a := range p.out.Actions {
		if a.Node == node {
			e.Actions = append(e.Actions, PlannedAction{Step: i + 1, Action: a})
		}
	}
	for _, b := range p.out.Blocked {
		if b.Node == node {
			e.Blocked = append(e.Blocked, b)
		}
	}
	seen := map[GuardCheck]bool{}
	for _, g := range p.trace.checks {
		if seen[g] {
			continue // retire and guardDestroy both check the monitor
		}
		seen[g] = true
		switch g.Node {
		case node:
			e.Guards = append(e.Guards, g)
		case "monitor":
			e.ClusterGuards = append(e.ClusterGuards, g)
			// planMonitor returns false, and nothing else is planned,
			// exactly when one of these blocks.
			if stops := g.Guard == GuardVMUnobserved || g.Guard == GuardMonitorLost || g.Guard == GuardMonitorUnobserved; stops && !g.Passed && e.Stopped == nil {
				e.Stopped = &g
			}
		}
	}
	return e
}
