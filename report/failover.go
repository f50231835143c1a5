package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
)

// The kinds of Failover.
const (
	KindFailover   = "failover"   // the old primary was marked unhealthy first
	KindSwitchover = "switchover" // it did not: maintenance, perform_failover, remove_node
)

// Failover is one change of primary that the monitor's events show. Its
// times are the monitor's event times, so it says when the monitor acted,
// not when writes really stopped: a primary that died stopped taking writes
// before the monitor noticed (see Unhealthy).
type Failover struct {
	Kind string `json:"kind"`
	From string `json:"from"`
	// To is the new primary; empty while none has reported yet.
	To string `json:"to,omitempty"`
	// Start is when the monitor assigned the old primary a state that
	// takes no writes (draining, demote_timeout, prepare_maintenance, ...).
	Start time.Time `json:"start"`
	// End is when the new primary reported a writable state (wait_primary
	// or primary, usually); zero while in progress.
	End time.Time `json:"end,omitzero"`
	// Unhealthy is when the monitor last marked the old primary unhealthy
	// before Start (zero when the events given do not show it).
	Unhealthy time.Time `json:"unhealthy,omitzero"`
	// WritesUnavailableSeconds is End - Start (0 while in progress).
	WritesUnavailableSeconds float64 `json:"writes_unavailable_seconds,omitempty"`
}

// Unavailable is End - Start, or 0 while in progress.
func (f Failover) Unavailable() time.Duration {
	if f.End.IsZero() {
		return 0
	}
	return f.End.Sub(f.Start)
}

func (f Failover) String() string {
	at := f.Start.UTC().Format("2006-01-02 15:04:05Z")
	var b strings.Builder
	if f.End.IsZero() {
		fmt.Fprintf(&b, "%s from %s in progress since %s: no new primary has reported yet", f.Kind, f.From, at)
	} else {
		fmt.Fprintf(&b, "%s %s -> %s at %s: writes unavailable %s by the monitor's clock", f.Kind, f.From, f.To, at, f.Unavailable().Round(100*time.Millisecond))
	}
	if !f.Unhealthy.IsZero() {
		fmt.Fprintf(&b, " (%s marked unhealthy %s before)", f.From, f.Start.Sub(f.Unhealthy).Round(100*time.Millisecond))
	}
	return b.String()
}

// Failovers reads the changes of primary from a formation's events, oldest
// first. One starts when an event shows the primary (the last node seen
// reporting and assigned writable states) reporting a writable state while
// assigned one that is not: told to stop taking writes. Before any primary
// is seen, only the first such assignment (draining, prepare_maintenance)
// starts one. It is a failover when the monitor had marked the old primary
// unhealthy, or says so in the event. It ends at the first event in which another node reports
// a writable state, the new primary. If the old primary is assigned a
// writable state again first, it kept its role and nothing is recorded. A
// dead primary's last report stays writable: its later events (demoted,
// marked healthy again) start nothing, since it is no longer the primary.
// A change whose start is older than the events given is not seen; one not
// ended yet is last, with no To.
func Failovers(events []observe.Event) []Failover {
	evs := append([]observe.Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID })
	key := func(e observe.Event) string {
		if e.NodeID != 0 {
			return fmt.Sprint(e.NodeID)
		}
		return e.NodeName
	}
	unhealthy := map[string]time.Time{}
	var (
		out     = []Failover{}
		cur     *Failover
		from    string // key of cur's old primary
		primary string // key of the primary, "" until one is seen
	)
	for _, e := range evs {
		k := key(e)
		switch {
		case strings.Contains(e.Description, " is marked as unhealthy"):
			unhealthy[k] = e.Time
		case strings.Contains(e.Description, " is marked as healthy"):
			delete(unhealthy, k)
		}
		switch {
		case cur == nil && Writable(e.Reported) && Writable(e.Assigned):
			primary = k
		case cur == nil && Writable(e.Reported) && e.Assigned != "" && !Writable(e.Assigned) &&
			(primary == k || primary == "" && firstStep[e.Assigned]):
			cur = &Failover{Kind: KindSwitchover, From: e.NodeName, Start: e.Time}
			from = k
			if t, ok := unhealthy[k]; ok {
				cur.Kind, cur.Unhealthy = KindFailover, t
			} else if strings.Contains(e.Description, "became unhealthy") {
				cur.Kind = KindFailover
			}
		case cur != nil && k == from && Writable(e.Assigned):
			cur = nil
		case cur != nil && k != from && Writable(e.Reported):
			cur.To, cur.End = e.NodeName, e.Time
			primary = k
			cur.WritesUnavailableSeconds = cur.Unavailable().Seconds()
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// firstStep are the states the monitor first assigns a primary it takes
// writes from; a later one (demote_timeout, demoted) means the start came
// before.
var firstStep = map[string]bool{"draining": true, "prepare_maintenance": true}

// MergeEvents adds the events of a newer observation to those kept, by
// event id, and keeps the newest keep. Events are ordered by id. When the
// newest event offered is older than the newest kept, the monitor's event
// table was reset (a new monitor): the kept ones are dropped.
func MergeEvents(kept, fresh []observe.Event, keep int) []observe.Event {
	if len(fresh) == 0 {
		return kept
	}
	newest := func(evs []observe.Event) int64 {
		var n int64
		for _, e := range evs {
			n = max(n, e.ID)
		}
		return n
	}
	if len(kept) > 0 && newest(fresh) < newest(kept) {
		kept = nil
	}
	byID := make(map[int64]observe.Event, len(kept)+len(fresh))
	for _, e := range kept {
		byID[e.ID] = e
	}
	for _, e := range fresh {
		byID[e.ID] = e
	}
	out := make([]observe.Event, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}
