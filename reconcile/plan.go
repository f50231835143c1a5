package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	vms := map[string]*observe.VM{}
	idx := &index{objects: map[objectKey]*objects{}, byCluster: map[string][]objectKey{}}
	for i := range obs.VMs {
		vm := &obs.VMs[i]
		vms[vm.Name] = vm
		for j := range vm.Containers {
			idx.get(vm.Name, vm.Containers[j].Cluster, vm.Containers[j].Node).container = &vm.Containers[j]
		}
		for j := range vm.Volumes {
			idx.get(vm.Name, vm.Volumes[j].Cluster, vm.Volumes[j].Node).volume = &vm.Volumes[j]
		}
	}
	for _, keys := range idx.byCluster {
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].node != keys[j].node {
				return keys[i].node < keys[j].node
			}
			return keys[i].vm < keys[j].vm
		})
	}
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

// objectKey names the objects of one member of a cluster on one VM.
type objectKey struct{ vm, cluster, node string }

type objects struct {
	container *observe.Container
	volume    *observe.Volume
}

// index finds containers and volumes without scanning every VM's lists.
type index struct {
	objects   map[objectKey]*objects
	byCluster map[string][]objectKey // sorted by node, then VM
}

func (x *index) get(vm, cluster, node string) *objects {
	k := objectKey{vm, cluster, node}
	o := x.objects[k]
	if o == nil {
		o = &objects{}
		x.objects[k] = o
		x.byCluster[cluster] = append(x.byCluster[cluster], k)
	}
	return o
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
}

func (p *planner) plan() ClusterPlan {
	p.out = ClusterPlan{Name: p.c.Name, Formation: p.c.Formation, Members: []Member{}, Actions: []Action{}, Blocked: []Blocked{}}
	p.monitorUp = p.oc != nil && p.oc.Monitor.Reached
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
	nodes := p.desiredNodes()
	var primaryLast []*desired.Node
	gate := true // every node before this one is settled (or will be)
	for _, n := range nodes {
		if on := p.monitorNode(n.Name); on != nil && isPrimary(on) && p.vmReached(n.VM) {
			if ct, _ := p.container(n.VM, n.Name); ct != nil && ct.SpecHash != p.nodeSpec(n).Labels[observe.LabelSpecHash] {
				primaryLast = append(primaryLast, n)
				continue
			}
		}
		gate = p.planNode(n, gate)
	}
	for _, n := range primaryLast {
		p.planPrimaryReplacement(n)
	}
	if p.settingsSafe() {
		p.planNodeSettings(nodes)
		p.planFormation()
		p.planPostgresParameters(nodes)
	}
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
		p.disrupted = true
	}
	p.out.Actions = append(p.out.Actions, a)
	return true
}

func (p *planner) block(node, guard, reason string) {
	p.out.Blocked = append(p.out.Blocked, Blocked{Cluster: p.c.Name, Node: node, Guard: guard, Reason: reason})
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
			if ct, _ := p.container(vmName, name); ct != nil {
				m.Container, m.Image = ct.State, ct.Image
			}
		}
		if on := p.monitorNode(name); on != nil {
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

func (p *planner) planMonitor() bool {
	vmName := p.c.Monitor.VM
	spec := MonitorSpec(p.st, p.c)
	if !p.vmReached(vmName) {
		if !p.monitorUp {
			p.block("monitor", GuardVMUnobserved, p.vmWhy(vmName)+"; nothing is planned for this cluster until the monitor is observed")
			return false
		}
		return true // the monitor answers; its container cannot be checked
	}
	ct, vol := p.container(vmName, "monitor")
	wait := func(reason string) {
		p.add(Action{Kind: Wait, Node: "monitor", VM: vmName, Trigger: "bring-up", Reason: reason,
			Until: &Condition{Node: "monitor", Timeout: Duration(MonitorReadyTimeout)}})
		p.monitorUp = true
	}
	switch {
	case ct == nil:
		block, ev := p.monitorLost(vol)
		if block != "" {
			p.block("monitor", GuardMonitorLost, block)
			return false
		}
		trigger := map[bool]string{false: "bring-up", true: "monitor-recreate"}[ev != nil]
		p.add(Action{Kind: CreateMonitor, Node: "monitor", VM: vmName, Trigger: trigger, Spec: &spec, Volume: spec.Volume, Evidence: ev,
			Reason: fmt.Sprintf("the monitor has no container on %s", vmName)})
		wait("the monitor must answer before nodes can register")
	case ct.SpecHash != spec.Hash():
		if p.add(Action{Kind: ReplaceContainer, Node: "monitor", VM: vmName, Trigger: "drift", Spec: &spec, Disruptive: true,
			Reason:   fmt.Sprintf("the monitor's container spec changed (hash %s, desired %s); nodes keep serving while it restarts", ct.SpecHash, spec.Hash()),
			Evidence: []string{fmt.Sprintf("container %s image %s spec-hash %s", ct.Name, ct.Image, ct.SpecHash)}}) {
			wait("the monitor must answer again after its container was replaced")
		}
	case ct.State != "running" && ct.State != "restarting":
		p.add(Action{Kind: StartContainer, Node: "monitor", VM: vmName, Trigger: "drift", Spec: &spec,
			Reason: fmt.Sprintf("the monitor's container is %s", ct.State)})
		wait("the monitor must answer after its container started")
	case !p.monitorUp:
		why := "no observation of the monitor"
		if p.oc != nil && p.oc.Monitor.Error != "" {
			why = p.oc.Monitor.Error
		}
		wait("the monitor's container runs but the monitor does not answer yet: " + why)
	}
	if !p.monitorUp {
		p.block("monitor", GuardMonitorUnobserved, "the monitor does not answer; nothing else is planned for this cluster")
		return false
	}
	return true
}

func (p *planner) planMonitorSettings() {
	want := p.c.MonitorSettings
	if len(want) == 0 {
		return
	}
	var have map[string]string
	if p.oc != nil && p.oc.Monitor.Reached {
		have = p.oc.Monitor.Settings
	}
	set, prev := map[string]string{}, map[string]string{}
	for _, k := range SortedKeys(want) {
		if have == nil || have[k] != want[k] {
			set[k] = want[k]
			if have != nil {
				prev[k] = have[k]
			}
		}
	}
	if len(set) == 0 {
		return
	}
	p.add(Action{Kind: SetMonitorSettings, Node: "monitor", VM: p.c.Monitor.VM, Trigger: "settings", Settings: set, Previous: nilIfEmpty(prev),
		Reason: "monitor failover timing differs from the desired state (ALTER SYSTEM and reload, no restart): " + strings.Join(SortedKeys(set), ", ")})
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// joinStates is what a node must reach after it was created.
func (p *planner) joinStates(name string) []string {
	others := 0
	for _, n := range p.nodes {
		if n.Name != name {
			others++
		}
	}
	for _, a := range p.out.Actions {
		if a.Kind == CreateNode && a.Node != name {
			others++
		}
	}
	if others == 0 {
		return []string{"single"}
	}
	return []string{"secondary", "primary"}
}

func (p *planner) waitNode(n *desired.Node, trigger, reason string) {
	st := p.joinStates(n.Name)
	p.add(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: reason,
		Until: &Condition{Node: n.Name, States: st, Timeout: Duration(NodeJoinTimeout)}})
}

// planNode plans one desired node. gate says whether every node before it
// is settled; a node is created only then. It returns the gate for the next.
func (p *planner) planNode(n *desired.Node, gate bool) bool {
	on := p.monitorNode(n.Name)
	if !p.vmReached(n.VM) {
		p.block(n.Name, GuardVMUnobserved, p.vmWhy(n.VM)+"; nothing is planned for "+n.Name)
		return gate && on != nil && p.ready(on)
	}
	ct, vol := p.container(n.VM, n.Name)
	spec := p.nodeSpec(n)

	if vol != nil && n.Rebuild != "" && vol.Rebuild != n.Rebuild {
		ev := []string{fmt.Sprintf("volume %s was created for rebuild token %q; the desired state asks for %q", vol.Name, vol.Rebuild, n.Rebuild)}
		p.retire(n.Name, n.VM, n.Port, retireWipe, "rebuild-token", ev, n)
		return false
	}
	if ev := p.droppedLeftover(n, ct, vol, on); len(ev) > 0 {
		p.retire(n.Name, n.VM, n.Port, retireWipe, "diverged", ev, n)
		return false
	}
	if ev := p.divergence(n, ct, on); len(ev) > 0 {
		if p.c.Diverged.Policy != "auto" {
			p.block(n.Name, GuardManualPolicy, fmt.Sprintf("%s looks stuck or diverged (%s); the policy is manual: change its rebuild token in a commit to re-clone it", n.Name, strings.Join(ev, "; ")))
			return false
		}
		p.retire(n.Name, n.VM, n.Port, retireWipe, "diverged", ev, n)
		return false
	}
	switch {
	case ct == nil && on != nil && vol == nil:
		ev := []string{fmt.Sprintf("%s is registered on the monitor (id %d) but has neither container nor volume on %s", n.Name, on.ID, n.VM)}
		p.retire(n.Name, n.VM, n.Port, retireWipe, "drift", ev, n)
		return false
	case ct == nil:
		if !gate {
			p.block(n.Name, GuardInFlight, fmt.Sprintf("%s is created once the nodes before it are settled", n.Name))
			return false
		}
		trigger, reason := "bring-up", fmt.Sprintf("%s is in the desired state but has no container on %s", n.Name, n.VM)
		if on != nil || vol != nil {
			trigger, reason = "drift", fmt.Sprintf("%s has lost its container on %s; re-created on its existing volume (same node, same data)", n.Name, n.VM)
		} else if first := p.parametersFirst(); len(first) > 0 {
			// A new node clones postgresql.auto.conf from the primary:
			// set the parameters there first and the clone has them (no
			// ALTER SYSTEM of its own, no restart for one that needs it).
			verb := map[bool]string{true: "has", false: "have"}[len(first) == 1]
			p.block(n.Name, GuardInFlight, fmt.Sprintf("%s is created once %s %s the desired PostgreSQL parameters (a new node clones them from the primary)", n.Name, strings.Join(first, ", "), verb))
			return false
		}
		p.add(Action{Kind: CreateNode, Node: n.Name, VM: n.VM, Trigger: trigger, Spec: &spec, Volume: spec.Volume, Reason: reason})
		p.waitNode(n, trigger, fmt.Sprintf("%s must register and finish its clone before the next change", n.Name))
		return true
	case on != nil && inMaintenance(on):
		p.planMaintenance(n, ct, on)
		return false
	case ct.SpecHash != spec.Labels[observe.LabelSpecHash]:
		ev := []string{fmt.Sprintf("container %s image %s spec-hash %s, desired image %s spec-hash %s", ct.Name, ct.Image, ct.SpecHash, spec.Image, spec.Labels[observe.LabelSpecHash])}
		if on != nil && p.ready(on) && on.ReportedState == "secondary" {
			p.roll(n, on, true, "drift", fmt.Sprintf("%s's container differs from its spec; replaced on the same volume (same node id, same data)", n.Name), ev)
			return true
		}
		if !p.guardReplace(n.Name) {
			return false
		}
		if p.add(Action{Kind: ReplaceContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec, Disruptive: true, Evidence: ev,
			Reason: fmt.Sprintf("%s's container differs from its spec; replaced on the same volume (same node id, same data)", n.Name)}) {
			p.waitNode(n, "drift", fmt.Sprintf("%s must be back before the next change", n.Name))
		}
		return true
	case ct.State != "running" && ct.State != "restarting":
		p.add(Action{Kind: StartContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec,
			Reason: fmt.Sprintf("%s's container is %s", n.Name, ct.State)})
		p.waitNode(n, "drift", fmt.Sprintf("%s must be back before the next change", n.Name))
		return true
	case on == nil || !p.ready(on):
		why := fmt.Sprintf("%s's container runs but the node has not registered yet", n.Name)
		if on != nil {
			why = p.why(on)
		}
		if !gate && on == nil {
			p.block(n.Name, GuardInFlight, why)
			return false
		}
		p.waitNode(n, "bring-up", why)
		return true
	}
	return gate
}

// healthyPrimary returns the healthy, settled primary other than except.
func (p *planner) healthyPrimary(except string) *observe.Node {
	for _, n := range p.nodes {
		if n.Name != except && p.ready(n) && (n.ReportedState == "primary" || n.ReportedState == "single") {
			return n
		}
	}
	return nil
}

// settingsSafe reports whether settings may be changed in this plan: every
// node the monitor knows is settled and healthy, and nothing disruptive is
// planned. Settings are never changed in the middle of a failover
// (pg_auto_failover lowers candidate priorities by itself during one).
// Nodes that this plan creates register with pg_autoctl's defaults and
// are set once they joined, in the same plan.
func (p *planner) settingsSafe() bool {
	if !p.monitorUp {
		return false
	}
	for _, n := range p.nodes {
		if !p.ready(n) {
			return false
		}
	}
	for _, a := range p.out.Actions {
		if a.Disruptive || a.Destructive {
			return false
		}
	}
	return true
}

func (p *planner) planNodeSettings(nodes []*desired.Node) {
	for _, n := range nodes {
		on := p.monitorNode(n.Name)
		if on == nil {
			if !p.planned(CreateNode, n.Name) {
				continue
			}
			// pg_autoctl registers a node with these defaults.
			on = &observe.Node{CandidatePriority: 50, ReplicationQuorum: true}
		}
		set, prev := map[string]string{}, map[string]string{}
		if on.CandidatePriority != n.CandidatePriority {
			set["candidate_priority"] = strconv.Itoa(n.CandidatePriority)
			prev["candidate_priority"] = strconv.Itoa(on.CandidatePriority)
		}
		if q := n.ReplicationQuorum == nil || *n.ReplicationQuorum; on.ReplicationQuorum != q {
			set["replication_quorum"] = strconv.FormatBool(q)
			prev["replication_quorum"] = strconv.FormatBool(on.ReplicationQuorum)
		}
		if len(set) == 0 {
			continue
		}
		p.add(Action{Kind: SetNodeSettings, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: "settings", Settings: set, Previous: prev,
			Reason: fmt.Sprintf("%s: %s not as desired (set through the monitor, no restart)", n.Name, strings.Join(SortedKeys(set), " and "))})
	}
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

func (p *planner) planFormation() {
	have := 0 // a new formation starts with number_sync_standbys 0
	if p.oc != nil && p.oc.Monitor.Reached {
		have = p.oc.Monitor.Formation.NumberSyncStandbys
	}
	want := p.c.NumberSyncStandbys
	if have == want {
		return
	}
	// pg_auto_failover refuses the change unless the primary is settled
	// as primary (or wait_primary, for 0) and has want+1 standbys in the
	// replication quorum (formation_metadata.c): a cluster being built
	// gets it once its standbys joined.
	var primary *observe.Node
	standbys := 0
	for _, n := range p.nodes {
		switch {
		case n.ReportedState == n.AssignedState && (n.ReportedState == "primary" || n.ReportedState == "wait_primary" && want == 0):
			primary = n
		case n.ReplicationQuorum && n.ReportedState == "secondary" && p.ready(n):
			standbys++
		}
	}
	if primary == nil || want > 0 && standbys < want+1 {
		p.block("monitor", GuardInFlight, fmt.Sprintf("number_sync_standbys %d is set once a settled primary has %d standbys in the replication quorum (now %d): pg_auto_failover refuses it before", want, want+1, standbys))
		return
	}
	p.add(Action{Kind: SetFormation, Node: "monitor", VM: p.c.Monitor.VM, Trigger: "settings",
		Settings: map[string]string{"number_sync_standbys": strconv.Itoa(p.c.NumberSyncStandbys)},
		Previous: map[string]string{"number_sync_standbys": strconv.Itoa(have)},
		Reason:   fmt.Sprintf("number_sync_standbys is %d, desired %d (through the monitor, no restart)", have, p.c.NumberSyncStandbys)})
}

// guardReplace checks the guards of a disruptive, non-destructive change
// of a secondary's container.
func (p *planner) guardReplace(name string) bool {
	if p.healthyPrimary(name) == nil {
		if on := p.monitorNode(name); on != nil && (on.ReportedState == "single") {
			return true // a lone node: nobody else to protect
		}
		p.block(name, GuardNoHealthyPrimary, fmt.Sprintf("%s's container must be replaced, but no other node is a healthy primary", name))
		return false
	}
	if other := p.unsettledOther(name); other != "" {
		p.block(name, GuardInFlight, fmt.Sprintf("%s's container must be replaced, but %s", name, other))
		return false
	}
	return true
}

// unsettledOther describes another node of the cluster that is not settled
// and healthy, or returns "".
func (p *planner) unsettledOther(name string) string {
	for _, n := range p.nodes {
		if n.Name == name {
			continue
		}
		if !p.ready(n) {
			return p.why(n)
		}
	}
	return ""
}

// planPrimaryReplacement handles a primary whose container spec changed:
// a switchover first (pg_auto_failover performs it), the replacement in a
// later plan, once the node is a secondary.
func (p *planner) planPrimaryReplacement(n *desired.Node) {
	on := p.monitorNode(n.Name)
	if on.ReportedState == "single" {
		spec := p.nodeSpec(n)
		p.add(Action{Kind: ReplaceContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec, Disruptive: true,
			Reason: fmt.Sprintf("%s is the only node; its container is replaced in place (writes pause while it restarts)", n.Name)})
		p.waitNode(n, "drift", n.Name+" must be back")
		return
	}
	p.switchover(n.Name, "drift", fmt.Sprintf("%s is the primary and its container spec changed: pg_auto_failover is asked for a switchover, the container is replaced once %s is a secondary", n.Name, n.Name))
}

func (p *planner) switchover(name, trigger, reason string) {
	// perform_failover returns at once; until the node reached its new
	// state, the monitor shows it primary with another goal: in flight.
	if on := p.monitorNode(name); on != nil && !p.ready(on) {
		p.block(name, GuardInFlight, reason+"; waiting: "+p.why(on))
		return
	}
	if other := p.unsettledOther(name); other != "" {
		p.block(name, GuardInFlight, reason+"; waiting: "+other)
		return
	}
	cand := ""
	for _, n := range p.nodes {
		if n.Name != name && n.CandidatePriority > 0 && p.ready(n) && n.ReportedState == "secondary" {
			cand = n.Name
			break
		}
	}
	if cand == "" {
		p.block(name, GuardNoCandidate, reason+"; but no healthy secondary has a candidate priority above 0")
		return
	}
	on := p.monitorNode(name)
	if p.add(Action{Kind: Switchover, Node: name, NodeID: on.ID, Trigger: trigger, Disruptive: true, Reason: reason,
		Evidence: []string{fmt.Sprintf("%s is %s; %s is a healthy secondary candidate", name, on.ReportedState, cand)}}) {
		p.add(Action{Kind: Wait, Node: name, Trigger: trigger, Reason: "pg_auto_failover finishes the switchover",
			Until: &Condition{Node: name, States: []string{"secondary"}, Timeout: Duration(SwitchoverTimeout)}})
	}
}

// The maintenance states of pg_auto_failover: a secondary asked to enter
// maintenance is assigned wait_maintenance or maintenance.
const stateMaintenance = "maintenance"

var maintenanceStates = []string{"wait_maintenance", stateMaintenance}

func inMaintenance(n *observe.Node) bool { return slices.Contains(maintenanceStates, n.AssignedState) }

// follow appends a step of a sequence whose first step was added with add:
// the sequence is one disruption of one node.
func (p *planner) follow(a Action) {
	p.out.Actions = append(p.out.Actions, withCluster(a, p.c.Name))
}

func (p *planner) waitMaintenance(n *desired.Node, trigger, reason string) {
	p.follow(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: reason,
		Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
}

// roll takes a ready secondary through maintenance to give it a new
// container (replace) or restart its server: start_maintenance, wait for
// maintenance, replace or restart the container (same volume, same node
// id), wait until the node reports from its new container, stop_maintenance,
// wait until it is a secondary again. Each step is derived from the
// observation (planMaintenance), so an interruption resumes where it
// stopped; the next node is touched only once this one is ready again.
func (p *planner) roll(n *desired.Node, on *observe.Node, replace bool, trigger, reason string, ev []string) {
	if !p.guardReplace(n.Name) {
		return
	}
	if !p.add(Action{Kind: EnableMaintenance, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: trigger, Disruptive: true, Evidence: ev,
		Reason: reason + ": put in maintenance first, so pg_auto_failover neither counts on it as a standby nor promotes it"}) {
		return
	}
	p.waitMaintenance(n, trigger, "pg_auto_failover puts "+n.Name+" in maintenance")
	p.change(n, on, replace, trigger, reason, nil, false)
}

// change replaces or restarts the container of a node in maintenance, then
// lifts the maintenance. first says whether the change is the first
// action of the sequence in this plan (it then goes through add).
func (p *planner) change(n *desired.Node, on *observe.Node, replace bool, trigger, reason string, ev []string, first bool) {
	a := Action{Kind: RestartContainer, Node: n.Name, VM: n.VM, Trigger: trigger, Disruptive: true, Evidence: ev,
		Reason: reason + ": restart its container while it is in maintenance"}
	if replace {
		spec := p.nodeSpec(n)
		a.Kind, a.Spec = ReplaceContainer, &spec
		a.Reason = reason + ": replace its container while it is in maintenance"
	}
	if first {
		if !p.add(a) {
			return
		}
	} else {
		p.follow(a)
	}
	p.waitMaintenance(n, trigger, n.Name+" must report to the monitor from its new container")
	p.lift(n, on, trigger, false)
}

// lift plans stop_maintenance and the wait for the node to be a secondary.
func (p *planner) lift(n *desired.Node, on *observe.Node, trigger string, first bool) {
	a := Action{Kind: DisableMaintenance, Node: n.Name, VM: n.VM, NodeID: on.ID, Trigger: trigger,
		Reason: n.Name + "'s container was changed during its maintenance: lift the maintenance"}
	if first {
		if !p.add(a) {
			return
		}
	} else {
		p.follow(a)
	}
	p.follow(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: n.Name + " must be a secondary again before the next node",
		Until: &Condition{Node: n.Name, States: []string{"secondary"}, Timeout: Duration(NodeJoinTimeout)}})
}

// planMaintenance plans a node that is in maintenance (or entering it).
// The reconciler counts a maintenance as its own when the node's
// container started after the node entered maintenance: its rollout
// changes the container only during a maintenance. It then lifts the
// maintenance once the container matches its spec. A maintenance an
// operator started by hand (the container is older) is left alone.
func (p *planner) planMaintenance(n *desired.Node, ct *observe.Container, on *observe.Node) {
	spec := p.nodeSpec(n)
	replace := ct.SpecHash != spec.Labels[observe.LabelSpecHash]
	restart := !replace && len(p.pendingRestart(ct)) > 0
	ours := !ct.StartedAt.IsZero() && ct.StartedAt.After(on.StateChangeTime)
	running := ct.State == "running" || ct.State == "restarting"
	trigger := "drift"
	if restart {
		trigger = "settings"
	}
	switch {
	case !replace && !restart && !ours:
		p.block(n.Name, GuardMaintenance, fmt.Sprintf("%s is in maintenance (%s, assigned %s) and its container is older than the maintenance: an operator's; lift it with pg_autoctl disable maintenance", n.Name, on.ReportedState, on.AssignedState))
	case on.ReportedState != stateMaintenance:
		p.add(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: trigger, Reason: fmt.Sprintf("%s is %s, assigned %s: pg_auto_failover puts it in maintenance", n.Name, on.ReportedState, on.AssignedState),
			Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
		if replace || restart {
			p.change(n, on, replace, trigger, n.Name+" is rolled", nil, true)
		}
	case replace || restart:
		why := fmt.Sprintf("%s is in maintenance and its container differs from its spec (spec-hash %s, desired %s)", n.Name, ct.SpecHash, spec.Labels[observe.LabelSpecHash])
		if restart {
			why = fmt.Sprintf("%s is in maintenance and %s wait for a restart", n.Name, strings.Join(p.pendingRestart(ct), ", "))
		}
		p.change(n, on, replace, trigger, why, []string{fmt.Sprintf("container %s image %s started %s; in maintenance since %s", ct.Name, ct.Image, ct.StartedAt.Format(time.RFC3339), on.StateChangeTime.Format(time.RFC3339))}, true)
	case !running:
		p.add(Action{Kind: StartContainer, Node: n.Name, VM: n.VM, Trigger: "drift", Spec: &spec,
			Reason: fmt.Sprintf("%s's container is %s during the maintenance the reconciler started", n.Name, ct.State)})
		p.waitMaintenance(n, "drift", n.Name+" must report to the monitor from its container")
		p.lift(n, on, "drift", false)
	case p.stale[n.Name]:
		p.add(Action{Kind: Wait, Node: n.Name, VM: n.VM, Trigger: "drift", Reason: n.Name + " has not reported to the monitor since its container started",
			Until: &Condition{Node: n.Name, States: []string{stateMaintenance}, Timeout: Duration(SwitchoverTimeout)}})
		p.lift(n, on, "drift", false)
	default:
		p.lift(n, on, "drift", true)
	}
}

// pendingRestart lists the desired PostgreSQL parameters the node's server
// reports as pending a restart.
func (p *planner) pendingRestart(ct *observe.Container) []string {
	if ct == nil || ct.Postgres == nil {
		return nil
	}
	var out []string
	for _, k := range ct.Postgres.PendingRestart {
		if _, ok := p.c.PostgreSQLParameters[k]; ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// planPostgresParameters sets the desired PostgreSQL parameters on every
// running node whose postgresql.auto.conf differs. Parameters that the
// desired state no longer lists are left as they are (pg_autoctl writes
// its own, such as synchronous_standby_names, in the same file).
func (p *planner) planPostgresParameters(nodes []*desired.Node) {
	want := p.c.PostgreSQLParameters
	if len(want) == 0 {
		return
	}
	for _, n := range nodes {
		ct, _ := p.container(n.VM, n.Name)
		on := p.monitorNode(n.Name)
		if ct == nil || ct.State != "running" || on == nil {
			continue // set once the node joined, in a later plan
		}
		if ct.Postgres == nil || ct.Postgres.Error != "" {
			why := "it was not read"
			if ct.Postgres != nil {
				why = ct.Postgres.Error
			}
			p.block(n.Name, GuardPostgresUnobserved, fmt.Sprintf("%s's PostgreSQL parameters cannot be compared: %s", n.Name, why))
			continue
		}
		set, prev, restart := p.parameterChanges(ct)
		if len(set) == 0 {
			continue
		}
		reason := fmt.Sprintf("%s: PostgreSQL parameters %s not as desired (ALTER SYSTEM on this node, then reload", n.Name, strings.Join(SortedKeys(set), ", "))
		if len(restart) == 0 {
			reason += "; no restart)"
		} else {
			reason += fmt.Sprintf("); %s take effect only after a restart: the nodes restart one at a time after this, secondaries first in maintenance, the primary last after a switchover", strings.Join(restart, ", "))
		}
		p.add(Action{Kind: SetPostgresParameters, Node: n.Name, VM: n.VM, Trigger: "settings", Settings: set, Previous: nilIfEmpty(prev), Restart: restart, Reason: reason})
	}
}

// parameterChanges compares a running node's postgresql.auto.conf with the
// desired parameters: what to set, the values it replaces, and which of
// them need a restart.
func (p *planner) parameterChanges(ct *observe.Container) (set, prev map[string]string, restart []string) {
	set, prev = map[string]string{}, map[string]string{}
	want := p.c.PostgreSQLParameters
	for _, k := range SortedKeys(want) {
		have, ok := ct.Postgres.Parameters[k]
		if ok && have == want[k] {
			continue
		}
		set[k] = want[k]
		if ok {
			prev[k] = have
		}
		if NeedsRestart(k) {
			restart = append(restart, k)
		}
	}
	return set, prev, restart
}

// parametersFirst names the nodes that must have the desired PostgreSQL
// parameters before a new node is created (none: nothing waits): the
// registered, running nodes whose parameters this plan sets
// (planPostgresParameters, when settings are safe so far), and a first node
// created by this plan (it clones nothing: its parameters are set once it
// joined, in the next plan).
func (p *planner) parametersFirst() []string {
	if len(p.c.PostgreSQLParameters) == 0 {
		return nil
	}
	var names []string
	safe, primary := p.settingsSafe(), p.healthyPrimary("") != nil
	for _, n := range p.desiredNodes() {
		if !primary && p.planned(CreateNode, n.Name) {
			names = append(names, n.Name)
			continue
		}
		ct, _ := p.container(n.VM, n.Name)
		if !safe || ct == nil || ct.State != "running" || p.monitorNode(n.Name) == nil || ct.Postgres == nil || ct.Postgres.Error != "" {
			continue
		}
		if set, _, _ := p.parameterChanges(ct); len(set) > 0 {
			names = append(names, n.Name)
		}
	}
	return names
}

// restartFor lists the desired parameters that need the node's server
// restarted: pending a restart, or set by this plan and known to need one.
func (p *planner) restartFor(n *desired.Node, ct *observe.Container) []string {
	names := p.pendingRestart(ct)
	for _, a := range p.out.Actions {
		if a.Kind == SetPostgresParameters && a.Node == n.Name {
			names = append(names, a.Restart...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// planRestarts restarts, one node per plan, the servers whose parameters
// need it: secondaries through maintenance, the primary last after a
// switchover that pg_auto_failover performs.
func (p *planner) planRestarts(nodes []*desired.Node) {
	if len(p.c.PostgreSQLParameters) == 0 || !p.monitorUp {
		return
	}
	var primary *desired.Node
	var primaryNames []string
	for _, n := range nodes {
		on := p.monitorNode(n.Name)
		ct, _ := p.container(n.VM, n.Name)
		if on == nil || ct == nil || ct.State != "running" || !p.vmReached(n.VM) || inMaintenance(on) {
			continue
		}
		names := p.restartFor(n, ct)
		if len(names) == 0 {
			continue
		}
		if isPrimary(on) {
			primary, primaryNames = n, names
			continue
		}
		if !p.ready(on) || on.ReportedState != "secondary" {
			continue // in flight: planNode waits for it
		}
		p.roll(n, on, false, "settings", fmt.Sprintf("%s needs a restart for %s", n.Name, strings.Join(names, ", ")),
			[]string{fmt.Sprintf("%s: %s pending a restart (context postmaster)", n.Name, strings.Join(names, ", "))})
	}
	if primary == nil {
		return
	}
	on := p.monitorNode(primary.Name)
	why := fmt.Sprintf("%s is the primary and needs a restart for %s", primary.Name, strings.Join(primaryNames, ", "))
	if on.ReportedState == "single" {
		if p.add(Action{Kind: RestartContainer, Node: primary.Name, VM: primary.VM, Trigger: "settings", Disruptive: true,
			Reason: why + "; it is the only node, so it restarts in place (writes pause while it restarts)"}) {
			p.waitNode(primary, "settings", primary.Name+" must be back")
		}
		return
	}
	p.switchover(primary.Name, "settings", why+": pg_auto_failover is asked for a switchover, the restart follows once it is a secondary")
}

type removed struct {
	name, vm string
	port     int
	on       *observe.Node
}

// removedNodes lists nodes that exist (on the monitor, or as a container or
// volume) but are not in the desired state, by name.
func (p *planner) removedNodes() []removed {
	want := map[string]bool{"monitor": true}
	for _, n := range p.c.Nodes {
		want[n.Name] = true
	}
	found := map[string]*removed{}
	get := func(name string) *removed {
		if found[name] == nil {
			found[name] = &removed{name: name}
		}
		return found[name]
	}
	{
		for _, n := range p.nodes {
			if !want[n.Name] {
				r := get(n.Name)
				r.on, r.port = n, n.Port
				r.vm = p.vmByAddress(n.Host)
			}
		}
	}
	for _, k := range p.idx.byCluster[p.c.Name] {
		if want[k.node] {
			continue
		}
		o := p.idx.objects[k]
		if r := get(k.node); o.container != nil || r.vm == "" {
			r.vm = k.vm
		}
	}
	out := make([]removed, 0, len(found))
	for _, r := range found {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (p *planner) vmByAddress(host string) string {
	for _, vm := range p.st.VMs {
		if vm.Address == host {
			return vm.Name
		}
	}
	return ""
}

func (p *planner) planRemovals() {
	for _, r := range p.removedNodes() {
		ct, vol := p.container(r.vm, r.name)
		if r.on == nil && ct == nil {
			if vol != nil && p.c.RemovedNodeData == "delete" && p.vmReached(r.vm) {
				p.add(Action{Kind: RemoveVolume, Node: r.name, VM: r.vm, Volume: vol.Name, Trigger: "removed", Destructive: true,
					Reason: fmt.Sprintf("%s was removed from the desired state and removed_node_data is delete", r.name)})
			} else if vol != nil {
				size := "size unknown"
				if vol.SizeBytes >= 0 {
					size = fmt.Sprintf("%d bytes", vol.SizeBytes)
				}
				p.notes = append(p.notes, fmt.Sprintf("volume %s on %s (cluster %s, node %s, %s) belongs to no desired node; kept (removed_node_data: keep): delete it by hand or set removed_node_data: delete", vol.Name, r.vm, p.c.Name, r.name, size))
			}
			continue // a kept volume: status lists it as orphaned
		}
		if r.on == nil && p.monitorUp && (ct.State == "running" || ct.State == "restarting") {
			// Not registered, yet running: nothing the reconciler's removal
			// sequence leaves behind (it stops the container before it drops
			// the node). Someone made it by hand; it is reported, not touched.
			p.notes = append(p.notes, fmt.Sprintf("container %s on %s carries cluster %s's labels for node %s, which is neither in the desired state nor registered on the monitor; left alone", ct.Name, r.vm, p.c.Name, r.name))
			continue
		}
		if r.on != nil && isPrimary(r.on) {
			p.switchover(r.name, "removed", fmt.Sprintf("%s was removed from the desired state but is the primary: pg_auto_failover is asked for a switchover first", r.name))
			continue
		}
		mode := retireRemove
		if p.c.RemovedNodeData == "delete" {
			mode = retireRemoveData
		}
		p.retire(r.name, r.vm, r.port, mode, "removed", []string{fmt.Sprintf("%s is not in the desired state", r.name)}, nil)
	}
}

type retireMode int

const (
	retireRemove     retireMode = iota // drop the node, keep its volume
	retireRemoveData                   // drop the node and delete its volume
	retireWipe                         // drop, delete the volume, create again
)

// retire plans the sequence that takes a node out of the cluster, from the
// step the observation shows it at: stop its container, remove it from the
// monitor (without force, then with force once dropped), remove its
// container, remove its volume, and for a wipe create it again. Every step
// is idempotent, so an interruption anywhere resumes where it stopped.
func (p *planner) retire(name, vmName string, port int, mode retireMode, trigger string, evidence []string, n *desired.Node) {
	if vmName == "" || !p.vmReached(vmName) {
		p.block(name, GuardVMUnobserved, fmt.Sprintf("%s must be dropped (%s) but %s", name, trigger, p.vmWhy(vmName)))
		return
	}
	if p.oc == nil || !p.oc.Monitor.Reached {
		p.block(name, GuardMonitorUnobserved, fmt.Sprintf("%s must be dropped (%s) but the monitor was not observed in this cycle", name, trigger))
		return
	}
	on := p.monitorNode(name)
	ct, vol := p.container(vmName, name)
	running := ct != nil && (ct.State == "running" || ct.State == "restarting")
	if running {
		if !p.guardDestroy(name, on) {
			return
		}
	} else if on != nil && isPrimary(on) {
		p.block(name, GuardTargetPrimary, fmt.Sprintf("%s must be dropped (%s) but the monitor reports it as %s/%s", name, trigger, on.ReportedState, on.AssignedState))
		return
	}
	verb := map[retireMode]string{retireRemove: "removed", retireRemoveData: "removed with its data", retireWipe: "wiped and re-cloned"}[mode]
	base := fmt.Sprintf("%s is %s (%s)", name, verb, trigger)
	first := true
	step := func(a Action) bool {
		a.Node, a.VM, a.Trigger, a.Disruptive, a.Destructive = name, vmName, trigger, true, true
		if first {
			a.Evidence = evidence
			ok := p.add(a)
			first = false
			return ok
		}
		p.out.Actions = append(p.out.Actions, withCluster(a, p.c.Name))
		return true
	}
	if running {
		if !step(Action{Kind: StopContainer, Reason: base + ": stop its container so it cannot act while it is dropped"}) {
			return
		}
	}
	if on != nil {
		if on.AssignedState != "dropped" {
			if !step(Action{Kind: RemoveNode, NodeID: on.ID, Reason: base + ": remove it from the monitor without force, so pg_auto_failover orchestrates"}) {
				return
			}
		}
		if !step(Action{Kind: RemoveNode, NodeID: on.ID, Force: true, Reason: base + ": remove it from the monitor with force once it is dropped (its keeper is stopped)"}) {
			return
		}
	}
	if ct != nil {
		if !step(Action{Kind: RemoveContainer, Reason: base + ": remove its container"}) {
			return
		}
	}
	if vol != nil && mode != retireRemove {
		if !step(Action{Kind: RemoveVolume, Volume: vol.Name, Reason: base + ": delete its data (PGDATA, pg_autoctl config and state)"}) {
			return
		}
	}
	if mode == retireWipe && n != nil {
		spec := p.nodeSpec(n)
		p.out.Actions = append(p.out.Actions, withCluster(Action{Kind: CreateNode, Node: name, VM: vmName, Trigger: trigger, Spec: &spec, Volume: spec.Volume,
			Reason: base + ": create it again on an empty volume; it clones from the current primary"}, p.c.Name))
		p.out.Actions = append(p.out.Actions, withCluster(Action{Kind: Wait, Node: name, VM: vmName, Trigger: trigger,
			Reason: name + " must finish its clone and become a secondary",
			Until:  &Condition{Node: name, States: []string{"secondary"}, Timeout: Duration(NodeJoinTimeout)}}, p.c.Name))
	}
}

func withCluster(a Action, c string) Action { a.Cluster = c; return a }

// guardDestroy checks every guard of a destructive action on a running
// node (DESIGN.md, "Destructive actions: the guards"), blocking with the
// first that fails.
func (p *planner) guardDestroy(name string, on *observe.Node) bool {
	if p.oc == nil || !p.oc.Monitor.Reached {
		p.block(name, GuardMonitorUnobserved, name+" cannot be dropped while the monitor is not observed")
		return false
	}
	if on == nil {
		return true // not registered: nothing of the cluster depends on it
	}
	if isPrimary(on) {
		p.block(name, GuardTargetPrimary, fmt.Sprintf("%s is %s (assigned %s) on the monitor; it is never dropped", name, on.ReportedState, on.AssignedState))
		return false
	}
	prim := p.healthyPrimary(name)
	if prim == nil {
		p.block(name, GuardNoHealthyPrimary, fmt.Sprintf("%s cannot be dropped: no other node is a healthy primary", name))
		return false
	}
	if (on.Timeline > prim.Timeline && !forked(on, prim)) || (on.Timeline == prim.Timeline && lsnGreater(on.LSN, prim.LSN) && !settled(on)) {
		p.block(name, GuardNewestData, fmt.Sprintf("%s (timeline %d, LSN %s) may hold data the primary %s (timeline %d, LSN %s) lacks", name, on.Timeline, on.LSN, prim.Name, prim.Timeline, prim.LSN))
		return false
	}
	if other := p.unsettledOther(name); other != "" && !strings.HasPrefix(other, prim.Name+" ") {
		p.block(name, GuardInFlight, fmt.Sprintf("%s cannot be dropped while another change is in flight: %s", name, other))
		return false
	}
	secondaries, nonPrimaries := 0, 0
	for _, n := range p.nodes {
		if n.Name == name || n.Name == prim.Name {
			continue
		}
		nonPrimaries++
		if p.ready(n) && n.ReportedState == "secondary" {
			secondaries++
		}
	}
	if secondaries == 0 && nonPrimaries > 0 {
		p.block(name, GuardRedundancy, fmt.Sprintf("dropping %s would leave the primary %s without a healthy secondary", name, prim.Name))
		return false
	}
	return true
}

// lsnGreater compares two PostgreSQL LSNs written as "X/Y".
func lsnGreater(a, b string) bool {
	pa, oka := parseLSN(a)
	pb, okb := parseLSN(b)
	return oka && okb && pa > pb
}

func parseLSN(s string) (uint64, bool) {
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
