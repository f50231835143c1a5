package observe

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
)

// Options bound an observation.
type Options struct {
	// Timeout bounds each VM's and each monitor's observation (default 10s).
	Timeout time.Duration
	// Now is the observation's clock (default time.Now).
	Now func() time.Time
}

// timeout is opts.Timeout, or its default.
func (opts Options) timeout() time.Duration {
	if opts.Timeout <= 0 {
		return 10 * time.Second
	}
	return opts.Timeout
}

// Observe takes one observation of everything the desired state names:
// every VM through d and every cluster's monitor over SQL, all in parallel,
// each bounded by opts.Timeout. Nothing unreachable is an error: it is
// recorded in the observation.
func Observe(ctx context.Context, st *desired.State, d Dialer, opts Options) *Observation {
	opts.Timeout = opts.timeout()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	obs := &Observation{Version: SchemaVersion, Time: opts.Now().UTC().Truncate(time.Millisecond)}
	names := make([]string, 0, len(st.VMs))
	for _, vm := range st.VMs {
		names = append(names, vm.Name)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		obs.VMs = ObserveVMs(ctx, d, names, opts.Timeout)
	}()
	obs.Clusters = make([]Cluster, len(st.Clusters))
	for i := range st.Clusters {
		c := &st.Clusters[i]
		obs.Clusters[i].Name = c.Name
		wg.Add(1)
		go func() {
			defer wg.Done()
			obs.Clusters[i].Monitor = observeClusterMonitor(ctx, st, c, opts.Timeout)
		}()
	}
	wg.Wait()
	sort.Slice(obs.Clusters, func(i, j int) bool { return obs.Clusters[i].Name < obs.Clusters[j].Name })
	readKeepers(ctx, d, obs, opts.Timeout)
	return obs
}

// ObserveClusterMonitor reads the monitor of the named cluster alone,
// bounded by opts.Timeout: what a wait polls between full observations. A
// cluster st does not name gives a monitor not reached.
func ObserveClusterMonitor(ctx context.Context, st *desired.State, cluster string, opts Options) Monitor {
	for i := range st.Clusters {
		if st.Clusters[i].Name == cluster {
			return observeClusterMonitor(ctx, st, &st.Clusters[i], opts.timeout())
		}
	}
	return Monitor{Nodes: []Node{}, Error: "cluster " + cluster + " is not in the desired state"}
}

func observeClusterMonitor(ctx context.Context, st *desired.State, c *desired.Cluster, timeout time.Duration) Monitor {
	mctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return ObserveMonitor(mctx, MonitorConnStringFor(st, c), c.Formation)
}

// MonitorConnStringFor is the connection string of a cluster's monitor as
// the reconciler reaches it: the monitor VM's address and port, user
// autoctl_node.
func MonitorConnStringFor(st *desired.State, c *desired.Cluster) string {
	host := c.Monitor.VM
	for _, vm := range st.VMs {
		if vm.Name == c.Monitor.VM {
			host = vm.Address
		}
	}
	return MonitorConnString(host, c.Monitor.Port, c.SSLMode())
}

// Merge joins two observations of parts of st, newer taking precedence:
// each cluster and VM st names, from newer when it has it, else from
// older; the time is newer's. Apply observes each cluster on its own
// (actuators.ApplyEach); what shows every cluster merges their
// observations. A nil older is nothing observed yet.
func Merge(st *desired.State, older, newer *Observation) *Observation {
	if older == nil {
		older = &Observation{}
	}
	out := &Observation{Version: newer.Version, Time: newer.Time, VMs: []VM{}, Clusters: []Cluster{}}
	for _, vm := range st.VMs {
		for _, o := range [][]VM{newer.VMs, older.VMs} {
			if i := slices.IndexFunc(o, func(v VM) bool { return v.Name == vm.Name }); i >= 0 {
				out.VMs = append(out.VMs, o[i])
				break
			}
		}
	}
	for _, c := range st.Clusters {
		for _, o := range [][]Cluster{newer.Clusters, older.Clusters} {
			if i := slices.IndexFunc(o, func(x Cluster) bool { return x.Name == c.Name }); i >= 0 {
				out.Clusters = append(out.Clusters, o[i])
				break
			}
		}
	}
	sort.Slice(out.VMs, func(i, j int) bool { return out.VMs[i].Name < out.VMs[j].Name })
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Name < out.Clusters[j].Name })
	return out
}
