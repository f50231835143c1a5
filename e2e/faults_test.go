//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The cluster survives the loss of any VM, an old primary rejoins, a
// diverged node is re-cloned, a rebuild token re-clones once, a partition
// of the primary heals to one primary, and the monitor's VM may go and
// come back: all proven with a writer's acknowledged inserts. One cluster,
// "main" (the lab's reference layout with the auto policy and a 1 minute
// grace period), shared by the subtests in order.

// nodeVM is where each node of the reference layout runs.
var nodeVM = map[string]string{"node1": "vm1", "node2": "vm2", "node3": "vm3"}

// nodeURIs are the direct connection strings of the three nodes.
func nodeURIs(t *testing.T, l *Lab) map[string]string {
	t.Helper()
	m := map[string]string{}
	for node, vmName := range nodeVM {
		vm, err := l.VM(vmName)
		if err != nil {
			t.Fatal(err)
		}
		port := 5432
		if node == "node3" {
			port = 5433
		}
		m[node] = fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable&connect_timeout=2", vm.Address, port)
	}
	return m
}

// promote asks the monitor to make node the primary (the test's own
// setup step, as an operator would with pg_autoctl perform promotion), and
// waits for the cluster to settle with it.
func promote(t *testing.T, ctx context.Context, l *Lab, node string) {
	t.Helper()
	if p := waitStable(t, ctx, l, 3, 3*time.Minute); p.Name == node {
		return
	}
	promoteOn(t, ctx, monitorURI(l), node)
}

// promoteOn makes node the primary of the 3-node cluster whose monitor is
// uri (a switchover), unless it already is, and waits until it settles.
func promoteOn(t *testing.T, ctx context.Context, uri, node string) (switched bool) {
	t.Helper()
	nodes, err := monitorNodes(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := stable(nodes, 3); ok && p.Name == node {
		return false
	}
	if err := execSQL(ctx, uri, fmt.Sprintf(`SELECT pgautofailover.perform_promotion('default', '%s')`, node)); err != nil {
		t.Fatalf("perform_promotion %s: %v", node, err)
	}
	err = poll(ctx, 3*time.Minute, node+" primary", func(ctx context.Context) (bool, string, error) {
		nodes, err := monitorNodes(ctx, uri)
		if err != nil {
			return false, err.Error(), nil
		}
		p, ok := stable(nodes, 3)
		return ok && p.Name == node, summary(nodes), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// planJSON is what `plan --output json` prints, as far as the test reads it.
type planJSON struct {
	Clusters []struct {
		Name    string `json:"name"`
		Actions []struct {
			Kind        string   `json:"kind"`
			Node        string   `json:"node"`
			Trigger     string   `json:"trigger"`
			Destructive bool     `json:"destructive"`
			Disruptive  bool     `json:"disruptive"`
			Evidence    []string `json:"evidence"`
		} `json:"actions"`
		Blocked []struct {
			Node   string `json:"node"`
			Guard  string `json:"guard"`
			Reason string `json:"reason"`
		} `json:"blocked"`
	} `json:"clusters"`
}

func (r *rec) plan(t *testing.T, ctx context.Context) (planJSON, string) {
	t.Helper()
	out, errOut, code := r.run(t, ctx, "plan", "--output", "json")
	if code != 0 && code != 2 {
		t.Fatalf("plan exited %d: %s", code, tail(errOut, 20))
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, out)
	}
	return p, out
}

// applyUntil runs apply until it converges: right after a power-on or a
// reconnect a VM may not answer SSH yet (vm_unobserved), which is not a
// failure of the reconciler.
func (r *rec) applyUntil(t *testing.T, ctx context.Context, timeout time.Duration) string {
	t.Helper()
	var out, errOut string
	code := -1
	err := poll(ctx, timeout, "apply converges", func(ctx context.Context) (bool, string, error) {
		out, errOut, code = r.run(t, ctx, "apply")
		return code == 0, fmt.Sprintf("exit %d: %s", code, tail(out, 4)), nil
	})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, tail(errOut, 30))
	}
	t.Logf("apply:\n%s", out)
	return out
}

func TestFaultsOnLab(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	freshCluster(t, ctx, l, "main")
	r := newRec(t, l)
	r.edit(t, `    ssl: "off"`, "    ssl: \"off\"\n    diverged_nodes: {policy: auto, grace_period: 1m}")
	start := time.Now()
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 2*time.Minute)
	t.Logf("bring-up: %s", time.Since(start).Round(time.Second))

	uris := nodeURIs(t, l)
	// The VMs are lost under a write load (pgbench through the DSN as
	// printed), besides the acknowledged-write recorder.
	dsn := dsnOf(t, ctx, r)
	if err := InitLoad(ctx, dsn, 5); err != nil {
		t.Fatal(err)
	}
	load := StartLoad(ctx, dsn, PgbenchClients)
	loading := true
	defer func() {
		if loading {
			load.Stop()
		}
	}()
	w := startAppWriter(t, ctx, r)
	s := StartSampler(ctx, uris, SampleTimeout)
	sampling := true
	defer func() {
		if sampling {
			s.Stop()
		}
	}()
	// writesResume polls until the writer has acknowledged inserts after
	// since, and returns the unavailability window.
	writesResume := func(t *testing.T, what string, since time.Time, timeout time.Duration) time.Duration {
		t.Helper()
		called := time.Now() // the fault is in place (docker kill may take seconds on a busy machine)
		err := poll(ctx, timeout, "writes after "+what, func(ctx context.Context) (bool, string, error) {
			last := w.LastAck()
			// Acknowledged within the last second: writes flow now. A
			// silence still going on is not over, whatever came before it.
			flowing := time.Since(last.At) < time.Second
			gap, resumed := w.Unavailability(since)
			if gap >= time.Second {
				// Two seconds of writes after the gap: they are flowing again.
				return flowing && last.At.Sub(resumed) > 2*time.Second, w.Describe(), nil
			}
			// No gap yet: done once writes kept flowing for 5 s after the
			// fault took effect (a secondary or the monitor lost).
			return flowing && time.Since(called) > 5*time.Second, w.Describe(), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		gap, _ := w.Unavailability(since)
		return gap
	}
	results := []string{}
	defer func() { t.Logf("measured:\n  %s", strings.Join(results, "\n  ")) }()

	for _, vmName := range []string{"vm1", "vm2", "vm3"} {
		ok := t.Run("power_off_"+vmName, func(t *testing.T) {
			prim := waitStable(t, ctx, l, 3, 3*time.Minute)
			if vmName == "vm3" && prim.Name == "node3" {
				// vm3 carries the monitor: losing it with the primary
				// leaves nobody to decide a failover. Move the primary
				// first, as an operator would before maintenance.
				promote(t, ctx, l, "node1")
				prim = waitStable(t, ctx, l, 3, time.Minute)
			}
			ids := nodeIDs(t, ctx, l)
			lost := ""
			for n, v := range nodeVM {
				if v == vmName {
					lost = n
				}
			}
			off := time.Now()
			s.Mark("power-off " + vmName)
			if err := l.PowerOff(ctx, vmName); err != nil {
				t.Fatal(err)
			}
			gap := writesResume(t, "power-off of "+vmName, off, 3*time.Minute)
			role := "secondary"
			if prim.Name == lost {
				role = "primary"
			}
			t.Logf("%s off (%s was %s): writes unavailable for %s", vmName, lost, role, gap.Round(100*time.Millisecond))
			what := fmt.Sprintf("power-off %s (%s %s): write unavailability %s", vmName, lost, role, gap.Round(100*time.Millisecond))
			if role == "primary" {
				_, resumed := w.Unavailability(off)
				if events, err := monitorEvents(ctx, monitorURI(l), off.Add(-time.Second)); err == nil {
					what += " (" + failoverPhases(events, off, lost, resumed).String() + ")"
				}
			}
			results = append(results, what)
			if role == "secondary" && gap > 10*time.Second {
				t.Errorf("losing a secondary stopped writes for %s", gap)
			}
			if vmName == "vm3" {
				// The monitor is down: nothing destructive is planned, and
				// plan says why.
				p, out := r.plan(t, ctx)
				for _, c := range p.Clusters {
					for _, a := range c.Actions {
						if a.Destructive || a.Disruptive {
							t.Errorf("monitor down: %s %s planned", a.Kind, a.Node)
						}
					}
					if len(c.Blocked) == 0 || !strings.Contains(out, "vm3") {
						t.Errorf("monitor down: plan does not say it is blocked on vm3:\n%s", out)
					}
				}
				stOut, _, _ := r.run(t, ctx, "status")
				if !strings.Contains(stOut, "vm3") {
					t.Errorf("status does not name vm3:\n%s", stOut)
				}
				t.Logf("plan while vm3 is off:\n%s", out)
			}
			on := time.Now()
			s.Mark("power-on " + vmName)
			if err := l.PowerOn(ctx, vmName); err != nil {
				t.Fatal(err)
			}
			r.applyUntil(t, ctx, 5*time.Minute)
			waitStable(t, ctx, l, 3, 5*time.Minute)
			full := time.Since(on)
			results = append(results, fmt.Sprintf("power-on %s: full redundancy (1 primary + 2 secondaries) after %s", vmName, full.Round(100*time.Millisecond)))
			if got := nodeIDs(t, ctx, l); fmt.Sprint(got) != fmt.Sprint(ids) {
				t.Logf("node ids changed (a re-clone): %v -> %v", ids, got)
			}
		})
		if !ok {
			t.FailNow()
		}
	}

	load.Stop()
	loading = false
	results = append(results, "write load during the power cuts: "+load.Describe())

	t.Run("forced_divergence_is_recloned", func(t *testing.T) {
		// node1 primary, node2 the victim: node2 comes after node1 in the
		// application's host list, so the writer never reaches the fork.
		promote(t, ctx, l, "node1")
		ids := nodeIDs(t, ctx, l)
		forkStart := time.Now()
		s.Ignore("node2", true)
		defer s.Ignore("node2", false)
		s.Mark("disconnect vm2, promote node2 by hand (fork)")
		if err := l.Disconnect(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		// The operator's error: node2, cut off, is promoted by hand and
		// written to. Its history forks from node1's.
		if _, err := docker(ctx, "exec", "main-node2", "sh", "-c", `pg_ctl promote -w -D "$PGDATA"`); err != nil {
			t.Fatal(err)
		}
		if _, err := docker(ctx, "exec", "main-node2", "psql", "-d", "postgres", "-c",
			// Committed locally: node2 kept the primary's synchronous_standby_names.
			"SET synchronous_commit = local; CREATE TABLE forked_alone(x int); INSERT INTO forked_alone SELECT generate_series(1, 1000)"); err != nil {
			t.Fatal(err)
		}
		s.Mark("reconnect vm2")
		if err := l.Reconnect(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		var ev []string
		err := poll(ctx, 4*time.Minute, "the reconciler plans node2's wipe", func(ctx context.Context) (bool, string, error) {
			p, out := r.plan(t, ctx)
			for _, c := range p.Clusters {
				for _, a := range c.Actions {
					if a.Destructive && a.Node == "node2" && a.Trigger == "diverged" {
						ev = a.Evidence
						return true, "", nil
					}
				}
			}
			return false, tail(out, 6), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("divergence evidence after %s: %q", time.Since(back).Round(time.Second), ev)
		if !strings.Contains(strings.Join(ev, " "), "timeline") {
			t.Errorf("evidence does not name the timeline: %q", ev)
		}
		cloneStart := time.Now()
		out, errOut, code := r.run(t, ctx, "apply")
		if code != 0 {
			t.Fatalf("apply exited %d:\n%s\n%s", code, out, tail(errOut, 30))
		}
		if !strings.Contains(out, "evidence:") || !strings.Contains(errOut, `"trigger":"diverged"`) || !strings.Contains(errOut, `"commit"`) {
			t.Errorf("apply did not log the wipe's evidence and commit:\n%s\n%s", out, tail(errOut, 30))
		}
		waitStable(t, ctx, l, 3, 3*time.Minute)
		results = append(results, fmt.Sprintf("forced divergence: wipe planned %s after reconnect (grace 1m); re-clone (apply) %s", cloneStart.Sub(back).Round(time.Second), time.Since(cloneStart).Round(100*time.Millisecond)))
		got := nodeIDs(t, ctx, l)
		if got["node2"] == ids["node2"] || got["node1"] != ids["node1"] || got["node3"] != ids["node3"] {
			t.Errorf("node ids %v -> %v: want only node2 re-registered", ids, got)
		}
		vm2, err := l.VM("vm2")
		if err != nil {
			t.Fatal(err)
		}
		if n := w.Servers(forkStart)[vm2.Address+":5432"]; n > 0 {
			t.Errorf("%d of the writer's inserts were acknowledged by the fork node2", n)
		}
		forked := -1
		if conn, err := pgx.Connect(ctx, uris["node2"]); err != nil {
			t.Error(err)
		} else {
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = 'forked_alone'`).Scan(&forked); err != nil {
				t.Error(err)
			}
			conn.Close(ctx)
		}
		if forked != 0 {
			t.Errorf("node2 still has the forked table after its re-clone")
		}
	})

	t.Run("rebuild_token_reclones_once", func(t *testing.T) {
		prim := waitStable(t, ctx, l, 3, 3*time.Minute)
		target := "node3"
		if prim.Name == "node3" {
			target = "node2"
		}
		ids := nodeIDs(t, ctx, l)
		line := map[string]string{"node2": "{name: node2, vm: vm2, port: 5432}", "node3": "{name: node3, vm: vm3, port: 5433}"}[target]
		r.edit(t, line, strings.TrimSuffix(line, "}")+`, rebuild: "e2e-1"}`)
		start := time.Now()
		out := r.apply(t, ctx)
		if !strings.Contains(out, "remove_volume") || strings.Count(out, "create_node") != 1 {
			t.Errorf("rebuild did not wipe and create once:\n%s", out)
		}
		waitStable(t, ctx, l, 3, 3*time.Minute)
		results = append(results, fmt.Sprintf("rebuild token: %s re-cloned in %s", target, time.Since(start).Round(100*time.Millisecond)))
		got := nodeIDs(t, ctx, l)
		for n := range ids {
			if (n == target) == (got[n] == ids[n]) {
				t.Errorf("node ids %v -> %v: want only %s changed", ids, got, target)
			}
		}
		if out := r.apply(t, ctx); !strings.Contains(out, "No changes") {
			t.Errorf("second apply with the same token did something:\n%s", out)
		}
	})

	t.Run("partition_of_the_primary_heals_to_one_primary", func(t *testing.T) {
		// A real partition (packets dropped between the primary's VM and
		// the others) that outlasts the failover; the writer and the
		// sampler, on the machine, still reach the old primary, as an
		// application on its side would.
		res := partitionOnce(t, ctx, l, r, w, s, "iptables", partitionDurations[1])
		t.Logf("partition: %s", res)
		results = append(results, "partition of the primary: "+res.String())
		switch {
		case res.promoted.IsZero():
			t.Errorf("no other node took writes during the %s partition of %s: no failover", partitionDurations[1], res.vm)
		case res.bad > 0 || res.stopped.IsZero() || res.margin() < 0:
			t.Errorf("the old primary %s still took writes when %s did (%d samples with two writers)", res.old, res.newPrimary, res.bad)
		}
	})

	t.Run("every_acknowledged_row_everywhere_and_one_writer", func(t *testing.T) {
		w.Stop()
		samples, bad := s.Stop()
		sampling = false
		acks := w.Acks()
		if len(acks) == 0 {
			t.Fatal(ErrNoAcks)
		}
		t.Logf("writer: %s; %d samples of pg_is_in_recovery on every node", w.Describe(), samples)
		for _, b := range bad {
			t.Errorf("two nodes accepted writes at %s: %v", b.At.Format(time.RFC3339Nano), b.Writers)
		}
		if len(bad) > 0 {
			t.Logf("sampler timeline:\n%s", s.Timeline())
		}
		waitStable(t, ctx, l, 3, 3*time.Minute)
		for node, uri := range uris {
			err := poll(ctx, 2*time.Minute, "every acknowledged row on "+node, func(ctx context.Context) (bool, string, error) {
				missing, err := MissingOn(ctx, uri, acks)
				if err != nil {
					return false, err.Error(), nil
				}
				if len(missing) > 0 {
					return false, fmt.Sprintf("%d of %d acknowledged rows missing (first %d)", len(missing), len(acks), missing[0]), nil
				}
				return true, "", nil
			})
			if err != nil {
				t.Error(err)
			}
		}
		results = append(results, fmt.Sprintf("%d acknowledged inserts, all on every node; %d writer samples, %d with two writers", len(acks), samples, len(bad)))
	})
}
