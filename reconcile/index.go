package reconcile

// The lookups every cluster's planner shares: the observation's VMs by
// name, and its containers and volumes by VM, cluster and node.

import (
	"sort"

	"github.com/pgaf-gitops/reconciler/observe"
)

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

// indexObservation maps the observation's VMs by name and indexes their
// containers and volumes.
func indexObservation(obs *observe.Observation) (map[string]*observe.VM, *index) {
	vms := map[string]*observe.VM{}
	idx := &index{objects: map[objectKey]*objects{}, byCluster: map[string][]objectKey{}}
	for i := range obs.VMs {
		vm := &obs.VMs[i]
		vms[vm.Name] = vm
		for j := range vm.Containers {
			if Fenced(&vm.Containers[j]) {
				continue // an earlier monitor, kept: no member's container
			}
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
	return vms, idx
}
