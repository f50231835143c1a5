package actuators

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// Containers is what the executor needs of Docker on the VMs. *Docker
// implements it over SSH.
type Containers interface {
	EnsureVolume(ctx context.Context, vm, name string, labels map[string]string) error
	EnsureContainer(ctx context.Context, spec reconcile.ContainerSpec) error
	StartContainer(ctx context.Context, vm, name string) error
	StopContainer(ctx context.Context, vm, name string) error
	RemoveContainer(ctx context.Context, vm, name string) error
	RemoveVolume(ctx context.Context, vm, name string) error
	FenceContainer(ctx context.Context, vm, name, fenced string) error
	Exec(ctx context.Context, vm, container string, argv []string) ([]byte, error)
}

// Executor carries out one plan action, idempotently: running it twice
// leaves the same state as running it once.
type Executor struct {
	State   *desired.State
	Docker  Containers
	Observe func(ctx context.Context) *observe.Observation
	// ObserveMonitor, when set, reads one cluster's monitor alone. A wait's
	// condition is the monitor's view of a node, so between full
	// observations a wait polls this every MonitorPollInterval; a full
	// observation confirms the condition before the wait ends, and is the
	// one the next plan starts from.
	ObserveMonitor func(ctx context.Context, cluster string) observe.Monitor
	Log            *slog.Logger
	// Progress receives a line while a wait is in progress.
	Progress io.Writer
	// PollInterval is the period of a wait's full observations, and of
	// Apply's while the cluster settles (default 1s; with ObserveMonitor, a
	// wait takes a full one every FullObservationEvery).
	PollInterval time.Duration
	// ProgressInterval is the period of a wait's progress lines (default 10s).
	ProgressInterval time.Duration
	// BeforeStep, when set, is called by Apply before each step; an error
	// stops Apply before the step runs (the service checks its lock here).
	BeforeStep func(ctx context.Context, a reconcile.Action) error
	// AfterStep, when set, is called by Apply after each executed step (the
	// service counts actions by kind and result here).
	AfterStep func(r StepResult)

	// latest is a full observation taken since the last step that changed
	// anything, handed on once: Apply plans a wait from one and the wait
	// starts from it; a wait ends on one and Apply plans the next step
	// from it. Nothing acts in between, so it is as good as a new one.
	latest *observe.Observation
}

// MonitorPollInterval is the period of a wait's monitor polls (a few
// milliseconds of SQL each), and FullObservationEvery the longest a wait
// goes without a full observation (Docker on every VM as well).
const (
	MonitorPollInterval  = 250 * time.Millisecond
	FullObservationEvery = 5 * time.Second
)

// observe returns the latest observation handed on, once, or takes a new
// one.
func (x *Executor) observe(ctx context.Context) *observe.Observation {
	if obs := x.latest; obs != nil {
		x.latest = nil
		return obs
	}
	return x.Observe(ctx)
}

// WaitTimeoutError is returned when a wait's condition did not hold in time.
type WaitTimeoutError struct {
	Cluster string
	Cond    reconcile.Condition
	Last    string // what the last observation showed
}

func (e *WaitTimeoutError) Error() string {
	what := "the monitor to answer"
	if e.Cond.Node != "monitor" {
		what = fmt.Sprintf("%s to be %v", e.Cond.Node, e.Cond.States)
	}
	b, _ := e.Cond.Timeout.MarshalText()
	return fmt.Sprintf("cluster %s: waited %s for %s; last seen: %s", e.Cluster, b, what, e.Last)
}

func (x *Executor) cluster(name string) (*desired.Cluster, error) {
	for i := range x.State.Clusters {
		if x.State.Clusters[i].Name == name {
			return &x.State.Clusters[i], nil
		}
	}
	return nil, fmt.Errorf("cluster %s is not in the desired state", name)
}

func (x *Executor) monitor(c *desired.Cluster) *Monitor {
	return NewMonitor(observe.MonitorConnStringFor(x.State, c))
}

// Execute carries out a.
func (x *Executor) Execute(ctx context.Context, a reconcile.Action) error {
	c, err := x.cluster(a.Cluster)
	if err != nil {
		return err
	}
	switch a.Kind {
	case reconcile.CreateMonitor, reconcile.CreateNode:
		if err := x.Docker.EnsureVolume(ctx, a.VM, a.Volume, VolumeLabels(*a.Spec)); err != nil {
			return err
		}
		return x.Docker.EnsureContainer(ctx, *a.Spec)
	case reconcile.ReplaceContainer:
		return x.Docker.EnsureContainer(ctx, *a.Spec)
	case reconcile.StartContainer:
		return x.Docker.StartContainer(ctx, a.VM, a.Spec.Name)
	case reconcile.StopContainer:
		return x.Docker.StopContainer(ctx, a.VM, reconcile.ContainerName(a.Cluster, a.Node))
	case reconcile.RemoveContainer:
		return x.Docker.RemoveContainer(ctx, a.VM, reconcile.ContainerName(a.Cluster, a.Node))
	case reconcile.RemoveVolume:
		return x.Docker.RemoveVolume(ctx, a.VM, a.Volume)
	case reconcile.Wait:
		return x.wait(ctx, a)
	case reconcile.SetMonitorSettings:
		return x.setMonitorSettings(ctx, c, a)
	case reconcile.SetFormation:
		n, err := strconv.Atoi(a.Settings["number_sync_standbys"])
		if err != nil {
			return fmt.Errorf("number_sync_standbys: %w", err)
		}
		return x.monitor(c).SetNumberSyncStandbys(ctx, c.Formation, n)
	case reconcile.SetNodeSettings:
		m := x.monitor(c)
		if v, ok := a.Settings["candidate_priority"]; ok {
			p, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("candidate_priority: %w", err)
			}
			if err := m.SetCandidatePriority(ctx, c.Formation, a.Node, p); err != nil {
				return err
			}
		}
		if v, ok := a.Settings["replication_quorum"]; ok {
			return m.SetReplicationQuorum(ctx, c.Formation, a.Node, v == "true")
		}
		return nil
	case reconcile.Switchover:
		return x.monitor(c).PerformSwitchover(ctx, c.Formation, 0, a.Node)
	case reconcile.RemoveNode:
		return x.monitor(c).RemoveNodeByID(ctx, a.NodeID, a.Force)
	case reconcile.SetPostgresParameters:
		argv, err := PostgresParametersCommand(a.Settings)
		if err != nil {
			return err
		}
		name := reconcile.ContainerName(a.Cluster, a.Node)
		if out, err := x.Docker.Exec(ctx, a.VM, name, argv); err != nil {
			return fmt.Errorf("set postgresql parameters on %s: %w: %s", a.Node, err, strings.TrimSpace(string(out)))
		}
		return nil
	case reconcile.RestartContainer:
		name := reconcile.ContainerName(a.Cluster, a.Node)
		if err := x.Docker.StopContainer(ctx, a.VM, name); err != nil {
			return err
		}
		return x.Docker.StartContainer(ctx, a.VM, name)
	case reconcile.FenceMonitor:
		return x.Docker.FenceContainer(ctx, a.VM, reconcile.ContainerName(a.Cluster, "monitor"), a.Fenced)
	case reconcile.DisableMonitor, reconcile.EnableMonitor:
		argv := MonitorMoveCommand(a.Kind, a.Settings["monitor"], a.Settings["recreate"])
		name := reconcile.ContainerName(a.Cluster, a.Node)
		if out, err := x.Docker.Exec(ctx, a.VM, name, argv); err != nil {
			return fmt.Errorf("%s on %s: %w: %s", a.Kind, a.Node, err, strings.TrimSpace(string(out)))
		}
		return nil
	case reconcile.EnableMaintenance:
		return x.monitor(c).StartMaintenance(ctx, a.NodeID)
	case reconcile.DisableMaintenance:
		return x.monitor(c).StopMaintenance(ctx, a.NodeID)
	}
	return fmt.Errorf("action kind %q has no executor", a.Kind)
}

// monitorMove is the script of MonitorMoveCommand. It reads which monitor
// the node's keeper follows first, so running it again changes nothing:
// disable acts only on a keeper that follows a monitor, enable only on one
// that follows none, and does nothing when it already follows the new one.
// pg_autoctl enable monitor registers the node under its name and node id
// and, on a standby, returns once the new monitor assigned it catchingup.
// Enable then records the monitor.recreate token the node was moved for
// (observe.KeeperRecreateFile): a token acts once. A pg_autoctl disable or
// enable started by an apply that was killed goes on in the container
// (docker exec outlives its client): the script waits for it to end
// before it looks. Seen on the lab: an apply killed -9 during a
// secondary's enable, the next apply's enable of it failed on the monitor
// with a duplicate node id, the first one having registered meanwhile.
const monitorMove = `n=0
while pgrep -f '^pg_autoctl (en|dis)able monitor' >/dev/null; do
	n=$((n + 1))
	[ $n -le 600 ] || { echo "another pg_autoctl enable or disable monitor still runs after 600 s" >&2; exit 1; }
	sleep 1
done
cur=$(pg_autoctl config get --pgdata "$PGDATA" pg_autoctl.monitor) || exit 1
case "$1" in
disable) [ "$cur" = PG_AUTOCTL_DISABLED ] || exec pg_autoctl disable monitor --force --pgdata "$PGDATA" ;;
enable)
	if [ "$cur" != "$2" ]; then
		[ "$cur" = PG_AUTOCTL_DISABLED ] || { echo "the keeper follows $cur, not the new monitor: disable it first" >&2; exit 1; }
		pg_autoctl enable monitor --pgdata "$PGDATA" "$2" || exit 1
	fi
	[ -z "$3" ] || printf '%s\n' "$3" >"$XDG_CONFIG_HOME/` + observe.KeeperRecreateFile + `" ;;
esac`

// MonitorMoveCommand is the argv, run in a node's container, of a
// disable_monitor or enable_monitor step (uri: the new monitor's, token:
// the monitor.recreate token it was created for).
func MonitorMoveCommand(kind reconcile.Kind, uri, token string) []string {
	verb := "disable"
	if kind == reconcile.EnableMonitor {
		verb = "enable"
	}
	return []string{"sh", "-c", monitorMove, "sh", verb, uri, token}
}

// psqlLocal runs psql as the server's owner on the socket and port that
// the node's postmaster.pid names (a node may listen on any port).
const psqlLocal = `f="$PGDATA/postmaster.pid"; [ -r "$f" ] || { echo "postgres is not running (no $f)" >&2; exit 3; }; ` +
	`exec psql -X -q -v ON_ERROR_STOP=1 -h "$(sed -n 5p "$f")" -p "$(sed -n 4p "$f")" -d postgres "$@"`

var parameterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// PostgresParametersCommand is the argv, run in a node's container, that
// writes settings with ALTER SYSTEM (one statement each: ALTER SYSTEM
// refuses a transaction block) and reloads the configuration. ALTER
// SYSTEM works on a hot standby too: postgresql.auto.conf is per node.
func PostgresParametersCommand(settings map[string]string) ([]string, error) {
	argv := []string{"sh", "-c", psqlLocal, "sh"}
	for _, k := range reconcile.SortedKeys(settings) {
		if !parameterName.MatchString(k) {
			return nil, fmt.Errorf("postgresql parameter name %q is not a plain name", k)
		}
		argv = append(argv, "-c", fmt.Sprintf("ALTER SYSTEM SET %s = '%s'", k, strings.ReplaceAll(settings[k], "'", "''")))
	}
	return append(argv, "-c", "SELECT pg_reload_conf()"), nil
}

// setMonitorSettings lets autoctl_node change the named pgautofailover.*
// settings (a GRANT run once, as the superuser, through psql in the
// monitor's container: the monitor admits its superuser only locally),
// then changes them over SQL with ALTER SYSTEM and a reload.
func (x *Executor) setMonitorSettings(ctx context.Context, c *desired.Cluster, a reconcile.Action) error {
	stmts, err := SettingsGrantStatements(reconcile.SortedKeys(a.Settings))
	if err != nil {
		return err
	}
	argv := []string{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "pg_auto_failover", "-p", strconv.Itoa(c.Monitor.Port)}
	for _, s := range stmts {
		argv = append(argv, "-c", s)
	}
	if _, err := x.Docker.Exec(ctx, c.Monitor.VM, reconcile.ContainerName(c.Name, "monitor"), argv); err != nil {
		return fmt.Errorf("grant settings to autoctl_node: %w", err)
	}
	return x.monitor(c).SetSettings(ctx, a.Settings)
}

func (x *Executor) pollInterval() time.Duration {
	if x.PollInterval > 0 {
		return x.PollInterval
	}
	return time.Second
}

// wait polls observations until the action's condition holds, printing a
// progress line now and then. Waiting changes nothing, so an interrupt
// may end it at any time.
func (x *Executor) wait(ctx context.Context, a reconcile.Action) error {
	poll, every := x.pollInterval(), x.ProgressInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	if x.ObserveMonitor != nil {
		poll = MonitorPollInterval
	}
	start := time.Now()
	deadline := start.Add(time.Duration(a.Until.Timeout))
	lastProgress := start
	last := "nothing observed yet"
	obs, full, fullAt := x.observe(ctx), true, time.Now()
	for {
		if a.Until.Satisfied(a.Cluster, obs) {
			if full {
				x.latest = obs
				return nil
			}
			// The monitor says so: confirm with everything (a container
			// that restarted meanwhile makes its node's report stale).
			obs, full, fullAt = x.Observe(ctx), true, time.Now()
			continue
		}
		last = describeNode(obs, a.Cluster, a.Until.Node)
		now := time.Now()
		if now.After(deadline) {
			return &WaitTimeoutError{Cluster: a.Cluster, Cond: *a.Until, Last: last}
		}
		if now.Sub(lastProgress) >= every && x.Progress != nil {
			fmt.Fprintf(x.Progress, "    ... still waiting (%s of %s): %s\n", now.Sub(start).Round(time.Second), time.Duration(a.Until.Timeout), last)
			lastProgress = now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		if x.ObserveMonitor != nil && time.Since(fullAt) < FullObservationEvery {
			obs, full = withMonitor(obs, a.Cluster, x.ObserveMonitor(ctx, a.Cluster)), false
		} else {
			obs, full, fullAt = x.Observe(ctx), true, time.Now()
		}
	}
}

// withMonitor is obs with one cluster's monitor view replaced (obs itself
// is not changed).
func withMonitor(obs *observe.Observation, cluster string, m observe.Monitor) *observe.Observation {
	o := *obs
	o.Clusters = slices.Clone(obs.Clusters)
	for i := range o.Clusters {
		if o.Clusters[i].Name == cluster {
			o.Clusters[i].Monitor = m
		}
	}
	return &o
}

func describeNode(obs *observe.Observation, cluster, node string) string {
	for _, c := range obs.Clusters {
		if c.Name != cluster {
			continue
		}
		if !c.Monitor.Reached {
			return "monitor not reached: " + c.Monitor.Error
		}
		if node == "monitor" {
			return "monitor answers"
		}
		for _, n := range c.Monitor.Nodes {
			if n.Name == node {
				return fmt.Sprintf("%s reported %s, assigned %s, health %s", n.Name, n.ReportedState, n.AssignedState, n.Health)
			}
		}
		return node + " is not registered on the monitor yet"
	}
	return "cluster not observed"
}
