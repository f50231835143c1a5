package reconcile

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Style selects the colours of the text rendering. The zero value is plain
// text; callers turn colour on only when writing to a terminal.
type Style struct{ Color bool }

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Summary counts the actions of a plan.
func (p *Result) Summary() (actions, disruptive, destructive, blocked int) {
	for _, c := range p.Clusters {
		blocked += len(c.Blocked)
		for _, a := range c.Actions {
			actions++
			if a.Disruptive {
				disruptive++
			}
			if a.Destructive {
				destructive++
			}
		}
	}
	return
}

// Describe is the one-line description of an action for people.
func (a *Action) Describe() string {
	target := a.Node
	if a.VM != "" {
		target += " on " + a.VM
	}
	switch a.Kind {
	case CreateMonitor, CreateNode:
		return fmt.Sprintf("%s %s (image %s, volume %s)", a.Kind, target, a.Spec.Image, a.Volume)
	case ReplaceContainer:
		return fmt.Sprintf("%s %s (image %s, spec %s)", a.Kind, target, a.Spec.Image, a.Spec.Hash())
	case Wait:
		if a.Until.Node == "monitor" {
			return fmt.Sprintf("wait until the monitor answers (timeout %s)", durString(a.Until.Timeout))
		}
		return fmt.Sprintf("wait until %s is %s (timeout %s)", a.Until.Node, strings.Join(a.Until.States, " or "), durString(a.Until.Timeout))
	case SetMonitorSettings, SetFormation, SetNodeSettings, SetPostgresParameters:
		var parts []string
		for _, k := range SortedKeys(a.Settings) {
			if old, ok := a.Previous[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %s -> %s", k, old, a.Settings[k]))
			} else {
				parts = append(parts, fmt.Sprintf("%s = %s", k, a.Settings[k]))
			}
		}
		d := fmt.Sprintf("%s %s: %s", a.Kind, target, strings.Join(parts, ", "))
		if a.Kind == SetPostgresParameters {
			if len(a.Restart) > 0 {
				d += " (reload; needs a restart: " + strings.Join(a.Restart, ", ") + ")"
			} else {
				d += " (reload, no restart)"
			}
		}
		return d
	case FenceMonitor:
		return fmt.Sprintf("fence_monitor %s (container %s renamed %s, kept)", target, ContainerName(a.Cluster, "monitor"), a.Fenced)
	case EnableMonitor:
		return fmt.Sprintf("enable_monitor %s (the new monitor at %s)", target, monitorHost(a.Settings["monitor"]))
	case EnableMaintenance, DisableMaintenance:
		return fmt.Sprintf("%s %s (id %d)", a.Kind, target, a.NodeID)
	case RemoveNode:
		if a.Force {
			return fmt.Sprintf("remove_node %s from the monitor (id %d, force)", a.Node, a.NodeID)
		}
		return fmt.Sprintf("remove_node %s from the monitor (id %d)", a.Node, a.NodeID)
	case RemoveVolume:
		return fmt.Sprintf("remove_volume %s on %s", a.Volume, a.VM)
	case Switchover:
		return fmt.Sprintf("switchover away from %s (pg_auto_failover performs it)", a.Node)
	}
	return fmt.Sprintf("%s %s", a.Kind, target)
}

func durString(d Duration) string {
	b, _ := d.MarshalText()
	return string(b)
}

func (a *Action) marker() string {
	switch {
	case a.Destructive:
		return "!"
	case a.Disruptive:
		return "~"
	case a.Kind == Wait:
		return "."
	}
	return "+"
}

// WriteText renders the plan for people: what exists, then what will change
// and why, in the order it will run.
func (p *Result) WriteText(w io.Writer, s Style) error {
	var b strings.Builder
	commit := p.Commit
	if commit == "" {
		commit = "(no commit: local files)"
	}
	fmt.Fprintf(&b, "Plan for desired state %s, observed at %s\n", commit, p.ObservedAt.UTC().Format("2006-01-02T15:04:05Z"))
	for _, c := range p.Clusters {
		fmt.Fprintf(&b, "\n%s\n", s.paint("1", fmt.Sprintf("cluster %s (formation %s)", c.Name, c.Formation)))
		b.WriteString("  what exists:\n")
		for _, m := range c.Members {
			state := m.State
			if state == "" {
				state = "-"
			}
			extra := ""
			if !m.Desired {
				extra = "  (not in the desired state)"
			}
			fmt.Fprintf(&b, "    %-10s %-16s container %-10s monitor %s%s\n", m.Node, m.Where(), m.Container, state, extra)
		}
		if len(c.Actions) == 0 {
			b.WriteString("  no changes\n")
		} else {
			b.WriteString("  will run, in order:\n")
		}
		for i, a := range c.Actions {
			code := "32"
			if a.Destructive {
				code = "31"
			} else if a.Disruptive {
				code = "33"
			}
			fmt.Fprintf(&b, "  %s %2d. %s\n", s.paint(code, a.marker()), i+1, a.Describe())
			fmt.Fprintf(&b, "         why: %s\n", a.Reason)
			for _, e := range a.Evidence {
				fmt.Fprintf(&b, "         evidence: %s\n", e)
			}
		}
		for _, bl := range c.Blocked {
			fmt.Fprintf(&b, "  %s %s: %s\n", s.paint("35", bl.Label()), bl.Guard, bl.Reason)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	n, dis, des, bl := p.Summary()
	fmt.Fprintf(&b, "\n%s\n", summaryLine(n, dis, des, bl))
	_, err := io.WriteString(w, b.String())
	return err
}

func summaryLine(n, dis, des, bl int) string {
	if n == 0 && bl == 0 {
		return "No changes. The observed state matches the desired state."
	}
	return fmt.Sprintf("Plan: %d action(s), %d disruptive, %d destructive; %d blocked.", n, dis, des, bl)
}

// WriteMarkdown renders the plan for a pull request.
func (p *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	commit := p.Commit
	if commit == "" {
		commit = "local files"
	}
	fmt.Fprintf(&b, "### Reconciler plan for `%s`\n\nObserved at %s.\n", commit, p.ObservedAt.UTC().Format("2006-01-02T15:04:05Z"))
	for _, c := range p.Clusters {
		fmt.Fprintf(&b, "\n#### Cluster `%s` (formation `%s`)\n\n", c.Name, c.Formation)
		b.WriteString("| node | VM:port | container | monitor state |\n|---|---|---|---|\n")
		for _, m := range c.Members {
			name := m.Node
			if !m.Desired {
				name += " (removed)"
			}
			state := m.State
			if state == "" {
				state = "-"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdEscape(name), mdEscape(m.Where()), mdEscape(m.Container), mdEscape(state))
		}
		if len(c.Actions) == 0 {
			b.WriteString("\nNo changes.\n")
		} else {
			b.WriteString("\n| # | action | kind | why |\n|---|---|---|---|\n")
		}
		for i, a := range c.Actions {
			kind := "change"
			switch {
			case a.Destructive:
				kind = "**destructive**"
			case a.Disruptive:
				kind = "*disruptive*"
			case a.Kind == Wait:
				kind = "wait"
			}
			why := a.Reason
			if len(a.Evidence) > 0 {
				why += " Evidence: " + strings.Join(a.Evidence, "; ")
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, mdEscape(a.Describe()), kind, mdEscape(why))
		}
		for _, bl := range c.Blocked {
			fmt.Fprintf(&b, "\n> **%s** (`%s`): %s\n", strings.ToUpper(bl.Label()[:1])+bl.Label()[1:], bl.Guard, mdEscape(bl.Reason))
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "\n> Note: %s\n", mdEscape(n))
	}
	n, dis, des, bl := p.Summary()
	fmt.Fprintf(&b, "\n%s\n", summaryLine(n, dis, des, bl))
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

// WriteJSON writes the plan in its versioned JSON encoding (PlanSchemaVersion).
func (p *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

// Label is "later" for a change deferred to a later plan (one disruption
// at a time, or another change still in flight: time resolves both),
// "blocked" for one a guard refuses.
func (b *Blocked) Label() string {
	switch b.Guard {
	case GuardOneAtATime, GuardInFlight:
		return "later"
	}
	return "blocked"
}
