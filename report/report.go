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
// volumes no node owns, the monitor's recent events, the changes of
// primary they show, and what the plan leaves blocked.
type Cluster struct {
	Name    string `json:"name"`
	Monitor string `json:"monitor"` // "vm3:5432 running, answering"
	// Primaries counts the nodes the monitor shows as writable (see
	// IsPrimary); -1 when the monitor was not reached.
	Primaries int                 `json:"primaries"`
	Rows      []Row               `json:"nodes"`
	Orphans   []Orphan            `json:"orphaned_volumes"`
	Events    []observe.Event     `json:"events"`
	Failovers []Failover          `json:"failovers"`
	Blocked   []reconcile.Blocked `json:"blocked"`
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
	// LagBytes is how many WAL bytes the node's last reported LSN is
	// behind the primary's (see LagBytes); nil for the primary itself,
	// for a node without a readable LSN, and unless the cluster has
	// exactly one primary.
	LagBytes *int64 `json:"replication_lag_bytes,omitempty"`
	// LagSeconds is the node's replay lag as the one primary's
	// pg_stat_replication shows it (see observe.Standby); nil for the
	// primary, for a node the primary does not list, and when the
	// primary's server was not read.
	LagSeconds *float64 `json:"replication_lag_seconds,omitempty"`
	// Sync is the monitor's replication_quorum of a node that is not the
	// primary: "sync" when true (the node counts in the primary's
	// synchronous quorum), "async" when false; "-" for a primary or a
	// node the monitor does not know.
	Sync string `json:"sync"`
	// CandidatePriority is the monitor's candidate_priority (0: never
	// promoted); meaningful only when NodeID is not 0.
	CandidatePriority int    `json:"candidate_priority"`
	Health            string `json:"health"`
	InState           string `json:"time_in_state"`
}

// writable are the states in which a node's PostgreSQL accepts writes.
var writable = map[string]bool{
	"single": true, "primary": true, "wait_primary": true, "join_primary": true, "apply_settings": true,
}

// Writable reports whether a node in state (reported or assigned) accepts
// writes: single, primary, wait_primary, join_primary or apply_settings.
func Writable(state string) bool { return writable[state] }

// IsPrimary reports whether the monitor shows n as a primary: both its
// reported and its assigned state are writable.
func IsPrimary(n observe.Node) bool { return writable[n.ReportedState] && writable[n.AssignedState] }

// Primaries returns the nodes IsPrimary holds for, in order.
func Primaries(nodes []observe.Node) []observe.Node {
	var out []observe.Node
	for _, n := range nodes {
		if IsPrimary(n) {
			out = append(out, n)
		}
	}
	return out
}

// LagBytes is how far n's last reported LSN is behind prim's, in bytes. A
// node ahead of the primary's last report (reports are seconds apart)
// counts as 0; ok is false when either LSN is unreadable.
func LagBytes(prim, n observe.Node) (lag int64, ok bool) {
	p, ok1 := observe.ParseLSN(prim.LSN)
	l, ok2 := observe.ParseLSN(n.LSN)
	if !ok1 || !ok2 {
		return 0, false
	}
	return int64(p - min(p, l)), true
}

// ReplayLag is the replay lag in seconds of the node with id as the
// pg_stat_replication of prim's server shows it, read from prim's
// container in obs (see observe.Standby); ok is false when the server was
// not read, does not list the node, or does not know its lag.
func ReplayLag(obs *observe.Observation, cluster string, prim observe.Node, id int64) (seconds float64, ok bool) {
	for _, vm := range obs.VMs {
		for _, ct := range vm.Containers {
			if ct.Cluster != cluster || ct.Node != prim.Name || ct.Postgres == nil {
				continue
			}
			for _, sb := range ct.Postgres.Standbys {
				if sb.Name == observe.StandbyName(id) && sb.ReplayLagSeconds != nil {
					return *sb.ReplayLagSeconds, true
				}
			}
		}
	}
	return 0, false
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

// Build joins obs with st, cluster by cluster, and plans obs to list what
// is blocked. Orphaned volumes are not measured (see MeasureOrphans).
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
		cs := Cluster{Name: c.Name, Primaries: -1, Rows: []Row{}, Orphans: []Orphan{}, Events: mon.Events,
			Failovers: Failovers(mon.Events), Blocked: []reconcile.Blocked{}}
		if cs.Events == nil {
			cs.Events = []observe.Event{}
		}
		prims := Primaries(mon.Nodes)
		if mon.Reached {
			cs.Primaries = len(prims)
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
				// By name: a VM may keep fenced monitors of the cluster.
				if ct.Cluster == c.Name && ct.Node == node && ct.Name == reconcile.ContainerName(c.Name, node) {
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
			row := Row{Node: name, Where: fmt.Sprintf("%s:%d", vm, port), Reported: "-", Assigned: "-", TimelineLSN: "-", Sync: "-", Health: "-", InState: "-"}
			row.Container, row.Image = container(vm, name)
			for _, n := range mon.Nodes {
				if n.Name == name {
					row.NodeID = n.ID
					row.Reported, row.Assigned, row.Health = n.ReportedState, n.AssignedState, n.Health
					row.TimelineLSN = fmt.Sprintf("%d:%s", n.Timeline, n.LSN)
					row.CandidatePriority = n.CandidatePriority
					if !IsPrimary(n) {
						row.Sync = "async"
						if n.ReplicationQuorum {
							row.Sync = "sync"
						}
					}
					if len(prims) == 1 && n.Name != prims[0].Name {
						if lag, ok := LagBytes(prims[0], n); ok {
							row.LagBytes = &lag
						}
						if lag, ok := ReplayLag(obs, c.Name, prims[0], n.ID); ok {
							row.LagSeconds = &lag
						}
					}
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

// WriteText prints the report for a terminal.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Observed at %s\n", r.ObservedAt.UTC().Format(time.RFC3339))
	for _, u := range r.Unreachable {
		fmt.Fprintf(&b, "NOT REACHED: %s\n", u)
	}
	for _, c := range r.Clusters {
		fmt.Fprintf(&b, "\ncluster %s\nmonitor %s\n\n", c.Name, c.Monitor)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tID\tVM:PORT\tCONTAINER\tIMAGE\tREPORTED\tASSIGNED\tTL:LSN\tLAG\tREPLAY LAG\tSYNC\tPRIO\tHEALTH\tIN STATE")
		for _, row := range c.Rows {
			id, prio := "-", "-"
			if row.NodeID != 0 {
				id, prio = fmt.Sprint(row.NodeID), fmt.Sprint(row.CandidatePriority)
			}
			img := row.Image
			if img == "" {
				img = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Node, id, row.Where, row.Container, img,
				row.Reported, row.Assigned, row.TimelineLSN, row.Lag(), row.ReplayLag(), row.Sync, prio, row.Health, row.InState)
		}
		tw.Flush()
		switch {
		case c.Primaries > 1:
			fmt.Fprintf(&b, "MORE THAN ONE PRIMARY: %d nodes are writable\n", c.Primaries)
		case c.Primaries == 0 && c.registered():
			b.WriteString("NO PRIMARY: the monitor shows no writable node\n")
		}
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
		for _, f := range c.Failovers {
			fmt.Fprintf(&b, "%s\n", f)
		}
		if len(c.Events) > 0 {
			b.WriteString("\nrecent monitor events:\n")
			for _, e := range c.RecentEvents() {
				fmt.Fprintf(&b, "  %s  %-8s %s\n", e.Time.UTC().Format("15:04:05"), e.NodeName, e.Description)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ShownEvents is how many of the newest events status and the page show.
const ShownEvents = 20

// RecentEvents are the newest ShownEvents of c.Events, oldest first.
func (c Cluster) RecentEvents() []observe.Event {
	return c.Events[max(0, len(c.Events)-ShownEvents):]
}

// registered reports whether the monitor knows any node of c.
func (c Cluster) registered() bool {
	for _, r := range c.Rows {
		if r.NodeID != 0 {
			return true
		}
	}
	return false
}

// Lag prints LagBytes in binary units ("-" when unknown).
func (r Row) Lag() string {
	if r.LagBytes == nil {
		return "-"
	}
	return HumanBytes(*r.LagBytes)
}

// ReplayLag prints LagSeconds ("-" when unknown): milliseconds under a
// second, else seconds with one decimal.
func (r Row) ReplayLag() string {
	switch {
	case r.LagSeconds == nil:
		return "-"
	case *r.LagSeconds < 1:
		return fmt.Sprintf("%d ms", int64(*r.LagSeconds*1000))
	default:
		return fmt.Sprintf("%.1f s", *r.LagSeconds)
	}
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
