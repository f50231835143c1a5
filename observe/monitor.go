package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Monitor roles and database, as pg_auto_failover creates them.
const (
	MonitorUser     = "autoctl_node"
	MonitorDatabase = "pg_auto_failover"
)

// MonitorEventCount is how many of the newest monitor events an
// observation keeps: enough that a failover and the rejoin after it (on
// three nodes, 40 events or so) fit between two observations a minute
// apart, so the page's history sees where each change of primary began.
const MonitorEventCount = 100

// MonitorConnString returns the URI the reconciler uses to reach a monitor:
// user autoctl_node, database pg_auto_failover. An empty sslmode leaves
// libpq's default (prefer). Host may be an IPv6 address.
func MonitorConnString(host string, port int, sslmode string) string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.User(MonitorUser),
		Host:   net.JoinHostPort(host, strconv.Itoa(port)),
		Path:   "/" + MonitorDatabase,
	}
	q := url.Values{}
	q.Set("application_name", "pgaf-reconciler")
	if sslmode != "" {
		q.Set("sslmode", sslmode)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// closeReadOnly closes a connection that only read, within a second even
// when ctx is done already: there is nothing to lose, and closing must
// not hang either.
func closeReadOnly(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(cctx)
}

// ObserveMonitor reads one formation from a pg_auto_failover monitor: the
// extension version, the formation, the pgautofailover.* settings, every
// node of the formation (ordered by name) and the newest MonitorEventCount
// events (ordered by id). Everything is read in one read-only
// repeatable-read transaction, so nodes and events are one consistent
// snapshot.
//
// It never returns an error: a connection or query failure gives
// Reached=false and Error saying which step failed; the other fields may
// then be partly filled and must not be trusted. The whole call is bounded
// by ctx. A formation the monitor does not know gives Reached=true, an
// empty Formation.Name and no nodes.
func ObserveMonitor(ctx context.Context, connString string, formation string) Monitor {
	m := Monitor{Nodes: []Node{}}
	if err := observeMonitor(ctx, connString, formation, &m); err != nil {
		m.Reached = false
		m.Error = err.Error()
		return m
	}
	m.Reached = true
	return m
}

func observeMonitor(ctx context.Context, connString, formation string, m *Monitor) error {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return fmt.Errorf("monitor: parse connection string: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("monitor %s:%d: connect: %w", cfg.Host, cfg.Port, err)
	}
	defer closeReadOnly(ctx, conn)
	where := fmt.Sprintf("monitor %s:%d", cfg.Host, cfg.Port)

	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("%s: begin: %w", where, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	err = tx.QueryRow(ctx, `select extversion from pg_catalog.pg_extension where extname = 'pgautofailover'`).Scan(&m.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: extension pgautofailover is not installed in database %s", where, cfg.Database)
	}
	if err != nil {
		return fmt.Errorf("%s: extension version: %w", where, err)
	}

	if m.Settings, err = readMonitorSettings(ctx, tx); err != nil {
		return fmt.Errorf("%s: settings: %w", where, err)
	}

	err = tx.QueryRow(ctx, `
		select formationid, kind, number_sync_standbys
		  from pgautofailover.formation
		 where formationid = $1`, formation).
		Scan(&m.Formation.Name, &m.Formation.Kind, &m.Formation.NumberSyncStandbys)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the formation does not exist (yet)
	}
	if err != nil {
		return fmt.Errorf("%s: formation %q: %w", where, formation, err)
	}

	if m.Nodes, err = readMonitorNodes(ctx, tx, formation); err != nil {
		return fmt.Errorf("%s: formation %q: nodes: %w", where, formation, err)
	}
	if m.Events, err = readMonitorEvents(ctx, tx, formation); err != nil {
		return fmt.Errorf("%s: formation %q: events: %w", where, formation, err)
	}
	return nil
}

// settingsPrefix is the prefix of the monitor's GUCs.
const settingsPrefix = "pgautofailover."

// readMonitorSettings returns pg_settings.setting (in the setting's base
// unit, e.g. milliseconds) of every pgautofailover.* GUC, keyed without
// the prefix.
func readMonitorSettings(ctx context.Context, tx pgx.Tx) (map[string]string, error) {
	rows, err := tx.Query(ctx, `
		select substr(name, length($1) + 1), setting
		  from pg_catalog.pg_settings
		 where starts_with(name, $1)
		 order by name`, settingsPrefix)
	if err != nil {
		return nil, err
	}
	settings := map[string]string{}
	var name, value string
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		settings[name] = value
		return nil
	})
	return settings, err
}

func readMonitorNodes(ctx context.Context, tx pgx.Tx, formation string) ([]Node, error) {
	rows, err := tx.Query(ctx, `
		select nodeid, nodename, nodehost, nodeport, groupid,
		       reportedstate::text, goalstate::text,
		       reportedtli, reportedlsn::text, health,
		       candidatepriority, replicationquorum,
		       reporttime, statechangetime,
		       coalesce(reportedpgisrunning, false)
		  from pgautofailover.node
		 where formationid = $1
		 order by nodename, nodeid`, formation)
	if err != nil {
		return nil, err
	}
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Node, error) {
		var n Node
		var health int
		err := r.Scan(&n.ID, &n.Name, &n.Host, &n.Port, &n.GroupID,
			&n.ReportedState, &n.AssignedState,
			&n.Timeline, &n.LSN, &health,
			&n.CandidatePriority, &n.ReplicationQuorum,
			&n.ReportTime, &n.StateChangeTime,
			&n.PGIsRunning)
		n.Health = healthName(health)
		n.ReportTime = n.ReportTime.UTC()
		n.StateChangeTime = n.StateChangeTime.UTC()
		return n, err
	})
	if nodes == nil {
		nodes = []Node{}
	}
	return nodes, err
}

// healthName maps pgautofailover.node.health (1 good, 0 bad, -1 not
// checked yet) to the Health* constants.
func healthName(h int) string {
	switch h {
	case 1:
		return HealthGood
	case 0:
		return HealthBad
	default:
		return HealthUnknown
	}
}

func readMonitorEvents(ctx context.Context, tx pgx.Tx, formation string) ([]Event, error) {
	rows, err := tx.Query(ctx, `
		select eventid, eventtime, nodeid, nodename,
		       reportedstate::text, goalstate::text, coalesce(description, '')
		  from (select * from pgautofailover.event
		         where formationid = $1
		         order by eventid desc
		         limit $2) as newest
		 order by eventid`, formation, MonitorEventCount)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.Time, &e.NodeID, &e.NodeName, &e.Reported, &e.Assigned, &e.Description)
		e.Time = e.Time.UTC()
		return e, err
	})
}
