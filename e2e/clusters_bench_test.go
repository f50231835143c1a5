//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// BenchmarkClusters grows one desired state to 1, 2, 4 and 8 clusters of
// three nodes on the lab's four VMs (each cluster's monitor on vm4, its
// nodes on vm1-vm3, on ports of its own), brought up by `apply`. At each
// size it times a warm observation of everything (ns/op) and the CPU this
// process spends on one (cpu-ms/op), and reports the
// peak RSS of `run --dry-run` over those clusters (rss-MB: the service
// observing and planning every 2 s for 20 s). The clusters are removed at
// the end unless E2E_KEEP is set. E2E_BENCH_CLUSTERS="1,2,4" picks the
// sizes: on this 2-core machine 8 clusters of three nodes overload the
// lab itself (load average over 100, health checks failing, failovers).
//
//	go test -tags e2e -run XXX -bench Clusters -benchtime 20x -timeout 60m ./e2e/
func BenchmarkClusters(b *testing.B) {
	l, err := LoadLab()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	r := newRec(b, l)
	for i := 1; i <= 8; i++ {
		freshCluster(b, ctx, l, fmt.Sprintf("scale%d", i))
	}
	sizes := []int{1, 2, 4, 8}
	if v := os.Getenv("E2E_BENCH_CLUSTERS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 8 {
				b.Fatalf("E2E_BENCH_CLUSTERS=%q: want cluster counts from 1 to 8, comma-separated", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("clusters=%d", n), func(b *testing.B) {
			if err := os.WriteFile(r.desired, []byte(scaleYAML(b, l, n)), 0o644); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			r.apply(b, ctx)
			b.Logf("%d clusters converged (the new ones brought up) in %s", n, time.Since(start).Round(100*time.Millisecond))
			st, err := desired.Load(r.desired)
			if err != nil {
				b.Fatal(err)
			}
			rss := serviceRSS(b, ctx, r, 20*time.Second)
			ex, err := actuators.NewSSHExecutor(actuators.SSHConfig{KeyFiles: []string{l.SSHKey}, KnownHostsFiles: []string{l.KnownHosts}}, actuators.HostsFromDesired(st))
			if err != nil {
				b.Fatal(err)
			}
			defer ex.Close()
			opts := observe.Options{Timeout: 10 * time.Second}
			check := func(obs *observe.Observation) {
				for _, vm := range obs.VMs {
					if !vm.Reached {
						b.Fatalf("%s not reached: %s", vm.Name, vm.Error)
					}
				}
				if len(obs.Clusters) != n {
					b.Fatalf("%d clusters observed, want %d", len(obs.Clusters), n)
				}
				for _, c := range obs.Clusters {
					if !c.Monitor.Reached || len(c.Monitor.Nodes) != 3 {
						b.Fatalf("%s: monitor reached %v, %d nodes: %s", c.Name, c.Monitor.Reached, len(c.Monitor.Nodes), c.Monitor.Error)
					}
				}
			}
			check(observe.Observe(ctx, st, ex, opts)) // dial every VM once
			cpu0 := cpuTime(b)
			ops := 0
			for b.Loop() {
				check(observe.Observe(ctx, st, ex, opts))
				ops++
			}
			b.StopTimer()
			// The wall time above is mostly the lab's own load (every
			// cluster's keepers and monitor on two cores); the CPU this
			// process spent is the observer's own cost.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(ops), "cpu-ms/op")
			if d := ex.Dials(); d != int64(len(st.VMs)) {
				b.Errorf("%d SSH dials for %d VMs: one connection per VM was not shared by the clusters", d, len(st.VMs))
			}
			b.ReportMetric(rss, "rss-MB")
		})
	}
}

// scaleYAML is the lab's four VMs and clusters scale1..scaleN.
func scaleYAML(t testing.TB, l *Lab, n int) string {
	t.Helper()
	var y strings.Builder
	y.WriteString("vms:\n")
	for i := 1; i <= 4; i++ {
		vm, err := l.VM(fmt.Sprintf("vm%d", i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&y, "  - {name: vm%d, address: %s, ssh: {user: ops, port: 22}, docker_network: \"container:%s\"}\n", i, vm.Address, vm.Container)
	}
	y.WriteString("clusters:\n")
	for c := 1; c <= n; c++ {
		port := 9000 + 10*c
		fmt.Fprintf(&y, `  - name: scale%d
    image: %s
    monitor: {vm: vm4, port: %d}
    nodes:
      - {name: node1, vm: vm1, port: %[3]d}
      - {name: node2, vm: vm2, port: %[3]d}
      - {name: node3, vm: vm3, port: %[3]d}
    auth: trust
    ssl: "off"
    client_networks: ["172.30.77.0/24"]
`, c, l.Image, port)
	}
	return y.String()
}

// serviceRSS runs `run --dry-run` over r's desired state for d, a run
// every 2 s, and returns its peak RSS (VmHWM) in MB.
func serviceRSS(t testing.TB, ctx context.Context, r *rec, d time.Duration) float64 {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	text := string(b) + "run: {interval: 2s, jitter: 0.1, instance: scale-bench}\nhttp: {listen: \"127.0.0.1:0\"}\nlock: {kind: none}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, r.bin, "run", "--config", cfg, "--dry-run")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil {
		t.Fatalf("run --dry-run: %v\n%s", err, tail(errb.String(), 20))
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(errb.String(), "scale") {
				t.Fatalf("run --dry-run logged nothing about the clusters:\n%s", tail(errb.String(), 20))
			}
			return float64(kb) / 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", cmd.Process.Pid)
	return 0
}

// cpuTime is the user and system CPU this process has used.
func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
