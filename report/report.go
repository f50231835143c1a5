// Package report joins the monitor's view and Docker's, per cluster: the
// table `reconciler status` prints and the service's status page shows.
package report

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// Report joins the monitor's view and Docker's, per cluster.
type Report struct {
	ObservedAt  time.Time `json:"observed_at"`
	Unreachable []string  `json:"unreachable"`
	Clusters    []Cluster `json:"clusters"`
}

// Cluster is one desired cluster: its monitor, one row per node, the
// volumes no node owns, the monitor's recent events and what the plan
// leaves blocked.
type Cluster struct {
	Name    string              `json:"name"`
	Monitor string              `json:"monitor"` // "vm3:5432 running, answering"
	Rows    []Row               `json:"nodes"`
	Orphans []Orphan            `json:"orphaned_volumes"`
	Events  []observe.Event     `json:"events"`
	Blocked []reconcile.Blocked `json:"blocked"`
}

// Row is one node as the monitor and Docker show it.
type Row struct {
	Node        string `json:"node"`
	NodeID      int64  `json:"node_id,omitempty"`
	Where       string `json:"vm_port"`
	Container   string `json:"container"`
	Image       string `json:"image"`
	Reported    string `json:"reported_state"`
	Assigned    string `json:"assigned_state"`
	TimelineLSN string `json:"timeline_lsn"`
	Health      string `json:"health"`
	InState     string `json:"time_in_state"`
}

// Orphan is a volume of the cluster that no desired node or container owns.
type Orphan struct {
	VM        string `json:"vm"`
	Volume    string `json:"volume"`
	Node      string `json:"node"`
	SizeBytes int64  `json:"size_bytes"`
	// SizeError says why the size is unknown (SizeBytes -1).
	SizeError string `json:"size_error,omitempty"`
	image     string // the cluster's image, which measures it
}

// MeasureOrphans fills in the size of each orphaned volume, measured in
// parallel on its VM (see observe.VolumeSize), each within timeout.
func MeasureOrphans(ctx context.Context, r observe.Runner, rep *Report, timeout time.Duration) {
	var wg sync.WaitGroup
	for ci := range rep.Clusters {
		for oi := range rep.Clusters[ci].Orphans {
			o := &rep.Clusters[ci].Orphans[oi]
			if o.SizeBytes >= 0 {
				continue
			}
			wg.Go(func() {
				mctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				n, err := observe.VolumeSize(mctx, r, o.VM, o.Volume, o.image)
				o.SizeBytes = n
				if err != nil {
					o.SizeError = err.Error()
				}
			})
		}
	}
	wg.Wait()
}

func Build(st *desired.State, obs *observe.Observation) Report {
	r := Report{ObservedAt: obs.Time, Unreachable: []string{}}
	vms := map[string]*observe.VM{}
	for i := range obs.VMs {
		vm := &obs.VMs[i]
		vms[vm.Name] = vm
		if !vm.Reached {
			r.Unreachable = append(r.Unreachable, fmt.Sprintf("VM %s: %s", vm.Name, vm.Error))
		}
	}
	plan := reconcile.Plan(st, obs)
	for ci := range st.Clusters {
		c := &st.Clusters[ci]
		var mon observe.Monitor
		for _, oc := range obs.Clusters {
			if oc.Name == c.Name {
				mon = oc.Monitor
			}
		}
		if !mon.Reached {
			r.Unreachable = append(r.Unreachable, fmt.Sprintf("monitor of %s: %s", c.Name, mon.Error))
		}
		cs := Cluster{Name: c.Name, Rows: []Row{}, Orphans: []Orphan{}, Events: mon.Events, Blocked: []reconcile.Blocked{}}
		if cs.Events == nil {
			cs.Events = []observe.Event{}
		}
		for _, cp := range plan.Clusters {
			if cp.Name == c.Name {
				cs.Blocked = cp.Blocked
			}
		}
		container := func(vm, node string) (state, image string) {
			v := vms[vm]
			if v == nil || !v.Reached {
				return "unknown", ""
			}
			for _, ct := range v.Containers {
				if ct.Cluster == c.Name && ct.Node == node {
					return ct.State, ct.Image
				}
			}
			return "absent", ""
		}
		ms, _ := container(c.Monitor.VM, "monitor")
		answer := "not answering"
		if mon.Reached {
			answer = "answering, pgautofailover " + mon.Version
		}
		cs.Monitor = fmt.Sprintf("%s:%d container %s, %s", c.Monitor.VM, c.Monitor.Port, ms, answer)
		seen := map[string]bool{}
		addRow := func(name, vm string, port int) {
			seen[name] = true
			row := Row{Node: name, Where: fmt.Sprintf("%s:%d", vm, port), Reported: "-", Assigned: "-", TimelineLSN: "-", Health: "-", InState: "-"}
			row.Container, row.Image = container(vm, name)
			for _, n := range mon.Nodes {
				if n.Name == name {
					row.NodeID = n.ID
					row.Reported, row.Assigned, row.Health = n.ReportedState, n.AssignedState, n.Health
					row.TimelineLSN = fmt.Sprintf("%d:%s", n.Timeline, n.LSN)
					if !n.StateChangeTime.IsZero() {
						row.InState = obs.Time.Sub(n.StateChangeTime).Round(time.Second).String()
					}
				}
			}
			cs.Rows = append(cs.Rows, row)
		}
		for _, n := range c.Nodes {
			addRow(n.Name, n.VM, n.Port)
		}
		for _, n := range mon.Nodes {
			if !seen[n.Name] {
				addRow(n.Name+" (not desired)", vmByAddress(st, n.Host), n.Port)
			}
		}
		for _, vm := range obs.VMs {
			for _, v := range vm.Volumes {
				if v.Cluster != c.Name || v.Node == "monitor" {
					continue
				}
				if !hasNode(c, v.Node) && !hasContainer(&vm, c.Name, v.Node) {
					cs.Orphans = append(cs.Orphans, Orphan{VM: vm.Name, Volume: v.Name, Node: v.Node, SizeBytes: v.SizeBytes, image: c.Image})
				}
			}
		}
		r.Clusters = append(r.Clusters, cs)
	}
	sort.Strings(r.Unreachable)
	return r
}

func hasNode(c *desired.Cluster, name string) bool {
	for _, n := range c.Nodes {
		if n.Name == name {
			return true
		}
	}
	return false
}

func hasContainer(vm *observe.VM, cluster, node string) bool {
	for _, ct := range vm.Containers {
		if ct.Cluster == cluster && ct.Node == node {
			return true
		}
	}
	return false
}

func vmByAddress(st *desired.State, host string) string {
	for _, vm := range st.VMs {
		if vm.Address == host {
			return vm.Name
		}
	}
	return host
}

func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Observed at %s\n", r.ObservedAt.UTC().Format(time.RFC3339))
	for _, u := range r.Unreachable {
		fmt.Fprintf(&b, "NOT REACHED: %s\n", u)
	}
	for _, c := range r.Clusters {
		fmt.Fprintf(&b, "\ncluster %s\nmonitor %s\n\n", c.Name, c.Monitor)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tID\tVM:PORT\tCONTAINER\tIMAGE\tREPORTED\tASSIGNED\tTL:LSN\tHEALTH\tIN STATE")
		for _, row := range c.Rows {
			id := "-"
			if row.NodeID != 0 {
				id = fmt.Sprint(row.NodeID)
			}
			img := row.Image
			if img == "" {
				img = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Node, id, row.Where, row.Container, img, row.Reported, row.Assigned, row.TimelineLSN, row.Health, row.InState)
		}
		tw.Flush()
		for _, o := range c.Orphans {
			size := "size unknown"
			if o.SizeBytes >= 0 {
				size = fmt.Sprintf("%d bytes, %s", o.SizeBytes, HumanBytes(o.SizeBytes))
			} else if o.SizeError != "" {
				size = "size unknown: " + o.SizeError
			}
			fmt.Fprintf(&b, "orphaned volume %s on %s (node %s, %s): kept; delete it by hand or set removed_node_data: delete\n", o.Volume, o.VM, o.Node, size)
		}
		for _, bl := range c.Blocked {
			fmt.Fprintf(&b, "%s %s: %s\n", bl.Label(), bl.Guard, bl.Reason)
		}
		if len(c.Events) > 0 {
			b.WriteString("\nrecent monitor events:\n")
			for _, e := range c.Events {
				fmt.Fprintf(&b, "  %s  %-8s %s\n", e.Time.UTC().Format("15:04:05"), e.NodeName, e.Description)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// HumanBytes prints n in binary units ("1.5 GiB").
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
