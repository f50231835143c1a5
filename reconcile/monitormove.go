package reconcile

// Planning of a monitor's replacement: a commit that sets a new
// monitor.recreate token (optionally with a new monitor.vm) replaces the
// cluster's monitor with a new, empty one, after the old one's data was
// lost or on purpose (to move it off a VM). The steps follow
// pg_auto_failover's "Replacing the monitor online" (docs/operations.rst):
// fence the old monitor, create the new one, `pg_autoctl disable monitor
// --force` on every node (the primary last), then `pg_autoctl enable
// monitor` on the primary first and on each secondary after it. Node names,
// ids and data stay; the primary keeps serving throughout. Every step is
// chosen from what is observed (the old monitor's container, each node's
// keeper files), so a plan interrupted anywhere resumes where it stopped.

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// GuardMonitorMove refuses to fence a monitor that a commit did not ask to
// replace: a different monitor.vm, or a monitor volume of another token,
// without a new monitor.recreate token.
const GuardMonitorMove = "monitor_move"

// oldMonitor is a monitor container of the cluster that is not the desired
// monitor and is not fenced yet.
type oldMonitor struct {
	vm string
	ct *observe.Container
}

// findOldMonitors lists the cluster's unfenced monitor containers that are
// not the desired one: on another VM, or on the monitor's VM without the
// desired volume (the container runs on a volume of another token). When
// one sits at the desired monitor's address, what answered there is that
// old monitor: the planner forgets it, and plans as if no monitor
// answered until the new one does.
func (p *planner) findOldMonitors() {
	want := MonitorVolumeName(p.c)
	name := ContainerName(p.c.Name, "monitor")
	for _, vm := range p.obs.VMs {
		if !vm.Reached {
			continue
		}
		for i := range vm.Containers {
			ct := &vm.Containers[i]
			if ct.Cluster != p.c.Name || ct.Role != observe.RoleMonitor || ct.Name != name {
				continue
			}
			if vm.Name == p.c.Monitor.VM && slices.ContainsFunc(vm.Volumes, func(v observe.Volume) bool { return v.Name == want }) {
				continue
			}
			p.old = append(p.old, oldMonitor{vm: vm.Name, ct: ct})
			if vm.Name == p.c.Monitor.VM {
				p.monitorUp = false
			}
		}
	}
}

// fencedMonitors notes the cluster's fenced monitor containers: kept, with
// their data, and never started again by a plan.
func (p *planner) fencedMonitors() {
	for _, vm := range p.obs.VMs {
		for _, ct := range vm.Containers {
			if ct.Cluster == p.c.Name && Fenced(&ct) {
				p.notes = append(p.notes, fmt.Sprintf("container %s on %s is an earlier monitor of cluster %s, fenced (%s); kept with its data, never started again", ct.Name, vm.Name, p.c.Name, ct.State))
			}
		}
	}
}

// planFence plans fencing every old monitor. It returns false when a
// guard refuses, and nothing else is planned for the cluster.
func (p *planner) planFence() bool {
	tok := p.c.Monitor.Recreate
	for _, o := range p.old {
		where := fmt.Sprintf("on %s", o.vm)
		if o.vm == p.c.Monitor.VM {
			where = fmt.Sprintf("on %s, on a volume other than %s", o.vm, MonitorVolumeName(p.c))
		}
		ev := []string{fmt.Sprintf("container %s %s is %s, created for monitor.recreate %q", o.ct.Name, where, o.ct.State, o.ct.Rebuild)}
		if tok == "" || tok == o.ct.Rebuild {
			p.block("monitor", GuardMonitorMove, fmt.Sprintf("the cluster's monitor runs %s (container %s, %s), not as desired on %s; "+
				"replacing it needs a new monitor.recreate token in the same commit (now %q), and nothing is planned for this cluster until then",
				where, o.ct.Name, o.ct.State, p.c.Monitor.VM, tok))
			return false
		}
		p.pass("monitor", GuardMonitorMove, func() string {
			return fmt.Sprintf("monitor.recreate %q is new: the monitor %s was created for %q", tok, where, o.ct.Rebuild)
		})
		p.add(Action{Kind: FenceMonitor, Node: "monitor", VM: o.vm, Trigger: "monitor-recreate", Disruptive: true, Evidence: ev,
			Fenced: FencedName(p.c, o.ct),
			Reason: fmt.Sprintf("monitor.recreate %q asks for a new monitor on %s: the old one %s is fenced first (restart policy no, stopped, renamed %s, its data kept), "+
				"so no keeper follows two monitors; the primary keeps serving, and no failover can happen until the new monitor has the nodes", tok, p.c.Monitor.VM, where, FencedName(p.c, o.ct))})
	}
	return true
}

// monitorPortTaken names a monitor container of another cluster, not
// fenced, that listens on the desired monitor's VM and port ("" when
// none): the new monitor could not listen there.
func (p *planner) monitorPortTaken() string {
	vm := p.vm(p.c.Monitor.VM)
	if vm == nil {
		return ""
	}
	port := strconv.Itoa(p.c.Monitor.Port)
	for _, ct := range vm.Containers {
		if ct.Role != observe.RoleMonitor || ct.Cluster == p.c.Name || Fenced(&ct) {
			continue
		}
		if i := slices.Index(ct.Command, "--pgport"); i >= 0 && i+1 < len(ct.Command) && ct.Command[i+1] == port {
			return fmt.Sprintf("container %s of cluster %q (%s)", ct.Name, ct.Cluster, ct.State)
		}
	}
	return ""
}

// keeperPrimary reports whether a keeper's state is one of a primary's.
func keeperPrimary(k *observe.Keeper) bool {
	switch k.CurrentRole {
	case "single", "primary", "wait_primary", "join_primary", "apply_settings":
		return true
	}
	return false
}

// monitorHost is the host:port a monitor URI names ("" when it names none).
func monitorHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return u.Host
}

// moving is a node whose keeper does not follow the desired monitor yet.
type moving struct {
	n  *desired.Node
	ct *observe.Container
	k  *observe.Keeper
}

// planNodeMoves plans moving the nodes to the desired monitor: disable the
// old monitor on each node that still follows it (secondaries first, the
// primary last), then enable the new one on the primary, and once it is
// registered on each secondary in turn. It returns false while a node is
// still to move: the rest of the cluster's plan waits for it.
func (p *planner) planNodeMoves() bool {
	want := monitorHost(MonitorURI(p.st, p.c))
	mon, _ := p.monitorObjects()
	var old, disabled []moving
	for _, n := range p.desiredNodes() {
		if !p.vmReached(n.VM) || p.monitorNode(n.Name) != nil {
			continue
		}
		ct, _ := p.container(n.VM, n.Name)
		if ct == nil || ct.Keeper == nil || ct.Keeper.Monitor == "" {
			continue
		}
		k := ct.Keeper
		// A node whose container does not run is not moved: a keeper
		// that starts again without a monitor runs PostgreSQL as its
		// stale state says, maybe as a second primary. Without a
		// registration it is the rest of a lost node, which the node's
		// own planning re-clones once the others have moved.
		if ct.State != "running" {
			p.pass(n.Name, GuardMonitorMove, func() string {
				return fmt.Sprintf("%s's container is %s: it is not moved to the new monitor", n.Name, ct.State)
			})
			continue
		}
		switch {
		case k.MonitorDisabled():
			disabled = append(disabled, moving{n, ct, k})
		case monitorHost(k.Monitor) != want:
			old = append(old, moving{n, ct, k})
		case k.NodeID > 0 && (mon == nil && p.planned(CreateMonitor, "monitor") || mon != nil && !mon.StartedAt.IsZero() && ct.StartedAt.Before(mon.StartedAt)):
			// At the desired monitor's address, but registered (it holds a
			// node id) before that monitor's container started (or before
			// the one this plan creates), and unknown to it: the earlier
			// monitor at this address, whose data was lost. A node
			// created since registers after.
			old = append(old, moving{n, ct, k})
		}
	}
	if len(old) == 0 && len(disabled) == 0 {
		return true
	}
	all := append(slices.Clone(old), disabled...)
	var primaries []string
	for _, m := range all {
		if keeperPrimary(m.k) {
			primaries = append(primaries, m.n.Name)
		}
	}
	for _, on := range p.nodes {
		if isPrimary(on) {
			primaries = append(primaries, on.Name)
		}
	}
	slices.Sort(primaries)
	if len(primaries) != 1 {
		p.block("monitor", GuardMonitorMove, fmt.Sprintf("moving the nodes to the new monitor needs exactly one primary, the first to register; the keepers' states show %d (%s)",
			len(primaries), strings.Join(primaries, ", ")))
		return false
	}
	primary := primaries[0]
	p.pass("monitor", GuardMonitorMove, func() string { return primary + " is the one primary: it registers first" })
	// The nodes are in name order; the primary goes last to disable, first
	// to enable.
	primaryLast := func(ms []moving) {
		slices.SortStableFunc(ms, func(a, b moving) int {
			return map[bool]int{false: 0, true: 1}[a.n.Name == primary] - map[bool]int{false: 0, true: 1}[b.n.Name == primary]
		})
	}
	uri := MonitorURI(p.st, p.c)
	primaryLast(old)
	for _, m := range old {
		p.add(Action{Kind: DisableMonitor, Node: m.n.Name, VM: m.n.VM, Trigger: "monitor-recreate", Evidence: keeperEvidence(m),
			Reason: fmt.Sprintf("%s's keeper follows %s, not the new monitor: disabled first on every node, the primary last (pg_autoctl disable monitor --force; PostgreSQL keeps running)",
				m.n.Name, monitorHost(m.k.Monitor))})
	}
	if on := p.monitorNode(primary); on != nil {
		// Registered: the standbys follow once it reports as a primary
		// and its health checks pass.
		until := &Condition{Node: primary, States: []string{"single", "wait_primary", "primary"}, Timeout: Duration(NodeJoinTimeout)}
		if !until.Satisfied(p.c.Name, p.obs) {
			p.add(Action{Kind: Wait, Node: primary, VM: p.nodeVM(primary), Trigger: "monitor-recreate", Until: until,
				Reason: primary + " registered with the new monitor as the primary: the standbys follow once it reports as one and is healthy (" + p.why(on) + ")"})
		}
	}
	slices.SortStableFunc(all, func(a, b moving) int { return strings.Compare(a.n.Name, b.n.Name) })
	primaryLast(all)
	if all[len(all)-1].n.Name == primary {
		all = append(all[len(all)-1:], all[:len(all)-1]...) // the primary first
	}
	for _, m := range all {
		p.add(Action{Kind: EnableMonitor, Node: m.n.Name, VM: m.n.VM, Trigger: "monitor-recreate", Settings: map[string]string{"monitor": uri, "recreate": p.c.Monitor.Recreate}, Evidence: keeperEvidence(m),
			Reason: fmt.Sprintf("%s registers with the new monitor on %s under its name and node id %d (pg_autoctl enable monitor)%s",
				m.n.Name, p.c.Monitor.VM, m.k.NodeID, map[bool]string{true: ", first: it is the primary", false: ", after the primary"}[m.n.Name == primary])})
		states := []string{"secondary"}
		if m.n.Name == primary {
			states = []string{"single", "wait_primary", "primary"}
		}
		p.add(Action{Kind: Wait, Node: m.n.Name, VM: m.n.VM, Trigger: "monitor-recreate", Reason: m.n.Name + " must be registered with the new monitor before the next node moves",
			Until: &Condition{Node: m.n.Name, States: states, Timeout: Duration(NodeJoinTimeout)}})
	}
	p.block("monitor", GuardInFlight, "every other change of this cluster waits until its nodes follow the new monitor")
	return false
}

func (p *planner) nodeVM(name string) string {
	for _, n := range p.c.Nodes {
		if n.Name == name {
			return n.VM
		}
	}
	return ""
}

// keeperEvidence says what a moving node's keeper showed, and says so when
// it was in another state than its last monitor had assigned.
func keeperEvidence(m moving) []string {
	ev := []string{fmt.Sprintf("%s's pg_autoctl.cfg names monitor %s; pg_autoctl.state: node id %d, %s, assigned %s",
		m.n.Name, orDisabled(m.k.Monitor), m.k.NodeID, m.k.CurrentRole, m.k.AssignedRole)}
	if m.k.CurrentRole != m.k.AssignedRole {
		ev = append(ev, fmt.Sprintf("%s's keeper is in %s, not in the %s its last monitor assigned: it registers as what its PostgreSQL is (a primary if not in recovery)",
			m.n.Name, m.k.CurrentRole, m.k.AssignedRole))
	}
	return ev
}

func orDisabled(uri string) string {
	if uri == observe.KeeperMonitorDisabled {
		return "none (disabled)"
	}
	if h := monitorHost(uri); h != "" {
		return h
	}
	return uri
}

// specCurrent reports whether node n's container is as its spec asks. A
// container created for an earlier monitor (its command's --monitor names
// it) is current once the node is registered with the desired monitor,
// which its keeper then follows: pg_autoctl reads the monitor from its
// config once the node exists, and replacing every container only to
// rewrite that argument would cost a switchover. A container re-created
// later is created with the desired monitor.
func (p *planner) specCurrent(n *desired.Node, ct *observe.Container) bool {
	spec := p.nodeSpec(n)
	if ct.SpecHash == spec.Labels[observe.LabelSpecHash] {
		return true
	}
	if p.monitorNode(n.Name) == nil {
		return false
	}
	had := ""
	for i, a := range ct.Command {
		if a == "--monitor" && i+1 < len(ct.Command) {
			had = ct.Command[i+1]
		}
	}
	if had == "" {
		return false
	}
	s := spec // Hash leaves the labels it reads unchanged
	s.Command = slices.Clone(spec.Command)
	for i, a := range s.Command {
		if a == "--monitor" && i+1 < len(s.Command) {
			s.Command[i+1] = had
		}
	}
	return s.Hash() == ct.SpecHash
}
