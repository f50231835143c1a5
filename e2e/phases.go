//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MonitorEvent is one row of the monitor's pgautofailover.event.
type MonitorEvent struct {
	At          time.Time
	Node        string
	Description string
}

// monitorEvents reads the monitor's events since t, in order.
func monitorEvents(ctx context.Context, uri string, since time.Time) ([]MonitorEvent, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(cctx, `SELECT eventtime, nodename, description FROM pgautofailover.event WHERE eventtime >= $1 ORDER BY eventid`, since)
	if err != nil {
		return nil, err
	}
	var out []MonitorEvent
	for rows.Next() {
		var e MonitorEvent
		if err := rows.Scan(&e.At, &e.Node, &e.Description); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// FailoverPhases is where the seconds of a primary's loss went, from the
// monitor's own event timestamps and the writer's acknowledgements, each
// as an offset from the cut (zero when not seen).
type FailoverPhases struct {
	Unhealthy   time.Duration // the monitor marks the old primary unhealthy
	Election    time.Duration // it starts the failover: standbys report their LSN
	DemoteTimer time.Duration // a candidate is ready: the old primary has primary_demote_timeout to confirm
	Promote     time.Duration // the demote timeout expired (or it confirmed): the candidate is told to take writes
	Promoted    time.Duration // the new primary reports wait_primary: it takes writes
	FirstWrite  time.Duration // the writer's first acknowledged insert after the gap
}

// failoverPhases reads the monitor's events after cut about the loss of old.
func failoverPhases(events []MonitorEvent, cut time.Time, old string, resumed time.Time) FailoverPhases {
	var p FailoverPhases
	at := func(d *time.Duration, e MonitorEvent) {
		if *d == 0 {
			*d = e.At.Sub(cut)
		}
	}
	quoted := `"` + old + `"`
	for _, e := range events {
		d := e.Description
		switch {
		case e.Node == old && strings.Contains(d, "is marked as unhealthy"):
			at(&p.Unhealthy, e)
		case p.Unhealthy != 0 && strings.HasPrefix(d, "Setting goal state of") && p.Election == 0:
			at(&p.Election, e)
			if strings.Contains(d, "to demote_timeout") {
				at(&p.DemoteTimer, e)
			}
		case strings.Contains(d, "to demote_timeout") && strings.Contains(d, quoted):
			at(&p.DemoteTimer, e)
		case strings.Contains(d, "to wait_primary") && strings.Contains(d, "demoted"):
			at(&p.Promote, e)
		case p.Promote != 0 && strings.HasPrefix(d, "New state is reported by") && strings.HasSuffix(d, `"wait_primary"`) && e.Node != old:
			at(&p.Promoted, e)
		}
	}
	if !resumed.IsZero() {
		p.FirstWrite = resumed.Sub(cut)
	}
	return p
}

func (p FailoverPhases) String() string {
	f := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return "+" + d.Round(100*time.Millisecond).String()
	}
	return fmt.Sprintf("unhealthy %s, election %s, demote timer %s, promote %s, promoted %s, first write %s",
		f(p.Unhealthy), f(p.Election), f(p.DemoteTimer), f(p.Promote), f(p.Promoted), f(p.FirstWrite))
}
