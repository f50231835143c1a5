package actuators_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/internal/pgaftest"
	"github.com/pgaf-gitops/reconciler/observe"
)

func TestSettingsGrantStatements(t *testing.T) {
	got, err := actuators.SettingsGrantStatements([]string{"health_check_timeout", "health_check_period"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GRANT ALTER SYSTEM ON PARAMETER pgautofailover.health_check_period TO autoctl_node",
		"GRANT ALTER SYSTEM ON PARAMETER pgautofailover.health_check_timeout TO autoctl_node",
		"GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO autoctl_node",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := actuators.SettingsGrantStatements([]string{"x TO public; --"}); err == nil {
		t.Errorf("a hostile name was accepted")
	}
}

// hostileNames are refused before anything is sent to the monitor.
var hostileNames = []struct{ name, key string }{
	{"sql_injection", "health_check_period = 1; DROP TABLE pgautofailover.node; --"},
	{"quote", "health_check'period"},
	{"double_quote", `health_check"period`},
	{"newline", "health_check_period\nx"},
	{"with_prefix", "pgautofailover.health_check_period"},
	{"other_namespace", "shared_preload_libraries.x"},
	{"upper_case", "Health_Check_Period"},
	{"digits", "health_check_period2"},
	{"empty", ""},
	{"space", "health check period"},
}

func TestSetSettingsRefusesHostileNamesOffline(t *testing.T) {
	// A closed port: if a name got past the check we would see a connect
	// error instead of a SettingNameError.
	m := actuators.NewMonitor(observe.MonitorConnString("127.0.0.1", pgaftest.FreePort(t), "disable"))
	for _, tt := range hostileNames {
		t.Run(tt.name, func(t *testing.T) {
			err := m.SetSettings(context.Background(), map[string]string{tt.key: "1000", "health_check_timeout": "1000"})
			var nameErr *actuators.SettingNameError
			if !errors.As(err, &nameErr) || nameErr.Name != tt.key {
				t.Fatalf("err = %v, want a SettingNameError for %q", err, tt.key)
			}
			var monErr *actuators.MonitorError
			if !errors.As(err, &monErr) || monErr.Op != "set-settings" {
				t.Errorf("err = %v, want it wrapped in a MonitorError for set-settings", err)
			}
		})
	}
}

// TestMonitorActuatorsReal runs every actuator against a real monitor with
// three nodes, checks each change through observe.ObserveMonitor, and calls
// each one twice.
func TestMonitorActuatorsReal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real pg_auto_failover monitor and nodes")
	}
	mon := pgaftest.StartMonitor(t)
	nodes := map[string]*pgaftest.Node{}
	for _, name := range []string{"node1", "node2", "node3"} {
		nodes[name] = mon.StartNode(t, name)
	}
	mon.WaitStable(t, 3, pgaftest.NodeReadyTimeout)

	act := actuators.NewMonitor(mon.ConnString())
	admin := act.WithSettingsConnString(mon.SuperuserConnString())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)

	observeNow := func(t *testing.T) observe.Monitor {
		t.Helper()
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m := observe.ObserveMonitor(octx, mon.ConnString(), "default")
		if !m.Reached {
			t.Fatalf("monitor not reached: %s", m.Error)
		}
		return m
	}
	waitObserved := func(t *testing.T, what string, timeout time.Duration, ok func(observe.Monitor) bool) {
		t.Helper()
		mon.WaitFor(t, timeout, what, func(ctx context.Context, _ *pgx.Conn) (bool, error) {
			m := observe.ObserveMonitor(ctx, mon.ConnString(), "default")
			return m.Reached && ok(m), nil
		})
	}
	node := func(m observe.Monitor, name string) (observe.Node, bool) {
		for _, n := range m.Nodes {
			if n.Name == name {
				return n, true
			}
		}
		return observe.Node{}, false
	}
	primary := func(m observe.Monitor) string {
		for _, n := range m.Nodes {
			if n.AssignedState == "primary" && n.ReportedState == "primary" {
				return n.Name
			}
		}
		return ""
	}
	twice := func(t *testing.T, f func() error) {
		t.Helper()
		for i := range 2 {
			if err := f(); err != nil {
				t.Fatalf("call %d: %v", i+1, err)
			}
		}
	}
	postmasterStart := func(t *testing.T) time.Time {
		t.Helper()
		c, err := pgx.Connect(ctx, mon.ConnString())
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
		var ts time.Time
		if err := c.QueryRow(ctx, "select pg_postmaster_start_time()").Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	autoConf := filepath.Join(mon.Dir, "monitor", "postgresql.auto.conf")

	t.Run("hostile_setting_names_change_nothing", func(t *testing.T) {
		before := observeNow(t).Settings
		for _, tt := range append(hostileNames, struct{ name, key string }{"unknown_setting", "no_such_setting"}) {
			err := admin.SetSettings(ctx, map[string]string{"health_check_timeout": "1234", tt.key: "1000"})
			var nameErr *actuators.SettingNameError
			if !errors.As(err, &nameErr) {
				t.Errorf("%s: err = %v, want a SettingNameError", tt.name, err)
			}
		}
		if after := observeNow(t).Settings; after["health_check_timeout"] != before["health_check_timeout"] {
			t.Errorf("health_check_timeout changed from %s to %s though the batch was refused", before["health_check_timeout"], after["health_check_timeout"])
		}
	})

	t.Run("hostile_value_is_a_literal", func(t *testing.T) {
		err := admin.SetSettings(ctx, map[string]string{"health_check_period": "1000'; ALTER SYSTEM SET work_mem = '1MB"})
		if err == nil {
			t.Fatal("a non-integer value was accepted")
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22023" { // invalid_parameter_value
			t.Errorf("err = %v, want the server to refuse the value as invalid (22023)", err)
		}
		b, err := os.ReadFile(autoConf)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "work_mem") {
			t.Errorf("the value escaped its literal:\n%s", b)
		}
	})

	t.Run("set_settings_as_autoctl_node_is_denied", func(t *testing.T) {
		err := act.SetSettings(ctx, map[string]string{"health_check_period": "4000"})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
			t.Fatalf("err = %v, want permission denied (42501)", err)
		}
		t.Logf("as autoctl_node: %v", err)
	})

	t.Run("set_settings_reloads_without_restart", func(t *testing.T) {
		started := postmasterStart(t)
		want := map[string]string{"health_check_period": "3000", "node_considered_unhealthy_timeout": "15000"}
		if err := admin.SetSettings(ctx, want); err != nil {
			t.Fatal(err)
		}
		waitObserved(t, "new settings observed", 10*time.Second, func(m observe.Monitor) bool {
			return m.Settings["health_check_period"] == "3000" && m.Settings["node_considered_unhealthy_timeout"] == "15000"
		})
		if got := postmasterStart(t); !got.Equal(started) {
			t.Errorf("postmaster restarted: started %v, now %v", started, got)
		}
		// Again: nothing to write, so postgresql.auto.conf is not rewritten.
		st, err := os.Stat(autoConf)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.SetSettings(ctx, want); err != nil {
			t.Fatalf("second call: %v", err)
		}
		st2, err := os.Stat(autoConf)
		if err != nil {
			t.Fatal(err)
		}
		if !st2.ModTime().Equal(st.ModTime()) {
			t.Errorf("second call rewrote %s", autoConf)
		}
	})

	t.Run("grant_lets_autoctl_node_set_granted_settings", func(t *testing.T) {
		twice(t, func() error { return admin.GrantSettings(ctx, []string{"health_check_timeout"}) })
		twice(t, func() error { return act.SetSettings(ctx, map[string]string{"health_check_timeout": "4000"}) })
		waitObserved(t, "health_check_timeout 4000", 10*time.Second, func(m observe.Monitor) bool {
			return m.Settings["health_check_timeout"] == "4000"
		})
		err := act.SetSettings(ctx, map[string]string{"primary_demote_timeout": "25000"})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("a setting not granted: err = %v, want permission denied", err)
		}
	})

	t.Run("candidate_priority", func(t *testing.T) {
		twice(t, func() error { return act.SetCandidatePriority(ctx, "default", "node3", 30) })
		if n, _ := node(observeNow(t), "node3"); n.CandidatePriority != 30 {
			t.Errorf("node3 candidate priority %d, want 30", n.CandidatePriority)
		}
		mon.WaitStable(t, 3, time.Minute)
		err := act.SetCandidatePriority(ctx, "default", "no-such-node", 30)
		if !errors.Is(err, actuators.ErrNodeNotFound) {
			t.Errorf("unknown node: err = %v, want ErrNodeNotFound", err)
		}
	})

	t.Run("number_sync_standbys", func(t *testing.T) {
		// pg_auto_failover itself raised it from 0 to 1 when the third node
		// registered (node_active_protocol.c, register_node).
		if got := observeNow(t).Formation.NumberSyncStandbys; got != 1 {
			t.Errorf("number_sync_standbys %d with 3 nodes, want pg_auto_failover's automatic 1", got)
		}
		for _, n := range []int{0, 1} {
			twice(t, func() error { return act.SetNumberSyncStandbys(ctx, "default", n) })
			if got := observeNow(t).Formation.NumberSyncStandbys; got != n {
				t.Errorf("number_sync_standbys %d, want %d", got, n)
			}
			mon.WaitStable(t, 3, time.Minute)
		}
		err := act.SetNumberSyncStandbys(ctx, "default", 2) // needs 3 standbys, there are 2
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22023" {
			t.Errorf("2 sync standbys of 2: err = %v, want the monitor's refusal (22023)", err)
		}
		// 0 again, so that a standby may leave the quorum below.
		twice(t, func() error { return act.SetNumberSyncStandbys(ctx, "default", 0) })
		mon.WaitStable(t, 3, time.Minute)
	})

	t.Run("replication_quorum", func(t *testing.T) {
		twice(t, func() error { return act.SetReplicationQuorum(ctx, "default", "node3", false) })
		if n, _ := node(observeNow(t), "node3"); n.ReplicationQuorum {
			t.Errorf("node3 replication quorum still true")
		}
		mon.WaitStable(t, 3, time.Minute)
		twice(t, func() error { return act.SetReplicationQuorum(ctx, "default", "node3", true) })
		if n, _ := node(observeNow(t), "node3"); !n.ReplicationQuorum {
			t.Errorf("node3 replication quorum still false")
		}
		mon.WaitStable(t, 3, time.Minute)
	})

	t.Run("maintenance", func(t *testing.T) {
		n3, _ := node(observeNow(t), "node3")
		twice(t, func() error { return act.StartMaintenance(ctx, n3.ID) })
		waitObserved(t, "node3 in maintenance", time.Minute, func(m observe.Monitor) bool {
			n, _ := node(m, "node3")
			return n.ReportedState == "maintenance" && n.AssignedState == "maintenance"
		})
		if err := act.StartMaintenance(ctx, n3.ID); err != nil {
			t.Errorf("start again once in maintenance: %v", err)
		}
		twice(t, func() error { return act.StopMaintenance(ctx, n3.ID) })
		mon.WaitStable(t, 3, 2*time.Minute)
		if err := act.StopMaintenance(ctx, n3.ID); err != nil {
			t.Errorf("stop again once secondary: %v", err)
		}
		if err := act.StartMaintenance(ctx, 999999); !errors.Is(err, actuators.ErrNodeNotFound) {
			t.Errorf("unknown node id: err = %v, want ErrNodeNotFound", err)
		}
	})

	t.Run("switchover", func(t *testing.T) {
		old := primary(observeNow(t))
		if old == "" {
			t.Fatal("no primary before the switchover")
		}
		twice(t, func() error { return act.PerformSwitchover(ctx, "default", 0, old) })
		waitObserved(t, "a new primary", 2*time.Minute, func(m observe.Monitor) bool {
			p := primary(m)
			return p != "" && p != old
		})
		mon.WaitStable(t, 3, 2*time.Minute)
		now := primary(observeNow(t))
		if err := act.PerformSwitchover(ctx, "default", 0, old); err != nil {
			t.Fatalf("again from %s: %v", old, err)
		}
		m := observeNow(t)
		if p := primary(m); p != now {
			t.Errorf("primary moved from %s to %s on a repeated call", now, p)
		}
		for _, n := range m.Nodes {
			if n.AssignedState != n.ReportedState {
				t.Errorf("a repeated call started something: %s assigned %s", n.Name, n.AssignedState)
			}
		}
		t.Logf("switchover %s -> %s", old, now)
	})

	t.Run("remove_node", func(t *testing.T) {
		m := observeNow(t)
		var victim string
		for _, n := range m.Nodes {
			if n.AssignedState == "secondary" {
				victim = n.Name
				break
			}
		}
		if victim == "" {
			t.Fatal("no secondary to remove")
		}
		twice(t, func() error { return act.RemoveNode(ctx, pgaftest.Host, nodes[victim].Port, false) })
		waitObserved(t, victim+" gone", time.Minute, func(m observe.Monitor) bool {
			_, ok := node(m, victim)
			return !ok
		})
		if err := act.RemoveNode(ctx, pgaftest.Host, nodes[victim].Port, false); err != nil {
			t.Errorf("removing a removed node: %v", err)
		}
		nodes[victim].Stop(t)
	})

	t.Run("remove_node_by_id_force", func(t *testing.T) {
		m := observeNow(t)
		var victim observe.Node
		for _, n := range m.Nodes {
			if n.AssignedState == "secondary" {
				victim = n
			}
		}
		if victim.Name == "" {
			t.Fatal("no secondary to remove")
		}
		nodes[victim.Name].Stop(t) // its keeper cannot help: force must do it alone
		twice(t, func() error { return act.RemoveNodeByID(ctx, victim.ID, true) })
		if _, ok := node(observeNow(t), victim.Name); ok {
			t.Errorf("%s still registered right after a forced removal", victim.Name)
		}
	})
}
