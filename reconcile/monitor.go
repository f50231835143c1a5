package reconcile

// Planning of the monitor: its container and its failover settings.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgaf-gitops/reconciler/observe"
)

func (p *planner) planMonitor() bool {
	vmName := p.c.Monitor.VM
	spec := MonitorSpec(p.st, p.c)
	if !p.vmReached(vmName) {
		if !p.monitorUp {
			p.block("monitor", GuardVMUnobserved, p.vmWhy(vmName)+"; nothing is planned for this cluster until the monitor is observed")
			return false
		}
		p.pass("monitor", GuardVMUnobserved, func() string { return p.vmWhy(vmName) + ", but the monitor answers; its container is not checked" })
		return true // the monitor answers; its container cannot be checked
	}
	p.pass("monitor", GuardVMUnobserved, func() string { return vmName + " was reached" })
	ct, vol := p.monitorObjects()
	if ct == nil {
		// Checked before anything is fenced: an old monitor is never
		// stopped for a new one that could not listen.
		if other := p.monitorPortTaken(); other != "" {
			p.block("monitor", GuardMonitorMove, fmt.Sprintf("%s already runs a monitor on port %d: %s; the monitor of cluster %s is not created there", vmName, p.c.Monitor.Port, other, p.c.Name))
			return false
		}
	}
	if !p.planFence() {
		return false
	}
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
		p.pass("monitor", GuardMonitorLost, func() string {
			switch {
			case ev != nil:
				return strings.Join(ev, "; ")
			case vol != nil:
				return "the monitor's volume " + vol.Name + " remains"
			}
			return "no node holds state registered with an earlier monitor"
		})
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
	p.pass("monitor", GuardMonitorUnobserved, func() string {
		if p.oc != nil && p.oc.Monitor.Reached {
			return "the monitor answers"
		}
		return "the monitor will answer after the steps planned above"
	})
	return true
}

// monitorObjects are the desired monitor's container (nil when absent or
// about to be fenced) and volume on its VM, found by name: a VM may keep
// fenced monitors and the volumes of earlier monitors.
func (p *planner) monitorObjects() (*observe.Container, *observe.Volume) {
	vm := p.vm(p.c.Monitor.VM)
	if vm == nil {
		return nil, nil
	}
	var ct *observe.Container
	var vol *observe.Volume
	name, want := ContainerName(p.c.Name, "monitor"), MonitorVolumeName(p.c)
	for i := range vm.Containers {
		if c := &vm.Containers[i]; c.Cluster == p.c.Name && c.Name == name && !slices.ContainsFunc(p.old, func(o oldMonitor) bool { return o.ct == c }) {
			ct = c
		}
	}
	for i := range vm.Volumes {
		if v := &vm.Volumes[i]; v.Cluster == p.c.Name && v.Name == want {
			vol = v
		}
	}
	return ct, vol
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
