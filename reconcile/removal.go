package reconcile

// Planning of removals: nodes no longer desired, and the retire sequence
// shared by removal and wipe-and-re-clone.

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

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
		if r.vm == "" && r.on != nil {
			p.dropUndeclared(r)
			continue
		}
		mode := retireRemove
		if p.c.RemovedNodeData == "delete" {
			mode = retireRemoveData
		}
		p.retire(r.name, r.vm, r.port, mode, "removed", []string{fmt.Sprintf("%s is not in the desired state", r.name)}, nil)
	}
}

// dropUndeclared drops from the monitor a removed node whose host is no
// VM of the desired state any more (the VM was removed in the same commit,
// for example because it is gone for good). Nothing on that machine can be
// reached, so its container cannot be stopped first: the monitor drops the
// node (without force, so pg_auto_failover orchestrates, then with force,
// as a keeper that is gone never reports "dropped"), and the container and
// volume left there are reported. The guards of every drop apply.
func (p *planner) dropUndeclared(r removed) {
	on := r.on
	where := net.JoinHostPort(on.Host, strconv.Itoa(on.Port))
	if !p.guardDestroy(r.name, on) {
		return
	}
	base := fmt.Sprintf("%s is removed (removed) and runs at %s, which is no VM of the desired state", r.name, where)
	ev := []string{fmt.Sprintf("%s is not in the desired state; the monitor has it at %s (%s/%s, health %s), a host no declared VM has", r.name, where, on.ReportedState, on.AssignedState, on.Health)}
	a := Action{Kind: RemoveNode, Node: r.name, NodeID: on.ID, Trigger: "removed", Disruptive: true, Destructive: true, Evidence: ev,
		Reason: base + ": remove it from the monitor without force, so pg_auto_failover orchestrates"}
	if on.AssignedState == "dropped" {
		a.Force, a.Reason = true, base+": remove it from the monitor with force (its keeper, out of reach, never reports dropped)"
	}
	if !p.add(a) {
		return
	}
	if !a.Force {
		p.follow(Action{Kind: RemoveNode, Node: r.name, NodeID: on.ID, Force: true, Trigger: "removed", Disruptive: true, Destructive: true,
			Reason: base + ": remove it from the monitor with force once it is dropped (its keeper, out of reach, never reports dropped)"})
	}
	p.notes = append(p.notes, fmt.Sprintf("node %s of cluster %s ran at %s, a host the desired state no longer declares: its container %s and volume %s there cannot be reached and are left behind; remove them by hand if that machine still exists",
		r.name, p.c.Name, where, ContainerName(p.c.Name, r.name), VolumeName(p.c.Name, r.name)))
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
	if !p.vmReached(vmName) {
		p.block(name, GuardVMUnobserved, fmt.Sprintf("%s must be dropped (%s) but %s: nothing is done until %s answers again. If %s is gone for good, remove it from vms in the desired state: %s is then dropped from the monitor alone, and what %s holds is reported as left behind",
			name, trigger, p.vmWhy(vmName), vmName, vmName, name, vmName))
		return
	}
	p.pass(name, GuardVMUnobserved, func() string { return vmName + " was reached" })
	if p.oc == nil || !p.oc.Monitor.Reached {
		p.block(name, GuardMonitorUnobserved, fmt.Sprintf("%s must be dropped (%s) but the monitor was not observed in this cycle", name, trigger))
		return
	}
	p.pass(name, GuardMonitorUnobserved, func() string { return "the monitor was observed in this cycle" })
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
	if !running { // guardDestroy checked a running one
		p.pass(name, GuardTargetPrimary, func() string {
			if on == nil {
				return name + " is not registered on the monitor"
			}
			return fmt.Sprintf("its container is not running and the monitor reports it as %s/%s", on.ReportedState, on.AssignedState)
		})
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
