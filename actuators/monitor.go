package actuators

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MonitorError is returned by Monitor's methods: the operation, what it
// acted on, and why it failed. A refusal by pg_auto_failover (a group not
// in a stable state, an invalid value, ...) unwraps to a *pgconn.PgError
// carrying the SQLSTATE; "55000" (object_not_in_prerequisite_state) means
// "not now, try again later".
type MonitorError struct {
	Op     string // "remove-node", "set-candidate-priority", "set-settings", ...
	Target string // the node, formation or setting acted on
	Err    error
}

func (e *MonitorError) Error() string {
	return fmt.Sprintf("monitor: %s %s: %v", e.Op, e.Target, e.Err)
}

func (e *MonitorError) Unwrap() error { return e.Err }

// ErrNodeNotFound is wrapped in a MonitorError when an operation that needs
// a node finds none (RemoveNode treats an absent node as already removed
// instead).
var ErrNodeNotFound = errors.New("node is not registered on the monitor")

// Monitor acts on a pg_auto_failover monitor through its SQL functions.
// Every method opens its own connection, is bounded by ctx, and is
// idempotent: when the monitor already shows the wanted value or state,
// nothing is called (so no apply_settings round and no event).
//
// The node functions run as the role of the connection string given to
// NewMonitor, normally autoctl_node (see observe.MonitorConnString): the
// monitor grants it EXECUTE on every function used here. SetSettings needs
// more (ALTER SYSTEM); see WithSettingsConnString and GrantSettings.
type Monitor struct {
	connString         string
	settingsConnString string
}

// NewMonitor returns a Monitor that connects with connString.
func NewMonitor(connString string) *Monitor {
	return &Monitor{connString: connString, settingsConnString: connString}
}

// WithSettingsConnString returns a copy of m whose SetSettings and
// GrantSettings connect with connString instead: a superuser (the monitor's
// pg_hba admits one only on loopback or its unix socket), or, for
// SetSettings, a role given the privileges that GrantSettings grants.
func (m *Monitor) WithSettingsConnString(connString string) *Monitor {
	c := *m
	c.settingsConnString = connString
	return &c
}

// closeTimeout bounds closing a connection after ctx is done.
const closeTimeout = 2 * time.Second

// with connects with connString and runs f. Errors are wrapped in a
// MonitorError for op and target.
func (m *Monitor) with(ctx context.Context, connString, op, target string, f func(c *pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, connString)
	if err != nil {
		return &MonitorError{Op: op, Target: target, Err: fmt.Errorf("connect: %w", err)}
	}
	for attempt := 1; ; attempt++ {
		err = f(c)
		if attempt == lockConflictAttempts || !lockConflict(err) || ctx.Err() != nil {
			break
		}
		// The monitor's functions lock node rows in their own order while
		// the keepers' node_active calls lock them in theirs: PostgreSQL
		// breaks such a deadlock by aborting one statement, which changed
		// nothing. Every operation here checks the current state first,
		// so running it again is safe.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * lockConflictBackoff):
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if cerr := c.Close(cctx); cerr != nil && err == nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return &MonitorError{Op: op, Target: target, Err: err}
	}
	return nil
}

// lockConflictAttempts bounds how often with runs an operation the server
// aborted for a deadlock or a serialization failure; lockConflictBackoff is
// the first wait between the attempts.
const (
	lockConflictAttempts = 4
	lockConflictBackoff  = 100 * time.Millisecond
)

// lockConflict reports an error the server raised to break a lock conflict
// (deadlock_detected, serialization_failure): the statement was rolled back
// and may be run again.
func lockConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// callBool runs `select <fn>(args...)` for a monitor function returning
// bool and fails when it returns false.
func callBool(ctx context.Context, c *pgx.Conn, sql string, args ...any) error {
	var ok bool
	if err := c.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s returned false", sql)
	}
	return nil
}

// RemoveNode removes the node registered at host:port, with
// pgautofailover.remove_node(node_host text, node_port int, force bool).
//
// Without force the monitor orchestrates: it sets the node's goal state to
// "dropped" (and, if the node was the primary, starts a failover), and the
// row disappears once the node's keeper reports "dropped". Calling it again
// meanwhile is accepted and changes nothing. With force the row is deleted
// at once, whatever the keeper does. A node that is not registered is
// already removed: nil.
func (m *Monitor) RemoveNode(ctx context.Context, host string, port int, force bool) error {
	target := host + ":" + strconv.Itoa(port)
	return m.with(ctx, m.connString, "remove-node", target, func(c *pgx.Conn) error {
		var id int64
		err := c.QueryRow(ctx, `select nodeid from pgautofailover.node where nodehost = $1 and nodeport = $2`, host, port).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return callBool(ctx, c, `select pgautofailover.remove_node($1::text, $2::int, $3::bool)`, host, port, force)
	})
}

// RemoveNodeByID is RemoveNode for a node id, with
// pgautofailover.remove_node(node_id bigint, force bool).
func (m *Monitor) RemoveNodeByID(ctx context.Context, nodeID int64, force bool) error {
	target := "node id " + strconv.FormatInt(nodeID, 10)
	return m.with(ctx, m.connString, "remove-node", target, func(c *pgx.Conn) error {
		var exists bool
		if err := c.QueryRow(ctx, `select exists (select from pgautofailover.node where nodeid = $1)`, nodeID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.remove_node($1::bigint, $2::bool)`, nodeID, force)
	})
}

// SetCandidatePriority sets a node's candidate priority (0..100; 0 means
// never promoted) with pgautofailover.set_node_candidate_priority(
// formation_id text, node_name text, candidate_priority int). The monitor
// then has the primary apply its settings; it refuses (SQLSTATE 55000)
// while the primary is already applying settings.
func (m *Monitor) SetCandidatePriority(ctx context.Context, formation, nodeName string, priority int) error {
	return m.with(ctx, m.connString, "set-candidate-priority", formation+"/"+nodeName, func(c *pgx.Conn) error {
		var current int
		err := c.QueryRow(ctx, `select candidatepriority from pgautofailover.node where formationid = $1 and nodename = $2`, formation, nodeName).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNodeNotFound
		}
		if err != nil {
			return err
		}
		if current == priority {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.set_node_candidate_priority($1::text, $2::text, $3::int)`, formation, nodeName, priority)
	})
}

// SetReplicationQuorum sets whether a node takes part in the synchronous
// replication quorum, with pgautofailover.set_node_replication_quorum(
// formation_id text, node_name text, replication_quorum bool).
func (m *Monitor) SetReplicationQuorum(ctx context.Context, formation, nodeName string, quorum bool) error {
	return m.with(ctx, m.connString, "set-replication-quorum", formation+"/"+nodeName, func(c *pgx.Conn) error {
		var current bool
		err := c.QueryRow(ctx, `select replicationquorum from pgautofailover.node where formationid = $1 and nodename = $2`, formation, nodeName).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNodeNotFound
		}
		if err != nil {
			return err
		}
		if current == quorum {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.set_node_replication_quorum($1::text, $2::text, $3::bool)`, formation, nodeName, quorum)
	})
}

// SetNumberSyncStandbys sets the formation's number_sync_standbys with
// pgautofailover.set_formation_number_sync_standbys(formation_id text,
// number_sync_standbys int). The monitor requires the primary to be stable
// (primary or wait_primary) and at least n+1 standbys in the replication
// quorum.
func (m *Monitor) SetNumberSyncStandbys(ctx context.Context, formation string, n int) error {
	return m.with(ctx, m.connString, "set-number-sync-standbys", formation, func(c *pgx.Conn) error {
		var current int
		err := c.QueryRow(ctx, `select number_sync_standbys from pgautofailover.formation where formationid = $1`, formation).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("formation %q does not exist", formation)
		}
		if err != nil {
			return err
		}
		if current == n {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.set_formation_number_sync_standbys($1::text, $2::int)`, formation, n)
	})
}

// maintenanceGoals are the goal states of a node on its way to, or in,
// maintenance.
var maintenanceGoals = []string{"prepare_maintenance", "wait_maintenance", "maintenance"}

// StartMaintenance puts a node in maintenance with
// pgautofailover.start_maintenance(node_id bigint). A node already
// assigned a maintenance state is left alone.
//
// On a primary, pg_auto_failover first fails over to a secondary: only
// call it on the primary after the switchover the committed change asked
// for: failover decisions stay with pg_auto_failover, and the reconciler
// never makes one by putting a primary in maintenance.
func (m *Monitor) StartMaintenance(ctx context.Context, nodeID int64) error {
	target := "node id " + strconv.FormatInt(nodeID, 10)
	return m.with(ctx, m.connString, "start-maintenance", target, func(c *pgx.Conn) error {
		goal, _, err := nodeStates(ctx, c, nodeID)
		if err != nil {
			return err
		}
		if slices.Contains(maintenanceGoals, goal) {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.start_maintenance($1::bigint)`, nodeID)
	})
}

// StopMaintenance takes a node out of maintenance with
// pgautofailover.stop_maintenance(node_id bigint). A node not assigned a
// maintenance state is left alone. The monitor refuses (SQLSTATE 55000)
// while the node has not yet reached maintenance.
func (m *Monitor) StopMaintenance(ctx context.Context, nodeID int64) error {
	target := "node id " + strconv.FormatInt(nodeID, 10)
	return m.with(ctx, m.connString, "stop-maintenance", target, func(c *pgx.Conn) error {
		goal, _, err := nodeStates(ctx, c, nodeID)
		if err != nil {
			return err
		}
		if !slices.Contains(maintenanceGoals, goal) {
			return nil
		}
		return callBool(ctx, c, `select pgautofailover.stop_maintenance($1::bigint)`, nodeID)
	})
}

func nodeStates(ctx context.Context, c *pgx.Conn, nodeID int64) (goal, reported string, err error) {
	err = c.QueryRow(ctx, `select goalstate::text, reportedstate::text from pgautofailover.node where nodeid = $1`, nodeID).Scan(&goal, &reported)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrNodeNotFound
	}
	return goal, reported, err
}

// PerformSwitchover asks pg_auto_failover for a planned switchover in a
// group, with pgautofailover.perform_failover(formation_id text, group_id
// int); pg_auto_failover picks the new primary (by candidate priority,
// then the most advanced standby) and orchestrates it.
//
// A switchover is idempotent only through from: it names the node the
// primary must move away from, and when that node is not the assigned
// primary any more (the switchover already happened or is under way)
// nothing is done. An empty from switches over whichever node is primary:
// a second call then starts a second switchover.
func (m *Monitor) PerformSwitchover(ctx context.Context, formation string, group int, from string) error {
	target := fmt.Sprintf("%s/group %d", formation, group)
	if from != "" {
		target += " from " + from
	}
	return m.with(ctx, m.connString, "switchover", target, func(c *pgx.Conn) error {
		if from != "" {
			var goal string
			err := c.QueryRow(ctx, `select goalstate::text from pgautofailover.node where formationid = $1 and groupid = $2 and nodename = $3`,
				formation, group, from).Scan(&goal)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("%w: %s", ErrNodeNotFound, from)
			}
			if err != nil {
				return err
			}
			if goal != "primary" {
				return nil // not the primary (any more): nothing to move away from
			}
		}
		_, err := c.Exec(ctx, `select pgautofailover.perform_failover($1::text, $2::int)`, formation, group)
		return err
	})
}

// SettingsPrefix is the prefix of the monitor's GUCs; SetSettings and
// observe.Monitor.Settings key them without it.
const SettingsPrefix = "pgautofailover."

// settingName is what a setting name (without the prefix) may look like.
// The name is written into SQL (a GUC name cannot be a parameter), so
// nothing else is accepted.
var settingName = regexp.MustCompile(`^[a-z_]+$`)

// SettingNameError is returned, wrapped in a MonitorError, for a setting
// name that is malformed or not a pgautofailover setting of the monitor.
type SettingNameError struct {
	Name   string
	Reason string
}

func (e *SettingNameError) Error() string {
	return fmt.Sprintf("setting %q: %s", e.Name, e.Reason)
}

func checkSettingName(name string) error {
	if !settingName.MatchString(name) {
		return &SettingNameError{Name: name, Reason: "not a setting name (want ^[a-z_]+$, without the pgautofailover. prefix)"}
	}
	return nil
}

// SetSettings sets pgautofailover.* GUCs (keyed without the prefix, as
// observe reports them) with ALTER SYSTEM SET and then pg_reload_conf(): no
// restart. Every name is checked first (^[a-z_]+$, known to the monitor,
// changeable by a reload); when one fails, nothing is changed. A setting
// whose current value already equals the wanted one, as pg_settings shows
// it (in the base unit: "5000", not "5s"), is not written again. The value
// goes into the statement as a literal quoted by the server (format %L),
// never spliced in by hand.
//
// ALTER SYSTEM needs a superuser, or (PostgreSQL 15+) a role granted ALTER
// SYSTEM on each parameter and EXECUTE on pg_reload_conf: autoctl_node has
// neither on a fresh monitor. See WithSettingsConnString and GrantSettings.
func (m *Monitor) SetSettings(ctx context.Context, settings map[string]string) error {
	names := slices.Sorted(maps.Keys(settings))
	if len(names) == 0 {
		return nil
	}
	const target = "pgautofailover.*"
	for _, n := range names {
		if err := checkSettingName(n); err != nil {
			return &MonitorError{Op: "set-settings", Target: target, Err: err}
		}
	}
	return m.with(ctx, m.settingsConnString, "set-settings", target, func(c *pgx.Conn) error {
		type current struct{ value, context string }
		now := map[string]current{}
		rows, err := c.Query(ctx, `select name, setting, context from pg_catalog.pg_settings where name = any($1)`, prefixed(names))
		if err != nil {
			return err
		}
		var name, value, gucContext string
		if _, err := pgx.ForEachRow(rows, []any{&name, &value, &gucContext}, func() error {
			now[name[len(SettingsPrefix):]] = current{value, gucContext}
			return nil
		}); err != nil {
			return err
		}
		for _, n := range names {
			cur, ok := now[n]
			switch {
			case !ok:
				return &SettingNameError{Name: n, Reason: "the monitor has no such setting"}
			case cur.context != "sighup" && cur.context != "user" && cur.context != "superuser":
				return &SettingNameError{Name: n, Reason: "context " + cur.context + ": a reload does not apply it"}
			}
		}
		changed := 0
		for _, n := range names {
			if now[n].value == settings[n] {
				continue
			}
			var stmt string
			if err := c.QueryRow(ctx, `select format('ALTER SYSTEM SET %s = %L', $1::text, $2::text)`, SettingsPrefix+n, settings[n]).Scan(&stmt); err != nil {
				return fmt.Errorf("%s: quote: %w", n, err)
			}
			// No arguments: pgx sends it with the simple protocol, outside
			// any transaction, as ALTER SYSTEM requires.
			if _, err := c.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			changed++
		}
		if changed == 0 {
			return nil
		}
		var reloaded bool
		if err := c.QueryRow(ctx, `select pg_catalog.pg_reload_conf()`).Scan(&reloaded); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		if !reloaded {
			return errors.New("reload: pg_reload_conf() returned false")
		}
		return nil
	})
}

// GrantSettings lets autoctl_node run SetSettings for the named
// settings, so that the reconciler can change them over the network
// without a superuser. It runs, as the settings connection's role (a
// superuser, e.g. over the monitor's unix socket or loopback):
//
//	GRANT ALTER SYSTEM ON PARAMETER pgautofailover.<name> TO autoctl_node
//	GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO autoctl_node
//
// GRANT ... ON PARAMETER exists from PostgreSQL 15. Granting again is
// harmless.
func (m *Monitor) GrantSettings(ctx context.Context, names []string) error {
	const target = "pgautofailover.*"
	stmts, err := SettingsGrantStatements(names)
	if err != nil {
		return &MonitorError{Op: "grant-settings", Target: target, Err: err}
	}
	return m.with(ctx, m.settingsConnString, "grant-settings", target, func(c *pgx.Conn) error {
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

// SettingsGrantStatements returns the SQL GrantSettings runs, for a caller
// that must run it another way (psql in the monitor's container). Names
// are checked as in SetSettings.
func SettingsGrantStatements(names []string) ([]string, error) {
	var stmts []string
	for _, n := range slices.Sorted(slices.Values(names)) {
		if err := checkSettingName(n); err != nil {
			return nil, err
		}
		stmts = append(stmts, "GRANT ALTER SYSTEM ON PARAMETER "+SettingsPrefix+n+" TO autoctl_node")
	}
	return append(stmts, "GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO autoctl_node"), nil
}

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = SettingsPrefix + n
	}
	return out
}
