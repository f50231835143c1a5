//go:build e2e

package e2e

import (
	"context"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFailoverBench measures, over E2E_FAILOVER_RUNS power cuts of the
// primary's VM (not CI: e2e/bench/failover.sh runs it), under a write load
// (pgbench, PgbenchClients clients, and the acknowledged-write recorder,
// both through `reconciler dsn` as printed): the write-unavailability
// window the writer sees, where the seconds went (the monitor's event
// timestamps: unhealthy, election, demote timer, promotion), the time to
// full redundancy after the VM returns (power-on, then `reconciler apply`),
// and once, the re-clone time of a secondary (a rebuild token, apply).
// E2E_FAILOVER_SETTINGS=tuned keeps the lab's failover settings, default
// removes them (pg_auto_failover's defaults). Every acknowledged row must
// be on every node at the end.
func TestFailoverBench(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("E2E_FAILOVER_RUNS"))
	if runs <= 0 {
		t.Skip("a benchmark: set E2E_FAILOVER_RUNS (e2e/bench/failover.sh)")
	}
	settings := os.Getenv("E2E_FAILOVER_SETTINGS")
	if settings != "default" && settings != "tuned" {
		t.Fatalf("E2E_FAILOVER_SETTINGS=%q: want default or tuned", settings)
	}
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+6*runs)*time.Minute)
	defer cancel()
	freshCluster(t, ctx, l, "main")
	r := newRec(t, l)
	if settings == "default" {
		b, err := os.ReadFile(r.desired)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		i := strings.Index(text, "    # Failover timing")
		if i < 0 {
			t.Fatal("the lab's desired state has no failover settings block")
		}
		if err := os.WriteFile(r.desired, []byte(text[:i]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 3*time.Minute)
	dsn := dsnOf(t, ctx, r)
	if err := InitLoad(ctx, dsn, 10); err != nil {
		t.Fatal(err)
	}
	load := StartLoad(ctx, dsn, PgbenchClients)
	defer load.Stop()
	w := startAppWriter(t, ctx, r)
	if err := load.WaitFlowing(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	var gaps, full []time.Duration
	var all []FailoverPhases
	for i := 1; i <= runs; i++ {
		prim := waitStable(t, ctx, l, 3, 3*time.Minute)
		if prim.Name == "node3" { // vm3 also carries the monitor
			promote(t, ctx, l, "node1")
			prim = waitStable(t, ctx, l, 3, time.Minute)
		}
		vmName := nodeVM[prim.Name]
		// Writes must be flowing before the cut.
		if err := poll(ctx, time.Minute, "writes flowing", func(ctx context.Context) (bool, string, error) {
			return time.Since(w.LastAck().At) < time.Second, w.Describe(), nil
		}); err != nil {
			t.Fatal(err)
		}
		before, _ := load.TPS(time.Now().Add(-10*time.Second), time.Now())
		off := time.Now()
		if err := l.PowerOff(ctx, vmName); err != nil {
			t.Fatal(err)
		}
		if err := poll(ctx, 3*time.Minute, "writes resume", func(ctx context.Context) (bool, string, error) {
			// The longest gap since the cut, followed by 2 s of writes:
			// acknowledgements of the last moments before the cut do not count.
			gap, resumed := w.Unavailability(off)
			return gap > time.Second && w.LastAck().At.Sub(resumed) > 2*time.Second, w.Describe(), nil
		}); err != nil {
			t.Fatal(err)
		}
		gap, resumed := w.Unavailability(off)
		events, err := monitorEvents(ctx, monitorURI(l), off.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ph := failoverPhases(events, off, prim.Name, resumed)
		on := time.Now()
		if err := l.PowerOn(ctx, vmName); err != nil {
			t.Fatal(err)
		}
		r.applyUntil(t, ctx, 5*time.Minute)
		np := waitStable(t, ctx, l, 3, 5*time.Minute)
		fr := time.Since(on)
		after, _ := load.TPS(time.Now().Add(-10*time.Second), time.Now())
		t.Logf("BENCH %s run %d: primary %s on %s lost, new primary %s: write unavailability %s (%s); full redundancy %s after power-on; pgbench %.0f tps before, %.0f after",
			settings, i, prim.Name, vmName, np.Name, gap.Round(100*time.Millisecond), ph, fr.Round(100*time.Millisecond), before, after)
		gaps, full, all = append(gaps, gap), append(full, fr), append(all, ph)
	}
	// Re-clone a secondary by commit, once.
	prim := waitStable(t, ctx, l, 3, time.Minute)
	target := "node2"
	if prim.Name == "node2" {
		target = "node1"
	}
	line := map[string]string{"node1": "{name: node1, vm: vm1, port: 5432", "node2": "{name: node2, vm: vm2, port: 5432"}[target]
	r.edit(t, line, line+`, rebuild: "bench"`)
	cs := time.Now()
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 5*time.Minute)
	clone := time.Since(cs)
	load.Stop()
	acks := w.Acks()
	w.Stop()
	everyAckEverywhere(t, ctx, l, acks)
	phase := func(f func(FailoverPhases) time.Duration) string {
		var ds []time.Duration
		for _, p := range all {
			ds = append(ds, f(p))
		}
		return "+" + median(ds).Round(100*time.Millisecond).String()
	}
	t.Logf("BENCH %s over %d runs: write unavailability median %s, worst %s (%s); phases (medians): unhealthy %s, election %s, demote timer %s, promote %s, promoted %s, first write %s; "+
		"full redundancy after power-on median %s; re-clone of %s %s; %s; writer: %s",
		settings, runs, median(gaps).Round(100*time.Millisecond), slices.Max(gaps).Round(100*time.Millisecond), durations(gaps),
		phase(func(p FailoverPhases) time.Duration { return p.Unhealthy }), phase(func(p FailoverPhases) time.Duration { return p.Election }),
		phase(func(p FailoverPhases) time.Duration { return p.DemoteTimer }), phase(func(p FailoverPhases) time.Duration { return p.Promote }),
		phase(func(p FailoverPhases) time.Duration { return p.Promoted }), phase(func(p FailoverPhases) time.Duration { return p.FirstWrite }),
		median(full).Round(100*time.Millisecond), target, clone.Round(100*time.Millisecond), load.Describe(), w.Describe())
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
