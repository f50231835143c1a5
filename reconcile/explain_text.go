package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText renders the explanation for people: the node as desired, as
// observed, what the plan does with it, and the guards it passed or that
// blocked it.
func (e *Explanation) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %s of cluster %s, observed at %s\n", e.Node, e.Cluster, e.ObservedAt.UTC().Format(time.RFC3339))

	b.WriteString("\ndesired:\n")
	if d := e.Desired; d == nil {
		b.WriteString("  not in the desired state\n")
	} else {
		fmt.Fprintf(&b, "  vm %s, port %d, candidate priority %d, replication quorum %v\n", d.VM, d.Port, d.CandidatePriority, d.ReplicationQuorum)
		fmt.Fprintf(&b, "  image %s, container %s, volume %s, spec hash %s\n", d.Image, d.Container, d.Volume, d.SpecHash)
		fmt.Fprintf(&b, "  postgresql parameters: %s\n", pairs(d.Parameters))
		fmt.Fprintf(&b, "  rebuild token %s; diverged policy %s, grace period %s\n", orDash(quoted(d.Rebuild)), d.DivergedPolicy, durString(d.GracePeriod))
	}

	b.WriteString("\nobserved:\n")
	switch {
	case e.VM == "" && e.Host != "":
		fmt.Fprintf(&b, "  vm: none declared at %s\n", e.Host)
	case e.VMReached:
		fmt.Fprintf(&b, "  vm %s: reached\n", e.VM)
	case e.VMError != "":
		fmt.Fprintf(&b, "  vm %s: NOT REACHED: %s\n", e.VM, e.VMError)
	default:
		fmt.Fprintf(&b, "  vm %s: not observed\n", e.VM)
	}
	switch n := e.Registered; {
	case !e.MonitorReached && e.MonitorError == "":
		b.WriteString("  monitor: not observed\n")
	case !e.MonitorReached:
		fmt.Fprintf(&b, "  monitor: NOT REACHED: %s\n", e.MonitorError)
	case n == nil:
		b.WriteString("  monitor: not registered\n")
	default:
		fmt.Fprintf(&b, "  monitor: id %d at %s:%d, reported %s, assigned %s, timeline %d, LSN %s\n", n.ID, n.Host, n.Port, n.ReportedState, n.AssignedState, n.Timeline, n.LSN)
		fmt.Fprintf(&b, "           health %s, postgres running %v, candidate priority %d, replication quorum %v\n", n.Health, n.PGIsRunning, n.CandidatePriority, n.ReplicationQuorum)
		fmt.Fprintf(&b, "           last report %s, state changed %s\n", e.when(n.ReportTime), e.when(n.StateChangeTime))
	}
	for _, ev := range e.Events {
		fmt.Fprintf(&b, "  event %s: %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Description)
	}
	unknown := "its VM was not reached"
	if e.VM == "" {
		unknown = "no declared VM"
	}
	switch ct := e.Container; {
	case !e.VMReached:
		fmt.Fprintf(&b, "  container: unknown (%s)\n", unknown)
	case ct == nil:
		b.WriteString("  container: absent\n")
	default:
		hash := "matches the desired spec"
		if e.Desired == nil {
			hash = "no desired spec"
		} else if ct.SpecHash != e.Desired.SpecHash && e.SpecCurrent {
			hash = "created for an earlier monitor; the node is registered with the desired one, so it is current"
		} else if ct.SpecHash != e.Desired.SpecHash {
			hash = "DIFFERS from the desired " + e.Desired.SpecHash
		}
		fmt.Fprintf(&b, "  container %s: %s, image %s, spec hash %s (%s)\n", ct.Name, ct.State, ct.Image, orDash(ct.SpecHash), hash)
		fmt.Fprintf(&b, "           restarted %d times, started %s, finished %s\n", ct.RestartCount, e.when(ct.StartedAt), e.when(ct.FinishedAt))
		for _, l := range ct.LogEvidence {
			fmt.Fprintf(&b, "           log: %s\n", l)
		}
		if k := ct.Keeper; k != nil {
			fmt.Fprintf(&b, "           keeper: follows monitor %s, node id %d, %s, assigned %s", orDisabled(k.Monitor), k.NodeID, orDash(k.CurrentRole), orDash(k.AssignedRole))
			if k.Recreate != "" {
				fmt.Fprintf(&b, ", moved for monitor.recreate %q", k.Recreate)
			}
			if k.Error != "" {
				fmt.Fprintf(&b, " (%s)", k.Error)
			}
			b.WriteString("\n")
		}
	}
	switch v := e.Volume; {
	case !e.VMReached:
		fmt.Fprintf(&b, "  volume: unknown (%s)\n", unknown)
	case v == nil:
		b.WriteString("  volume: absent\n")
	default:
		size := "size unknown"
		if v.SizeBytes >= 0 {
			size = fmt.Sprintf("%d bytes", v.SizeBytes)
		}
		fmt.Fprintf(&b, "  volume %s: rebuild token %s, %s\n", v.Name, orDash(quoted(v.Rebuild)), size)
	}
	if ct := e.Container; ct != nil && ct.Postgres != nil {
		pg := ct.Postgres
		if pg.Error != "" {
			fmt.Fprintf(&b, "  postgres: NOT READ: %s\n", pg.Error)
		} else {
			fmt.Fprintf(&b, "  postgres: started %s, pending restart: %s\n", e.when(pg.StartTime), orDash(strings.Join(pg.PendingRestart, ", ")))
			fmt.Fprintf(&b, "            parameters: %s\n", pairs(pg.Parameters))
		}
	} else if ct != nil {
		b.WriteString("  postgres: not read\n")
	}

	b.WriteString("\nplan for " + e.Node + ":\n")
	switch {
	case e.Stopped != nil:
		fmt.Fprintf(&b, "  nothing planned: the cluster's planning stopped at its monitor (%s)\n", e.Stopped.Guard)
	case len(e.Actions) == 0 && len(e.Blocked) == 0:
		b.WriteString("  nothing to do\n")
	}
	for _, a := range e.Actions {
		fmt.Fprintf(&b, "  %s %2d. %s\n", a.marker(), a.Step, a.Describe())
		fmt.Fprintf(&b, "         why: %s\n", a.Reason)
		for _, ev := range a.Evidence {
			fmt.Fprintf(&b, "         evidence: %s\n", ev)
		}
	}
	for _, bl := range e.Blocked {
		fmt.Fprintf(&b, "  %s %s: %s\n", bl.Label(), bl.Guard, bl.Reason)
	}

	writeChecks(&b, "guards evaluated for "+e.Node, e.Guards)
	writeChecks(&b, "guards evaluated for the cluster (its monitor and formation)", e.ClusterGuards)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeChecks(b *strings.Builder, title string, checks []GuardCheck) {
	fmt.Fprintf(b, "\n%s:\n", title)
	if len(checks) == 0 {
		b.WriteString("  none\n")
	}
	for _, g := range checks {
		outcome := "passed "
		if !g.Passed {
			outcome = "BLOCKED"
		}
		fmt.Fprintf(b, "  %s %-24s %s\n", outcome, g.Guard, g.Detail)
	}
}

// when prints t and how long before the observation it was ("-" for zero).
func (e *Explanation) when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s before the observation)", t.UTC().Format(time.RFC3339), e.ObservedAt.Sub(t).Round(time.Second))
}

func pairs(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range SortedKeys(m) {
		parts = append(parts, k+" = "+m[k])
	}
	return strings.Join(parts, ", ")
}

func quoted(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteJSON writes the explanation in its versioned JSON encoding
// (ExplainSchemaVersion).
func (e *Explanation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(e)
}
