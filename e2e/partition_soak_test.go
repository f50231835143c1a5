//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// partitionDurations are the lengths of the soak's partitions, in turn:
// 20 to 60 s, so that both a short cut (the primary barely past its
// partition timeout) and a long one are seen.
var partitionDurations = []time.Duration{20 * time.Second, 40 * time.Second, 60 * time.Second, 30 * time.Second, 50 * time.Second}

// TestPartitionSoak partitions the primary's VM from the other VMs
// E2E_PARTITION_RUNS times in a row (not CI: e2e/bench/partition.sh runs
// it), 20 to 60 s each, heals it, converges with apply, and checks with the
// sampler (every 250 ms, every node, direct connections) that no two nodes
// ever accepted writes at once, while a writer uses `reconciler dsn` as
// printed. The machine (the sampler, the writer) still reaches the
// partitioned VM, as an application on its side would. E2E_PARTITION_MODE
// "disconnect" cuts the VM off the network instead (the machine loses it
// too). Per partition it prints the keeper's first partition check, the
// old primary's stop, the new primary's first write answer and the margin
// between them, the writer's gap and the time to full redundancy.
func TestPartitionSoak(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("E2E_PARTITION_RUNS"))
	if runs <= 0 {
		t.Skip("a soak: set E2E_PARTITION_RUNS (e2e/bench/partition.sh)")
	}
	mode := os.Getenv("E2E_PARTITION_MODE")
	if mode == "" {
		mode = "iptables"
	}
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+3*runs)*time.Minute)
	defer cancel()
	freshCluster(t, ctx, l, "main")
	r := newRec(t, l)
	r.apply(t, ctx)
	waitStable(t, ctx, l, 3, 2*time.Minute)
	w := startAppWriter(t, ctx, r)
	s := StartSampler(ctx, nodeURIs(t, l), SampleTimeout)
	defer s.Stop()
	var margins []time.Duration
	for i := 1; i <= runs; i++ {
		d := partitionDurations[(i-1)%len(partitionDurations)]
		res := partitionOnce(t, ctx, l, r, w, s, mode, d)
		t.Logf("BENCH partition %d (%s, %s): %s", i, mode, d, res)
		if res.bad > 0 {
			t.Errorf("partition %d: %d samples with two writers", i, res.bad)
		}
		if !res.promoted.IsZero() {
			margins = append(margins, res.margin())
		}
	}
	samples, bad := s.Stop()
	if len(bad) > 0 {
		t.Logf("sampler timeline:\n%s", s.Timeline())
	}
	acks := w.Acks()
	w.Stop()
	t.Logf("BENCH %d partitions (%s): %d samples, %d with two writers; margins (old primary stopped -> new primary writes) %s; writer: %s",
		runs, mode, samples, len(bad), durations(margins), w.Describe())
	everyAckEverywhere(t, ctx, l, acks)
}

// partitionResult is what one partition of the primary's VM showed.
type partitionResult struct {
	vm, old, newPrimary string
	cut, healed         time.Time
	firstCheck          time.Time // the old primary's keeper: first "Checking for network partitions"
	sawStandby          bool      // ... and it still counted a standby then
	stopped, promoted   time.Time // sampler: old primary's last write answer, new primary's first
	gap, redundancy     time.Duration
	bad                 int
}

func (p partitionResult) margin() time.Duration { return p.promoted.Sub(p.stopped) }

func (p partitionResult) String() string {
	rel := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return "+" + at.Sub(p.cut).Round(100*time.Millisecond).String()
	}
	check := rel(p.firstCheck)
	if !p.firstCheck.IsZero() {
		check += map[bool]string{true: " (standby still listed)", false: " (no standby listed)"}[p.sawStandby]
	}
	margin := "n/a"
	if !p.promoted.IsZero() && !p.stopped.IsZero() {
		margin = p.margin().Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%s (%s primary): keeper's first partition check %s; old primary stopped %s; %s took writes %s; margin %s; "+
		"two-writer samples %d; write gap %s; full redundancy %s after the heal",
		p.vm, p.old, check, rel(p.stopped), p.newPrimary, rel(p.promoted), margin, p.bad,
		p.gap.Round(100*time.Millisecond), p.redundancy.Round(100*time.Millisecond))
}

// partitionOnce cuts the primary's VM off for d, heals it, converges, and
// measures. node3 shares vm3 with the monitor (another scenario): when it
// is primary, node1 is promoted first.
func partitionOnce(t *testing.T, ctx context.Context, l *Lab, r *rec, w *Writer, s *Sampler, mode string, d time.Duration) partitionResult {
	t.Helper()
	prim := waitStable(t, ctx, l, 3, 3*time.Minute)
	if prim.Name == "node3" {
		promote(t, ctx, l, "node1")
		prim = waitStable(t, ctx, l, 3, time.Minute)
	}
	res := partitionResult{vm: nodeVM[prim.Name], old: prim.Name}
	// The primary's keeper must run with the profile's partition timeout,
	// not only have it in its file: the safety of the cut depends on it.
	err := poll(ctx, time.Minute, prim.Name+"'s keeper runs with its keeper settings", func(ctx context.Context) (bool, string, error) {
		return keeperSettingsInForce(ctx, "main-"+prim.Name)
	})
	if err != nil {
		t.Fatal(err)
	}
	cut, heal := l.Partition, l.Heal
	if mode == "disconnect" {
		cut, heal = l.Disconnect, l.Reconnect
	}
	_, before := s.Counts()
	s.Mark(mode + " " + res.vm)
	res.cut = time.Now()
	if err := cut(ctx, res.vm); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
	s.Mark("heal " + res.vm)
	if err := heal(ctx, res.vm); err != nil {
		t.Fatal(err)
	}
	res.healed = time.Now()
	r.applyUntil(t, ctx, 5*time.Minute)
	waitStable(t, ctx, l, 3, 5*time.Minute)
	res.redundancy = time.Since(res.healed)
	_, after := s.Counts()
	res.bad = after - before
	res.stopped, res.promoted, res.newPrimary = Handover(s.Changes(res.cut), res.old)
	res.gap, _ = w.Unavailability(res.cut)
	res.firstCheck, res.sawStandby = keeperPartitionCheck(ctx, "main-"+prim.Name, res.cut)
	if res.bad > 0 {
		out, _ := exec.CommandContext(ctx, "docker", "logs", "--timestamps", "--since", res.cut.Add(-5*time.Second).Format(time.RFC3339Nano), "main-"+prim.Name).CombinedOutput()
		t.Logf("%s's log since the cut:\n%s", prim.Name, tail(string(out), 120))
	}
	return res
}

// keeperPartitionCheck reads the container's log (docker's own timestamps)
// since the cut: when the keeper first ran its network partition check,
// and whether pg_autoctl still counted a standby then ("We lost the
// monitor, but still have a standby"), which is what lets a partitioned
// primary demote itself at all (README, "Failover timing").
// keeperSettingsInForce tells, from a node container's log since it last
// started, whether its keeper runs with the network_partition_timeout its
// image's entrypoint set: either the entrypoint found it already in the
// file before pg_autoctl started (no "keeper setting" line), or it set it
// later and the keeper logged the reload ("... is now N"). A setting
// written but never reloaded is the race the entrypoint's second SIGHUP
// closes: the keeper would keep pg_autoctl's default of 20 s.
func keeperSettingsInForce(ctx context.Context, container string) (bool, string, error) {
	started, err := docker(ctx, "inspect", "-f", "{{.State.StartedAt}}", container)
	if err != nil {
		return false, err.Error(), nil
	}
	out, err := exec.CommandContext(ctx, "docker", "logs", "--since", started, container).CombinedOutput()
	if err != nil {
		return false, err.Error(), nil
	}
	log := string(out)
	if !strings.Contains(log, "keeper setting timeout.network_partition_timeout =") {
		return true, "", nil
	}
	if strings.Contains(log, "timeout.network_partition_timeout is now") {
		return true, "", nil
	}
	return false, container + ": network_partition_timeout written to pg_autoctl.cfg, but its keeper has not reloaded it", nil
}

func keeperPartitionCheck(ctx context.Context, container string, since time.Time) (first time.Time, standby bool) {
	out, err := exec.CommandContext(ctx, "docker", "logs", "--timestamps", "--since", since.Format(time.RFC3339Nano), container).CombinedOutput()
	if err != nil {
		return first, false
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		ts, rest, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		switch {
		case first.IsZero() && strings.Contains(rest, "Checking for network partitions"):
			first = at
		case !first.IsZero() && strings.Contains(rest, "still have a standby"):
			return first, true
		case !first.IsZero() && (strings.Contains(rest, "Network is healthy") || strings.Contains(rest, "Network in not healthy")):
			return first, false
		}
	}
	return first, false
}

// everyAckEverywhere polls each node until it holds every acknowledged row.
func everyAckEverywhere(t *testing.T, ctx context.Context, l *Lab, acks []Ack) {
	t.Helper()
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

// durations prints a list of durations with its median and extremes.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	sorted := slices.Sorted(slices.Values(ds))
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("min %s, median %s, max %s (%s)", sorted[0].Round(100*time.Millisecond), sorted[len(sorted)/2].Round(100*time.Millisecond),
		sorted[len(sorted)-1].Round(100*time.Millisecond), strings.Join(parts, ", "))
}
