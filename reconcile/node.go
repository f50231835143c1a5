package reconcile

// Planning of one desired node's lifecycle: create, start, replace, wait
// until it joined, and the wipe of a diverged or rebuilt node.

import (
	"fmt"
	"strings"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

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
	p.pass(n.Name, GuardVMUnobserved, func() string { return n.VM + " was reached" })
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
		p.pass(n.Name, GuardManualPolicy, func() string { return "the diverged policy is auto; evidence: " + strings.Join(ev, "; ") })
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
		p.pass(n.Name, GuardInFlight, func() string { return "the nodes before " + n.Name + " are settled, or will be" })
		p.add(Action{Kind: CreateNode, Node: n.Name, VM: n.VM, Trigger: trigger, Spec: &spec, Volume: spec.Volume, Reason: reason})
		p.waitNode(n, trigger, fmt.Sprintf("%s must register and finish its clone before the next change", n.Name))
		return true
	case on != nil && inMaintenance(on):
		p.planMaintenance(n, ct, on)
		return false
	case !p.specCurrent(n, ct):
		ev := []string{fmt.Sprintf("container %s image %s spec-hash %s, desired image %s spec-hash %s", ct.Name, ct.Image, ct.SpecHash, spec.Image, spec.Labels[observe.LabelSpecHash])}
		if on != nil && p.ready(on) && on.ReportedState == "secondary" {
			p.roll(n, on, true, "drift", fmt.Sprintf("%s's container differs from its spec; replaced on the same volume (same node id, same data)", n.Name), ev)
			return true
		}
		if !p.guardReplace(n.Name, whatReplace) {
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
