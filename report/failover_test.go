package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgaf-gitops/reconciler/observe"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// ev is one event of node n (named "node<n>", id n) at t0+secs.
func ev(id int64, secs float64, n int64, reported, assigned, desc string) observe.Event {
	return observe.Event{ID: id, Time: t0.Add(time.Duration(secs * float64(time.Second))), NodeID: n, NodeName: fmt.Sprintf("node%d", n),
		Reported: reported, Assigned: assigned, Description: desc}
}

func unhealthy(id int64, secs float64, n int64, reported, assigned string) observe.Event {
	return ev(id, secs, n, reported, assigned, fmt.Sprintf(`Node node %d "node%d" (10.0.0.1%d:5432) is marked as unhealthy by the monitor`, n, n, n))
}

func healthy(id int64, secs float64, n int64, reported, assigned string) observe.Event {
	return ev(id, secs, n, reported, assigned, fmt.Sprintf(`Node node %d "node%d" (10.0.0.1%d:5432) is marked as healthy by the monitor`, n, n, n))
}

// powerCut is node1, primary, powered off and replaced by node2 with two
// standbys, in the order the monitor writes the events; node1's reported
// state stays primary (it never reports again) until it comes back.
func powerCut() []observe.Event {
	return []observe.Event{
		ev(1, -60, 1, "primary", "primary", `New state is reported by node 1 "node1" (10.0.0.11:5432): "primary"`),
		unhealthy(2, 0, 1, "primary", "primary"),
		ev(3, 0.2, 1, "primary", "draining", `Setting goal state of node 1 "node1" (10.0.0.11:5432) to draining after it became unhealthy.`),
		ev(4, 0.2, 2, "secondary", "report_lsn", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to report_lsn to find the failover candidate`),
		ev(5, 0.2, 3, "secondary", "report_lsn", `Setting goal state of node 3 "node3" (10.0.0.13:5432) to report_lsn to find the failover candidate`),
		ev(6, 1.0, 2, "report_lsn", "report_lsn", `New state is reported by node 2 "node2" (10.0.0.12:5432): "report_lsn"`),
		ev(7, 1.1, 2, "report_lsn", "prepare_promotion", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to prepare_promotion`),
		ev(8, 1.5, 2, "prepare_promotion", "stop_replication", `Setting goal state of node 1 "node1" (10.0.0.11:5432) to demote_timeout and node 2 "node2" (10.0.0.12:5432) to stop_replication after node 2 "node2" (10.0.0.12:5432) converged to prepare_promotion.`),
		ev(9, 1.5, 1, "primary", "demote_timeout", `Setting goal state of node 1 "node1" (10.0.0.11:5432) to demote_timeout and node 2 "node2" (10.0.0.12:5432) to stop_replication after node 2 "node2" (10.0.0.12:5432) converged to prepare_promotion.`),
		ev(10, 31.5, 2, "stop_replication", "wait_primary", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to wait_primary and node 1 "node1" (10.0.0.11:5432) to demoted after the demote timeout expired.`),
		ev(11, 31.5, 1, "primary", "demoted", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to wait_primary and node 1 "node1" (10.0.0.11:5432) to demoted after the demote timeout expired.`),
		ev(12, 32.1, 2, "wait_primary", "wait_primary", `New state is reported by node 2 "node2" (10.0.0.12:5432): "wait_primary"`),
		ev(13, 33, 2, "wait_primary", "primary", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to primary now that we have 1 healthy  secondary nodes in the quorum.`),
		ev(14, 33.2, 2, "primary", "primary", `New state is reported by node 2 "node2" (10.0.0.12:5432): "primary"`),
		// node1 powered on: still reported primary, assigned demoted.
		healthy(15, 300, 1, "primary", "demoted"),
		ev(16, 301, 1, "demoted", "demoted", `New state is reported by node 1 "node1" (10.0.0.11:5432): "demoted"`),
	}
}

// switchover is pg_autoctl perform switchover from node1 to node2 as the
// monitor logged it (pg_auto_failover 1.6, two standbys).
func switchover() []observe.Event {
	return []observe.Event{
		ev(1, 0, 1, "primary", "draining", `Setting goal state of node 1 "node1" (node1:5432) to draining and node 2 "node2" (node2:5432) to prepare_promotion after a user-initiated failover.`),
		ev(2, 0.1, 1, "draining", "draining", `New state is reported by node 1 "node1" (node1:5432): "draining"`),
		ev(3, 0.2, 1, "draining", "report_lsn", `Setting goal state of node 1 "node1" (node1:5432) to report_lsn`),
		ev(4, 6, 2, "report_lsn", "prepare_promotion", `Setting goal state of node 2 "node2" (node2:5432) to prepare_promotion`),
		ev(5, 6.5, 2, "prepare_promotion", "wait_primary", `Setting goal state of node 2 "node2" (node2:5432) to wait_primary`),
		ev(6, 7.1, 3, "report_lsn", "join_secondary", `Setting goal state of node 3 "node3" (node3:5432) to join_secondary after node 2 "node2" (node2:5432) got selected as the failover candidate.`),
		ev(7, 7.5, 2, "wait_primary", "wait_primary", `New state is reported by node 2 "node2" (node2:5432): "wait_primary"`),
		ev(8, 8, 2, "primary", "primary", `New state is reported by node 2 "node2" (node2:5432): "primary"`),
	}
}

func TestFailovers(t *testing.T) {
	secs := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name   string
		events []observe.Event
		want   []Failover
	}{
		{"none", nil, []Failover{}},
		{"power_cut_then_old_primary_back", powerCut(), []Failover{{Kind: KindFailover, From: "node1", To: "node2",
			Start: secs(0.2), End: secs(32.1), Unhealthy: secs(0), WritesUnavailableSeconds: 31.9}}},
		{"switchover", switchover(), []Failover{{Kind: KindSwitchover, From: "node1", To: "node2",
			Start: secs(0), End: secs(7.5), WritesUnavailableSeconds: 7.5}}},
		{"in_progress", powerCut()[:9], []Failover{{Kind: KindFailover, From: "node1", Start: secs(0.2), Unhealthy: secs(0)}}},
		{"events_out_of_order", reversed(switchover()), []Failover{{Kind: KindSwitchover, From: "node1", To: "node2",
			Start: secs(0), End: secs(7.5), WritesUnavailableSeconds: 7.5}}},
		// The start fell out of the monitor's newest events: not seen.
		{"start_not_in_the_events", powerCut()[5:], []Failover{}},
		// The window begins at the draining: the unhealthy mark is older.
		{"starts_at_draining", powerCut()[2:12], []Failover{{Kind: KindFailover, From: "node1", To: "node2",
			Start: secs(0.2), End: secs(32.1), WritesUnavailableSeconds: 31.9}}},
		// Healthy again before the switchover: not a failover.
		{"unhealthy_then_healthy_then_maintenance", []observe.Event{
			unhealthy(1, 0, 1, "primary", "primary"),
			healthy(2, 5, 1, "primary", "primary"),
			ev(3, 60, 1, "primary", "prepare_maintenance", `Setting goal state of node 1 "node1" (10.0.0.11:5432) to prepare_maintenance after a user-initiated start_maintenance call.`),
			ev(4, 62, 2, "stop_replication", "wait_primary", `Setting goal state of node 2 "node2" (10.0.0.12:5432) to wait_primary and node 1 "node1" (10.0.0.11:5432) to maintenance.`),
			ev(5, 63, 2, "wait_primary", "wait_primary", `New state is reported by node 2 "node2" (10.0.0.12:5432): "wait_primary"`),
		}, []Failover{{Kind: KindSwitchover, From: "node1", To: "node2", Start: secs(60), End: secs(63), WritesUnavailableSeconds: 3}}},
		// The primary is told to stop, then to take writes again.
		{"old_primary_keeps_its_role", []observe.Event{
			ev(1, 0, 1, "primary", "draining", "draining"),
			ev(2, 1, 1, "primary", "primary", "back"),
			ev(3, 2, 2, "secondary", "secondary", "standby"),
		}, []Failover{}},
		// A standby with a stale writable report is not the primary.
		{"stale_report_of_a_standby_starts_nothing", []observe.Event{
			ev(1, 0, 2, "primary", "primary", "node2 primary"),
			ev(2, 1, 1, "primary", "demoted", "node1 stale"),
			ev(3, 2, 2, "primary", "apply_settings", "settings"),
		}, []Failover{}},
		{"two_in_a_row", append(switchover(), shift(switchover(), 100, 1, 2)...), []Failover{
			{Kind: KindSwitchover, From: "node1", To: "node2", Start: secs(0), End: secs(7.5), WritesUnavailableSeconds: 7.5},
			{Kind: KindSwitchover, From: "node2", To: "node1", Start: secs(100), End: secs(107.5), WritesUnavailableSeconds: 7.5},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Failovers(tc.events)
			for i := range got { // float noise
				got[i].WritesUnavailableSeconds = float64(time.Duration(got[i].WritesUnavailableSeconds*1e9).Round(time.Millisecond)) / 1e9
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Failovers (-want +got):\n%s", diff)
			}
		})
	}
}

func reversed(evs []observe.Event) []observe.Event {
	out := make([]observe.Event, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = e
	}
	return out
}

// shift moves evs by secs and 100 ids, and swaps nodes a and b.
func shift(evs []observe.Event, secs float64, a, b int64) []observe.Event {
	out := make([]observe.Event, len(evs))
	for i, e := range evs {
		e.ID += 100
		e.Time = e.Time.Add(time.Duration(secs * float64(time.Second)))
		switch e.NodeID {
		case a:
			e.NodeID = b
		case b:
			e.NodeID = a
		}
		e.NodeName = fmt.Sprintf("node%d", e.NodeID)
		out[i] = e
	}
	return out
}

func TestFailoverString(t *testing.T) {
	f := Failovers(powerCut())
	want := "failover node1 -> node2 at 2026-11-26 12:00:00Z: writes unavailable 31.9s by the monitor's clock (node1 marked unhealthy 200ms before)"
	if len(f) != 1 || f[0].String() != want {
		t.Errorf("got %v, want %q", f, want)
	}
	f = Failovers(powerCut()[:9])
	if want := "failover from node1 in progress since 2026-11-26 12:00:00Z: no new primary has reported yet"; len(f) != 1 || !strings.HasPrefix(f[0].String(), want) {
		t.Errorf("got %v, want %q...", f, want)
	}
}

func TestMergeEvents(t *testing.T) {
	ids := func(evs []observe.Event) []int64 {
		var out []int64
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	mk := func(ids ...int64) []observe.Event {
		var out []observe.Event
		for _, id := range ids {
			out = append(out, observe.Event{ID: id, Description: fmt.Sprint(id)})
		}
		return out
	}
	tests := []struct {
		name        string
		kept, fresh []observe.Event
		keep        int
		want        []int64
	}{
		{"first", nil, mk(3, 4), 10, []int64{3, 4}},
		{"overlap", mk(1, 2, 3), mk(3, 4, 5), 10, []int64{1, 2, 3, 4, 5}},
		{"gap_kept_as_is", mk(1, 2), mk(7, 8), 10, []int64{1, 2, 7, 8}},
		{"bounded_keeps_newest", mk(1, 2, 3, 4), mk(5, 6), 3, []int64{4, 5, 6}},
		{"nothing_fresh", mk(1, 2), nil, 10, []int64{1, 2}},
		{"monitor_reset", mk(50, 51), mk(1, 2), 10, []int64{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(MergeEvents(tc.kept, tc.fresh, tc.keep))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
