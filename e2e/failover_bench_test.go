//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFailoverBench measures, over E2E_FAILOVER_RUNS power cuts of the
// primary's VM (not CI: e2e/bench/failover.sh runs it), the
// write-unavailability window seen by a writer through `reconciler dsn`,
// the time to full redundancy after the VM returns (power-on, then
// `reconciler apply`), and the re-clone time of a secondary (a rebuild
// token, apply). E2E_FAILOVER_SETTINGS=tuned keeps the lab's failover
// settings, default removes them (pg_auto_failover's defaults).
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
		i := strings.Index(text, "    # Fast failover")
		if i < 0 {
			t.Fatal("the lab's desired state has no failover settings block")
		}
		if err := os.WriteFile(r.desired, []byte(text[:i]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 3*time.Minute)
	w := startAppWriter(t, ctx, r)
	var gaps, full, clones []time.Duration
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
		gap, _ := w.Unavailability(off)
		on := time.Now()
		if err := l.PowerOn(ctx, vmName); err != nil {
			t.Fatal(err)
		}
		r.applyUntil(t, ctx, 5*time.Minute)
		waitStable(t, ctx, l, 3, 5*time.Minute)
		fr := time.Since(on)
		// Re-clone a secondary by commit.
		prim = waitStable(t, ctx, l, 3, time.Minute)
		target := "node2"
		if prim.Name == "node2" {
			target = "node1"
		}
		line := map[string]string{"node1": "{name: node1, vm: vm1, port: 5432", "node2": "{name: node2, vm: vm2, port: 5432"}[target]
		b, err := os.ReadFile(r.desired)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		j := strings.Index(text, line)
		if j < 0 {
			t.Fatalf("no %q in the desired state", line)
		}
		end := j + strings.Index(text[j:], "}")
		text = text[:j] + line + fmt.Sprintf(`, rebuild: "bench-%d"`, i) + text[end:]
		if err := os.WriteFile(r.desired, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cs := time.Now()
		r.apply(t, ctx)
		waitStable(t, ctx, l, 3, 5*time.Minute)
		clone := time.Since(cs)
		t.Logf("BENCH %s run %d: primary's %s lost (new primary %s): write unavailability %s; full redundancy %s after power-on; re-clone of %s %s",
			settings, i, vmName, prim.Name, gap.Round(100*time.Millisecond), fr.Round(100*time.Millisecond), target, clone.Round(100*time.Millisecond))
		gaps, full, clones = append(gaps, gap), append(full, fr), append(clones, clone)
	}
	t.Logf("BENCH %s median over %d runs: write unavailability %s, full redundancy after power-on %s, re-clone %s",
		settings, runs, median(gaps).Round(100*time.Millisecond), median(full).Round(100*time.Millisecond), median(clones).Round(100*time.Millisecond))
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
