package pgaftest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestMonitorAndNodes proves the helper itself: a monitor starts, two nodes
// register and become primary and secondary, and everything is gone after
// cleanup.
func TestMonitorAndNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real PostgreSQL instances")
	}
	var dir string
	t.Run("start", func(t *testing.T) {
		m := StartMonitor(t)
		dir = m.Dir
		m.StartNode(t, "node1")
		m.StartNode(t, "node2")
		m.WaitStable(t, 2, NodeReadyTimeout)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, m.SuperuserConnString())
		if err != nil {
			t.Fatalf("superuser on loopback: %v", err)
		}
		defer c.Close(ctx)
		var super bool
		if err := c.QueryRow(ctx, "select rolsuper from pg_roles where rolname = current_user").Scan(&super); err != nil {
			t.Fatal(err)
		}
		if !super {
			t.Errorf("SuperuserConnString connects as a non-superuser")
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after cleanup (stat: %v)", dir, err)
	}
}

// TestSkipsWithoutPgAutoctl: outside CI, a machine without pg_autoctl
// skips the tests that need it instead of failing them.
func TestSkipsWithoutPgAutoctl(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // an empty directory: no pg_autoctl
	t.Setenv("CI", "")
	reachedEnd := false
	skipped := false
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		StartMonitor(t)
		reachedEnd = true
	})
	if !skipped || reachedEnd {
		t.Errorf("skipped=%v reachedEnd=%v, want a skip before starting anything", skipped, reachedEnd)
	}
}
