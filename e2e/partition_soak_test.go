//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestPartitionSoak cuts the primary's VM off the network E2E_PARTITION_RUNS
// times (not CI: e2e/bench/partition.sh runs it), 20 s each, heals it,
// converges with apply, and checks with the pg_is_in_recovery sampler that
// no two nodes ever accepted writes at once. The faults suite does one
// partition; a race that shows once in ten (a keeper blocked on a dead
// monitor connection never demoting itself) needs the repetition. On a
// failure it prints the sampler's timeline and the old primary's log.
func TestPartitionSoak(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("E2E_PARTITION_RUNS"))
	if runs <= 0 {
		t.Skip("a soak: set E2E_PARTITION_RUNS (e2e/bench/partition.sh)")
	}
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+2*runs)*time.Minute)
	defer cancel()
	freshCluster(t, ctx, l, "main")
	r := newRec(t, l)
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 2*time.Minute)
	w := startAppWriter(t, ctx, r)
	s := StartSampler(ctx, nodeURIs(t, l), 500*time.Millisecond)
	defer s.Stop()
	for i := 1; i <= runs; i++ {
		prim := waitStable(t, ctx, l, 3, 3*time.Minute)
		if prim.Name == "node3" {
			// vm3 carries the monitor: its partition is another scenario.
			promote(t, ctx, l, "node1")
			prim = waitStable(t, ctx, l, 3, time.Minute)
		}
		vmName := nodeVM[prim.Name]
		_, before := s.Counts()
		s.Mark("disconnect " + vmName)
		if err := l.Disconnect(ctx, vmName); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Second):
		}
		s.Mark("reconnect " + vmName)
		if err := l.Reconnect(ctx, vmName); err != nil {
			t.Fatal(err)
		}
		r.applyUntil(t, ctx, 5*time.Minute)
		p := waitStable(t, ctx, l, 3, 5*time.Minute)
		_, after := s.Counts()
		t.Logf("BENCH partition %d of %s (%s primary): new primary %s, %d samples with two writers", i, vmName, prim.Name, p.Name, after-before)
		if after > before {
			out, _ := exec.CommandContext(ctx, "docker", "logs", "--since", "2m", "main-"+prim.Name).CombinedOutput()
			t.Errorf("partition %d: two nodes accepted writes; %s's log:\n%s", i, prim.Name, tail(string(out), 80))
		}
	}
	samples, bad := s.Stop()
	if len(bad) > 0 {
		t.Logf("sampler timeline:\n%s", s.Timeline())
	}
	acks := w.Acks()
	w.Stop()
	t.Logf("BENCH %d partitions: %d samples, %d with two writers; writer: %s", runs, samples, len(bad), w.Describe())
	if len(acks) == 0 {
		t.Fatal(ErrNoAcks)
	}
	for node, uri := range nodeURIs(t, l) {
		err := poll(ctx, 2*time.Minute, "every acknowledged row on "+node, func(ctx context.Context) (bool, string, error) {
			missing, err := MissingOn(ctx, uri, acks)
			if err != nil {
				return false, err.Error(), nil
			}
			return len(missing) == 0, fmt.Sprintf("%d of %d acknowledged rows missing", len(missing), len(acks)), nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}
