package service

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/internal/pgaftest"
)

func TestFileLockOneHolderNamesIt(t *testing.T) {
	dir := t.TempDir()
	a, b := NewFileLock(dir, "instance-a"), NewFileLock(dir, "instance-b")
	ctx := context.Background()
	if err := a.Hold(ctx, nil, "main"); err != nil {
		t.Fatal(err)
	}
	if err := a.Hold(ctx, nil, "main"); err != nil {
		t.Fatalf("holding again: %v", err)
	}
	var he *HeldError
	if err := b.Hold(ctx, nil, "main"); !errors.As(err, &he) || !strings.Contains(he.Holder, "instance-a") {
		t.Fatalf("second instance: %v, want *HeldError naming instance-a", err)
	}
	if err := b.Hold(ctx, nil, "other"); err != nil {
		t.Errorf("another cluster's lock: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Hold(ctx, nil, "main"); err != nil {
		t.Errorf("after release: %v", err)
	}
	if got := b.Held(); len(got) != 2 {
		t.Errorf("held %v", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMonitorLockOnARealMonitor takes the advisory lock as autoctl_node on
// a real pg_auto_failover monitor: allowed, exclusive, named in
// pg_stat_activity, and released when the holder's session ends.
func TestMonitorLockOnARealMonitor(t *testing.T) {
	m := pgaftest.StartMonitor(t)
	st := &desired.State{
		VMs:      []desired.VM{{Name: "vm", Address: pgaftest.Host}},
		Clusters: []desired.Cluster{{Name: "main", Formation: "default", Monitor: desired.Monitor{VM: "vm", Port: m.Port}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := NewMonitorLock("reconciler-a"), NewMonitorLock("reconciler-b")
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	if err := a.Hold(ctx, st, "main"); err != nil {
		t.Fatalf("first instance: %v", err)
	}
	if err := a.Hold(ctx, st, "main"); err != nil {
		t.Fatalf("first instance again: %v", err)
	}
	// The session probes its peer: a holder whose host dies loses the
	// lock in seconds, not hours.
	for name, want := range lockSessionParams {
		var got string
		if err := a.held["main"].conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil || got != want {
			t.Errorf("lock session %s = %q (%v), want %s", name, got, err, want)
		}
	}
	var he *HeldError
	err := b.Hold(ctx, st, "main")
	if !errors.As(err, &he) || !strings.Contains(he.Holder, `"reconciler-a"`) || !strings.Contains(he.Holder, "127.0.0.1") {
		t.Fatalf("second instance: %v, want *HeldError naming reconciler-a from 127.0.0.1", err)
	}
	t.Logf("second instance sees: %v", err)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// The server releases the lock when it sees the session end.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := b.Hold(ctx, st, "main")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock not free after the holder closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A monitor that accepts connections and never answers (a hung
	// one) holds up its own cluster's Hold, not another's.
	hung, err := net.Listen("tcp", pgaftest.Host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	st.Clusters = append(st.Clusters, desired.Cluster{Name: "hung", Formation: "default", Monitor: desired.Monitor{VM: "vm", Port: hung.Addr().(*net.TCPAddr).Port}})
	b.ConnectTimeout = 3 * time.Second
	hungDone := make(chan error, 1)
	go func() { hungDone <- b.Hold(ctx, st, "hung") }()
	time.Sleep(200 * time.Millisecond) // the hung Hold is connecting
	start := time.Now()
	if err := b.Hold(ctx, st, "main"); err != nil || time.Since(start) > time.Second {
		t.Errorf("main's Hold beside a hung monitor: %v after %s, want its held lock at once", err, time.Since(start))
	}
	if err := <-hungDone; !errors.As(err, new(*LockUnreachableError)) {
		t.Errorf("hung monitor: %v, want *LockUnreachableError", err)
	}
	st.Clusters = st.Clusters[:1]

	var ue *LockUnreachableError
	st.Clusters[0].Monitor.Port = pgaftest.FreePort(t)
	if err := NewMonitorLock("c").Hold(ctx, st, "main"); !errors.As(err, &ue) {
		t.Errorf("no monitor: %v, want *LockUnreachableError", err)
	}
}
