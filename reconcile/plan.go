package reconcile

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// Timeouts of the waits the planner emits. A clone copies the whole data
// directory, so a joining node gets the longest.
const (
	MonitorReadyTimeout = 3 * time.Minute
	NodeJoinTimeout     = 15 * time.Minute
	SwitchoverTimeout   = 3 * time.Minute
	// RestartLoopCount is the restart count at which a container counts as
	// restarting in a loop.
	RestartLoopCount = 5
)

// Node states of pg_auto_failover, as the planner reads them.
var (
	settledStates = []string{"single", "primary", "secondary"}
	// primaryStates are held by a node that is, or is becoming, the primary.
	primaryStates = []string{"single", "primary", "wait_primary", "join_primary",
		"apply_settings", "prepare_promotion", "stop_replication"}
)

// Plan computes the ordered actions that converge obs to st. It is pure:
// the same input gives the same plan, whatever the order of its lists.
func Plan(st *desired.State, obs *observe.Observation) *Result {
	r := &Result{
		Version:    PlanSchemaVersion,
		Commit:     st.Commit,
		ObservedAt: obs.Time,
		Clusters:   []ClusterPlan{},
		Notes:      []string{},
	}
	vms, idx := indexObservation(obs)
	clusters := make([]*desired.Cluster, len(st.Clusters))
	for i := range st.Clusters {
		clusters[i] = &st.Clusters[i]
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })
	obsClusters := make(map[string]*observe.Cluster, len(obs.Clusters))
	for i := range obs.Clusters {
		obsClusters[obs.Clusters[i].Name] = &obs.Clusters[i]
	}
	owned := map[string]bool{}
	var notes []string
	for _, c := range clusters {
		p := &planner{st: st, c: c, obs: obs, oc: obsClusters[c.Name], vms: vms, idx: idx, specs: map[string]ContainerSpec{}}
		r.Clusters = append(r.Clusters, p.plan())
		notes = append(notes, p.notes...)
		owned[c.Name] = true
	}
	r.Notes = append(strayNotes(st, obs, owned), notes...)
	sort.Strings(r.Notes)
	return r
}

// strayNotes reports objects with our labels that belong to no desired
// cluster, or that sit on a VM the desired state does not know.
func strayNotes(st *desired.State, obs *observe.Observation, owned map[string]bool) []string {
	known := map[string]bool{}
	for _, vm := range st.VMs {
		known[vm.Name] = true
	}
	owned = maps.Clone(owned)
	for _, c := range st.Siblings {
		owned[c] = true // planned on its own (desired.State.Only)
	}
	notes := []string{}
	for _, vm := range obs.VMs {
		if !known[vm.Name] {
			notes = append(notes, fmt.Sprintf("VM %s was observed but is not in the desired state", vm.Name))
		}
		for _, ct := range vm.Containers {
			if !owned[ct.Cluster] {
				notes = append(notes, fmt.Sprintf("container %s on %s belongs to cluster %q, which is not in the desired state; left alone", ct.Name, vm.Name, ct.Cluster))
			}
		}
		for _, v := range vm.Volumes {
			if !owned[v.Cluster] {
				notes = append(notes, fmt.Sprintf("volume %s on %s belongs to cluster %q, which is not in the desired state; left alone", v.Name, vm.Name, v.Cluster))
			}
		}
	}
	sort.Strings(notes)
	return notes
}

type planner struct {
	idx   *index
	specs map[string]ContainerSpec // node specs, by node name
	st    *desired.State
	c     *desired.Cluster
	obs   *observe.Observation
	oc    *observe.Cluster
	vms   map[string]*observe.VM
	out   ClusterPlan
	// disrupted is set once the plan holds a disruptive action for this
	// cluster: at most one disruption per cluster per plan.
	disrupted bool
	// monitorUp is true when the monitor answered, or will after the
	// actions already planned.
	monitorUp bool
	// nodes are the monitor's nodes sorted by name (nil when unobserved).
	nodes []*observe.Node
	// stale names the nodes whose container started after their last
	// report to the monitor: what the monitor says of them predates the
	// restart, so it is not evidence that they are settled.
	stale map[string]bool
	// notes report objects of this cluster that the plan leaves alone.
	notes []string
	// trace, when not nil, records every guard evaluated (see Explain).
	trace *trace
	// old are the cluster's monitor containers to fence (see
	// findOldMonitors).
	old []oldMonitor
}

func (p *planner) plan() ClusterPlan {
	p.out = ClusterPlan{Name: p.c.Name, Formation: p.c.Formation, Members: []Member{}, Actions: []Action{}, Blocked: []Blocked{}}
	p.monitorUp = p.oc != nil && p.oc.Monitor.Reached
	p.findOldMonitors()
	p.fencedMonitors()
	if p.monitorUp {
		for i := range p.oc.Monitor.Nodes {
			p.nodes = append(p.nodes, &p.oc.Monitor.Nodes[i])
		}
		sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].Name < p.nodes[j].Name })
	}
	p.stale = map[string]bool{}
	for _, n := range p.nodes {
		for _, k := range p.idx.byCluster[p.c.Name] {
			if k.node != n.Name {
				continue
			}
			if ct := p.idx.objects[k].container; ct != nil && reportedBefore(n, ct) {
				p.stale[n.Name] = true
			}
		}
	}
	p.members()
	if !p.planMonitor() {
		return p.out
	}
	p.planMonitorSettings()
	if !p.planNodeMoves() {
		return p.out
	}
	nodes := p.desiredNodes()
	var primaryLast []*desired.Node
	gate := true // every node before this one is settled (or will be)
	for _, n := range nodes {
		if on := p.monitorNode(n.Name); on != nil && isPrimary(on) && p.vmReached(n.VM) {
			if ct, _ := p.container(n.VM, n.Name); ct != nil && !p.specCurrent(n, ct) {
				primaryLast = append(primaryLast, n)
				continue
			}
		}
		gate = p.planNode(n, gate)
	}
	for _, n := range primaryLast {
		p.planPrimaryReplacement(n)
	}
	p.planSettings(nodes)
	p.planRestarts(nodes)
	p.planRemovals()
	return p.out
}

// add appends an action, enforcing one disruption per cluster per plan.
// It reports whether the action was added.
func (p *planner) add(a Action) bool {
	a.Cluster = p.c.Name
	if a.Disruptive || a.Destructive {
		if p.disrupted {
			p.block(a.Node, GuardOneAtATime, fmt.Sprintf("%s of %s waits for the disruption planned before it to finish: %s", a.Kind, a.Node, a.Reason))
			return false
		}
		p.pass(a.Node, GuardOneAtATime, func() string { return "the first disruption planned for cluster " + p.c.Name })
		p.disrupted = true
	}
	p.out.Actions = append(p.out.Actions, a)
	return true
}

func (p *planner) block(node, guard, reason string) {
	p.out.Blocked = append(p.out.Blocked, Blocked{Cluster: p.c.Name, Node: node, Guard: guard, Reason: reason})
	p.trace.add(node, guard, false, reason)
}

func (p *planner) vm(name string) *observe.VM { return p.vms[name] }

func (p *planner) vmReached(name string) bool {
	v := p.vm(name)
	return v != nil && v.Reached
}

func (p *planner) vmWhy(name string) string {
	v := p.vm(name)
	if v == nil {
		return fmt.Sprintf("%s was not observed", name)
	}
	return fmt.Sprintf("%s was not reached: %s", name, v.Error)
}

// container finds the container of a member on a VM.
func (p *planner) container(vmName, member string) (*observe.Container, *observe.Volume) {
	o := p.idx.objects[objectKey{vmName, p.c.Name, member}]
	if o == nil {
		return nil, nil
	}
	return o.container, o.volume
}

// nodeSpec is NodeSpec, computed once per node and plan.
func (p *planner) nodeSpec(n *desired.Node) ContainerSpec {
	if s, ok := p.specs[n.Name]; ok {
		return s
	}
	s := NodeSpec(p.st, p.c, n)
	p.specs[n.Name] = s
	return s
}

func (p *planner) monitorNode(name string) *observe.Node {
	for _, n := range p.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (p *planner) desiredNodes() []*desired.Node {
	nodes := make([]*desired.Node, len(p.c.Nodes))
	for i := range p.c.Nodes {
		nodes[i] = &p.c.Nodes[i]
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes
}

func settled(n *observe.Node) bool {
	return n.ReportedState == n.AssignedState && slices.Contains(settledStates, n.ReportedState)
}

func isPrimary(n *observe.Node) bool {
	return slices.Contains(primaryStates, n.ReportedState) || slices.Contains(primaryStates, n.AssignedState)
}

func healthy(n *observe.Node) bool { return n.Health == observe.HealthGood && n.PGIsRunning }

// reportedBefore reports whether the node's last report to the monitor is
// older than its container's start.
func reportedBefore(n *observe.Node, ct *observe.Container) bool {
	return !ct.StartedAt.IsZero() && !n.ReportTime.IsZero() && n.ReportTime.Before(ct.StartedAt)
}

// ready reports whether a node is settled, healthy, and has reported since
// its container last started.
func (p *planner) ready(n *observe.Node) bool {
	return settled(n) && healthy(n) && !p.stale[n.Name]
}

// why describes why a node is not ready.
func (p *planner) why(n *observe.Node) string {
	switch {
	case !settled(n):
		return fmt.Sprintf("%s is %s, assigned %s", n.Name, n.ReportedState, n.AssignedState)
	case p.stale[n.Name]:
		return fmt.Sprintf("%s has not reported to the monitor since its container started", n.Name)
	default:
		return fmt.Sprintf("%s is %s but not healthy (health %s, postgres running %v)", n.Name, n.ReportedState, n.Health, n.PGIsRunning)
	}
}

func (p *planner) members() {
	add := func(name, vmName string, port int, isDesired bool) {
		m := Member{Node: name, VM: vmName, Port: port, Container: "unknown", Desired: isDesired}
		if p.vmReached(vmName) {
			m.Container = "absent"
			ct, _ := p.container(vmName, name)
			if name == "monitor" {
				ct, _ = p.monitorObjects()
			}
			if ct != nil {
				m.Container, m.Image = ct.State, ct.Image
			}
		}
		if on := p.monitorNode(name); on != nil {
			if vmName == "" {
				m.Host = on.Host
			}
			m.State = on.ReportedState
			if on.AssignedState != on.ReportedState {
				m.State += " -> " + on.AssignedState
			}
		}
		p.out.Members = append(p.out.Members, m)
	}
	add("monitor", p.c.Monitor.VM, p.c.Monitor.Port, true)
	switch {
	case p.monitorUp:
		p.out.Members[0].State = "answering"
	case p.vmReached(p.c.Monitor.VM) && p.out.Members[0].Container != "absent":
		p.out.Members[0].State = "not answering"
	}
	for _, n := range p.desiredNodes() {
		add(n.Name, n.VM, n.Port, true)
	}
	for _, r := range p.removedNodes() {
		add(r.name, r.vm, r.port, false)
	}
}

// Where is the member's VM:port, or host:port when its host is no declared
// VM.
func (m *Member) Where() string {
	if m.VM == "" && m.Host != "" {
		return net.JoinHostPort(m.Host, strconv.Itoa(m.Port)) + " (no declared VM)"
	}
	return fmt.Sprintf("%s:%d", m.VM, m.Port)
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// planned reports whether the plan already holds an action of kind on node.
func (p *planner) planned(kind Kind, node string) bool {
	for _, a := range p.out.Actions {
		if a.Kind == kind && a.Node == node {
			return true
		}
	}
	return false
}
