package observe_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaf-gitops/reconciler/internal/pgaftest"
	"github.com/pgaf-gitops/reconciler/observe"
)

func TestMonitorConnString(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		port    int
		sslmode string
		want    string
	}{
		{"ipv4_disable", "10.0.0.5", 5432, "disable", "postgres://autoctl_node@10.0.0.5:5432/pg_auto_failover?application_name=pgaf-reconciler&sslmode=disable"},
		{"ipv6_require", "fd00::1", 6000, "require", "postgres://autoctl_node@[fd00::1]:6000/pg_auto_failover?application_name=pgaf-reconciler&sslmode=require"},
		{"empty_sslmode_left_out", "vm1", 5432, "", "postgres://autoctl_node@vm1:5432/pg_auto_failover?application_name=pgaf-reconciler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := observe.MonitorConnString(tt.host, tt.port, tt.sslmode)
			if got != tt.want {
				t.Errorf("MonitorConnString = %q, want %q", got, tt.want)
			}
			cfg, err := pgx.ParseConfig(got)
			if err != nil {
				t.Fatalf("pgx cannot parse it: %v", err)
			}
			if cfg.Host != tt.host || int(cfg.Port) != tt.port || cfg.User != "autoctl_node" || cfg.Database != "pg_auto_failover" {
				t.Errorf("parsed as host=%q port=%d user=%q db=%q", cfg.Host, cfg.Port, cfg.User, cfg.Database)
			}
		})
	}
}

// TestObserveMonitorUnreachable: a closed port and a server that never
// answers are both recorded, never a panic, and the call returns within
// its context's deadline.
func TestObserveMonitorUnreachable(t *testing.T) {
	closed := pgaftest.FreePort(t)

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := silent.Close(); err != nil {
			t.Errorf("close silent listener: %v", err)
		}
	})
	go func() { // accept and say nothing, as a hung server would
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silentPort := silent.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name     string
		port     int
		deadline time.Duration
	}{
		{"closed_port", closed, 5 * time.Second},
		{"server_never_answers", silentPort, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.deadline)
			defer cancel()
			start := time.Now()
			m := observe.ObserveMonitor(ctx, observe.MonitorConnString("127.0.0.1", tt.port, "disable"), "default")
			took := time.Since(start)
			if m.Reached {
				t.Errorf("Reached = true for a monitor that cannot answer")
			}
			if !strings.Contains(m.Error, "connect") {
				t.Errorf("Error = %q, want it to say the connection failed", m.Error)
			}
			if took > tt.deadline+time.Second {
				t.Errorf("took %v, deadline was %v", took, tt.deadline)
			}
			t.Logf("took %v: %s", took, m.Error)
		})
	}

	t.Run("bad_connection_string", func(t *testing.T) {
		m := observe.ObserveMonitor(context.Background(), "postgres://%zz", "default")
		if m.Reached || m.Error == "" {
			t.Errorf("got Reached=%v Error=%q, want an error", m.Reached, m.Error)
		}
	})
}

// TestObserveMonitorReal observes a real monitor, first empty and then with
// a primary and a secondary, then with the secondary stopped.
func TestObserveMonitorReal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real pg_auto_failover monitor and nodes")
	}
	mon := pgaftest.StartMonitor(t)
	observeNow := func(t *testing.T, formation string) observe.Monitor {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m := observe.ObserveMonitor(ctx, mon.ConnString(), formation)
		if !m.Reached {
			t.Fatalf("monitor not reached: %s", m.Error)
		}
		if m.Error != "" {
			t.Errorf("Reached with Error %q", m.Error)
		}
		return m
	}

	t.Run("no_nodes", func(t *testing.T) {
		m := observeNow(t, "default")
		if m.Version != "2.0" {
			t.Errorf("Version = %q, want 2.0", m.Version)
		}
		want := observe.Formation{Name: "default", Kind: "pgsql", NumberSyncStandbys: 0}
		if m.Formation != want {
			t.Errorf("Formation = %+v, want %+v", m.Formation, want)
		}
		if len(m.Nodes) != 0 {
			t.Errorf("Nodes = %+v, want none", m.Nodes)
		}
		if m.Nodes == nil {
			t.Errorf("Nodes is nil, want an empty list (JSON [])")
		}
		for name, want := range map[string]string{
			"health_check_period":               "5000",
			"health_check_timeout":              "5000",
			"health_check_max_retries":          "2",
			"health_check_retry_delay":          "2000",
			"node_considered_unhealthy_timeout": "20000",
			"primary_demote_timeout":            "30000",
		} {
			if got, ok := m.Settings[name]; !ok || got != want {
				t.Errorf("Settings[%q] = %q (present %v), want %q", name, got, ok, want)
			}
		}
		for name := range m.Settings {
			if strings.Contains(name, ".") {
				t.Errorf("setting %q still has a prefix", name)
			}
		}
	})

	t.Run("unknown_formation", func(t *testing.T) {
		m := observeNow(t, "no-such-formation")
		if m.Formation.Name != "" || len(m.Nodes) != 0 {
			t.Errorf("got formation %+v and %d nodes for a formation that does not exist", m.Formation, len(m.Nodes))
		}
		if m.Version != "2.0" {
			t.Errorf("Version = %q, want 2.0 even without the formation", m.Version)
		}
	})

	// Register node2 first so that ordering by name is not ordering by id.
	n2 := mon.StartNode(t, "node2")
	n1 := mon.StartNode(t, "node1")
	mon.WaitStable(t, 2, pgaftest.NodeReadyTimeout)

	t.Run("two_nodes", func(t *testing.T) {
		before := time.Now().UTC()
		m := observeNow(t, "default")
		if len(m.Nodes) != 2 {
			t.Fatalf("got %d nodes, want 2: %+v", len(m.Nodes), m.Nodes)
		}
		if m.Nodes[0].Name != "node1" || m.Nodes[1].Name != "node2" {
			t.Errorf("nodes not ordered by name: %s, %s", m.Nodes[0].Name, m.Nodes[1].Name)
		}
		if m.Nodes[0].ID <= m.Nodes[1].ID {
			t.Errorf("node1 id %d, node2 id %d: node2 registered first, so its id should be lower", m.Nodes[0].ID, m.Nodes[1].ID)
		}
		ports := map[string]int{"node1": n1.Port, "node2": n2.Port}
		wantState := map[string]string{"node1": "secondary", "node2": "primary"}
		for _, n := range m.Nodes {
			if n.Host != pgaftest.Host || n.Port != ports[n.Name] || n.GroupID != 0 {
				t.Errorf("%s: at %s:%d group %d, want %s:%d group 0", n.Name, n.Host, n.Port, n.GroupID, pgaftest.Host, ports[n.Name])
			}
			if n.ReportedState != wantState[n.Name] || n.AssignedState != wantState[n.Name] {
				t.Errorf("%s: reported %q assigned %q, want %q", n.Name, n.ReportedState, n.AssignedState, wantState[n.Name])
			}
			if n.Health != observe.HealthGood {
				t.Errorf("%s: health %q, want good", n.Name, n.Health)
			}
			if n.Timeline != 1 {
				t.Errorf("%s: timeline %d, want 1", n.Name, n.Timeline)
			}
			if n.LSN == "" || n.LSN == "0/0" || !strings.Contains(n.LSN, "/") {
				t.Errorf("%s: LSN %q, want a real one", n.Name, n.LSN)
			}
			if n.CandidatePriority != 50 || !n.ReplicationQuorum {
				t.Errorf("%s: candidate priority %d quorum %v, want pg_autoctl's defaults 50 and true", n.Name, n.CandidatePriority, n.ReplicationQuorum)
			}
			if !n.PGIsRunning {
				t.Errorf("%s: pg_is_running false", n.Name)
			}
			for what, ts := range map[string]time.Time{"report time": n.ReportTime, "state change time": n.StateChangeTime} {
				if ts.IsZero() || ts.After(before.Add(time.Minute)) || ts.Before(before.Add(-10*time.Minute)) || ts.Location() != time.UTC {
					t.Errorf("%s: %s %v is not a recent UTC time", n.Name, what, ts)
				}
			}
		}

		if len(m.Events) == 0 || len(m.Events) > observe.MonitorEventCount {
			t.Fatalf("got %d events, want 1..%d", len(m.Events), observe.MonitorEventCount)
		}
		if !slices.IsSortedFunc(m.Events, func(a, b observe.Event) int { return int(a.ID - b.ID) }) {
			t.Errorf("events not ordered by id")
		}
		ids := map[int64]string{m.Nodes[0].ID: "node1", m.Nodes[1].ID: "node2"}
		sawPromotion := false
		for _, e := range m.Events {
			if ids[e.NodeID] != e.NodeName {
				t.Errorf("event %d names node %q, id %d", e.ID, e.NodeName, e.NodeID)
			}
			if e.Description == "" || e.Reported == "" || e.Assigned == "" || e.Time.IsZero() {
				t.Errorf("event %d incomplete: %+v", e.ID, e)
			}
			if e.NodeName == "node2" && e.Assigned == "primary" {
				sawPromotion = true
			}
		}
		if !sawPromotion {
			t.Errorf("no event assigns primary to node2: %+v", m.Events)
		}
		// The newest events are kept: the last one is the newest in the table.
		var newest int64
		c := connect(t, mon.ConnString())
		if err := c.QueryRow(context.Background(), "select max(eventid) from pgautofailover.event").Scan(&newest); err != nil {
			t.Fatal(err)
		}
		if last := m.Events[len(m.Events)-1].ID; last > newest || newest-last > 5 {
			t.Errorf("last event id %d, newest in the table %d", last, newest)
		}
	})

	// What the observer reads of a node's own server, through a Dialer
	// (here: this machine; on a VM, a connection forwarded over SSH to its
	// 127.0.0.1), on a server pg_autoctl initialised.
	t.Run("node_server", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(n2.ConnString(mon))
		if err != nil {
			t.Fatal(err)
		}
		c := connect(t, n2.ConnString(mon))
		for _, q := range []string{"ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM SET max_connections = 150", "SELECT pg_reload_conf()"} {
			if _, err := c.Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		t.Cleanup(func() {
			for _, q := range []string{"ALTER SYSTEM RESET work_mem", "ALTER SYSTEM RESET max_connections", "SELECT pg_reload_conf()"} {
				if _, err := c.Exec(context.Background(), q); err != nil {
					t.Errorf("%s: %v", q, err)
				}
			}
		})
		read := func(port int, started time.Time) *observe.Postgres {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return observe.ReadPostgres(ctx, localDialer{}, "vm1", cfg.User, port, started)
		}
		// The reload is asynchronous: poll until the server has read it.
		var pg *observe.Postgres
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			pg = read(n2.Port, time.Time{})
			if pg.Error == "" && slices.Contains(pg.PendingRestart, "max_connections") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("max_connections not pending a restart after 30s: %+v", pg)
			}
		}
		if pg.Parameters["work_mem"] != "8MB" || pg.Parameters["max_connections"] != "150" {
			t.Errorf("Parameters = %v, want work_mem 8MB and max_connections 150 from postgresql.auto.conf", pg.Parameters)
		}
		if slices.Contains(pg.PendingRestart, "work_mem") {
			t.Errorf("work_mem reloads, but is pending a restart: %v", pg.PendingRestart)
		}
		// The server's own list of restart-only parameters.
		if !slices.Contains(pg.RestartOnly, "max_connections") || !slices.Contains(pg.RestartOnly, "shared_buffers") ||
			slices.Contains(pg.RestartOnly, "work_mem") || !slices.IsSorted(pg.RestartOnly) {
			t.Errorf("RestartOnly = %v, want the sorted postmaster-context parameters (max_connections, shared_buffers, not work_mem)", pg.RestartOnly)
		}
		if pg.StartTime.IsZero() || time.Since(pg.StartTime) > 10*time.Minute || pg.StartTime.Location() != time.UTC {
			t.Errorf("StartTime = %v, want this test's server start in UTC", pg.StartTime)
		}

		// The primary (node2) sees node1 streaming, under the name
		// pg_auto_failover gives it; the standby sees no one.
		var n1ID int64
		for _, n := range observeNow(t, "default").Nodes {
			if n.Name == "node1" {
				n1ID = n.ID
			}
		}
		if len(pg.Standbys) != 1 || pg.Standbys[0].Name != observe.StandbyName(n1ID) || pg.Standbys[0].State != "streaming" ||
			pg.Standbys[0].ReplayLagSeconds == nil || *pg.Standbys[0].ReplayLagSeconds < 0 || *pg.Standbys[0].ReplayLagSeconds > 10 {
			t.Errorf("Standbys of the primary = %+v, want node1 (%s) streaming with a replay lag of 0-10 s", pg.Standbys, observe.StandbyName(n1ID))
		}
		if sb := read(n1.Port, time.Time{}).Standbys; len(sb) != 0 {
			t.Errorf("Standbys of the secondary = %+v, want none", sb)
		}

		// A server that started before the container did is another's.
		if got := read(n2.Port, pg.StartTime.Add(time.Hour)); !strings.Contains(got.Error, "another container's server") || got.Parameters != nil {
			t.Errorf("server older than its container: %+v, want an error and no parameters", got)
		}
		// Nothing listening: the error names the VM and the port.
		closed := pgaftest.FreePort(t)
		if got := read(closed, time.Time{}); !strings.Contains(got.Error, fmt.Sprintf("vm1 port %d", closed)) {
			t.Errorf("closed port: %+v, want an error naming vm1 and port %d", got, closed)
		}
	})

	t.Run("stopped_secondary_turns_bad", func(t *testing.T) {
		n1.Stop(t)
		mon.WaitFor(t, 60*time.Second, "node1 unhealthy", func(ctx context.Context, _ *pgx.Conn) (bool, error) {
			m := observe.ObserveMonitor(ctx, mon.ConnString(), "default")
			if !m.Reached {
				return false, nil
			}
			for _, n := range m.Nodes {
				if n.Name == "node1" {
					return n.Health == observe.HealthBad, nil
				}
			}
			return false, nil
		})
	})

	t.Run("cancelled_context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		m := observe.ObserveMonitor(ctx, mon.ConnString(), "default")
		if m.Reached || m.Error == "" {
			t.Errorf("cancelled context: Reached=%v Error=%q", m.Reached, m.Error)
		}
	})
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// localDialer dials from this machine: the VM is the test itself.
type localDialer struct{}

func (localDialer) Dial(ctx context.Context, _, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
