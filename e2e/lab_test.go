//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaf-gitops/reconciler/desired"
)

// These tests prove the lab itself, without the reconciler: its VMs are
// reached over SSH with strict host-key checking, its fault switches do what
// they say, and the operators' manual procedure runs real pg_auto_failover
// on it through a failover and back.

const spareVM = "vm4" // the lab's spare VM: fault-switch tests use it

func loadLab(t *testing.T) *Lab {
	t.Helper()
	l, err := LoadLab()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return l
}

// cleanupCtx is a fresh context for t.Cleanup, which runs after the test's
// own context may have expired.
func cleanupCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// poll calls check until it reports done, the timeout passes, or it fails.
// On timeout the error carries the last status check gave.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) (done bool, status string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	status := ""
	for {
		done, s, err := check(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if s != "" {
			status = s
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not reached within %s; last seen: %s", what, timeout, status)
		case <-tick.C:
		}
	}
}

// docker runs the host's docker CLI (the engine every lab VM shares).
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func containerState(ctx context.Context, name string) (string, error) {
	return docker(ctx, "container", "inspect", "-f", "{{.State.Status}}", name)
}

// The reference layout the lab writes must be a valid desired state that
// names the lab's own VMs and addresses.
func TestLabDesiredStateMatchesTopology(t *testing.T) {
	l := loadLab(t)
	st, err := desired.Load(l.Desired)
	if err != nil {
		t.Fatalf("%s: %v", l.Desired, err)
	}
	if len(st.VMs) != 3 {
		t.Fatalf("desired VMs: %d, want 3", len(st.VMs))
	}
	for _, v := range st.VMs {
		vm, err := l.VM(v.Name)
		if err != nil {
			t.Fatal(err)
		}
		if v.Address != vm.Address || v.SSH.User != vm.User || v.SSH.Port != vm.SSHPort ||
			v.DockerNetwork != "container:"+vm.Container {
			t.Errorf("desired %s = %+v, topology %+v", v.Name, v, vm)
		}
	}
	if len(st.Clusters) != 1 {
		t.Fatalf("desired clusters: %d, want 1", len(st.Clusters))
	}
	c := st.Clusters[0]
	if c.Image != l.Image || c.Monitor.VM != "vm3" || c.Monitor.Port != 5432 || len(c.Nodes) != 3 ||
		len(c.ClientNetworks) != 1 || c.ClientNetworks[0] != l.Subnet {
		t.Errorf("desired cluster: %+v", c)
	}
	if got := c.MonitorSettings["node_considered_unhealthy_timeout"]; got != "3000" {
		t.Errorf("monitor_settings node_considered_unhealthy_timeout = %q, want 3000", got)
	}
}

// TestLabImageRunsThePgAutoFailoverValidateWasReadFrom: validate's tables
// and timing rules hold for one pg_auto_failover release; the reference
// image must install that one.
func TestLabImageRunsThePgAutoFailoverValidateWasReadFrom(t *testing.T) {
	l := loadLab(t)
	out, err := docker(t.Context(), "run", "--rm", "--entrypoint", "pg_autoctl", l.Image, "version")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out, "\n")
	if want := "pg_autoctl version " + desired.PgAutoFailoverVersion; strings.TrimSpace(first) != want {
		t.Errorf("%s: %q, want %q (desired.PgAutoFailoverVersion)", l.Image, first, want)
	}
}

func TestLabVMsAnswerOverSSHWithStrictHostKeys(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	keys := map[string]string{}
	kh, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("known_hosts line %q: want host, type, key", line)
		}
		keys[f[0]] = f[2]
	}
	seen := map[string]string{}
	for _, vm := range l.VMs {
		out, err := l.SSH(ctx, vm.Name, "id -un; hostname -I; docker version --format '{{.Server.Version}}'")
		if err != nil {
			t.Fatalf("%v", err)
		}
		f := strings.Fields(out)
		if len(f) < 3 || f[0] != vm.User || f[0] == "root" || f[1] != vm.Address {
			t.Errorf("%s: user, address, docker = %q; want %s, %s, a version", vm.Name, f, vm.User, vm.Address)
		}
		key, ok := keys[vm.Address]
		if !ok {
			t.Errorf("%s: no known_hosts entry for %s", vm.Name, vm.Address)
		}
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s share a host key", vm.Name, other)
		}
		seen[key] = vm.Name
	}

	// A changed host key must be refused; trusting it again restores access.
	t.Cleanup(func() {
		if err := l.Trust(cleanupCtx(t), spareVM); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := l.Rekey(ctx, spareVM); err != nil {
		t.Fatal(err)
	}
	_, err = l.SSH(ctx, spareVM, "true")
	var le *LabError
	if !errors.As(err, &le) || !strings.Contains(le.Output, "Host key verification failed") {
		t.Fatalf("ssh after rekey: got %v, want host key verification failure", err)
	}
	if err := l.Trust(ctx, spareVM); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SSH(ctx, spareVM, "true"); err != nil {
		t.Fatalf("ssh after trust: %v", err)
	}
}

func TestLabPowerCycleFollowsRestartPolicies(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vm, err := l.VM(spareVM)
	if err != nil {
		t.Fatal(err)
	}
	const cluster = "labprobe"
	t.Cleanup(func() {
		ctx := cleanupCtx(t)
		if err := l.Restore(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := l.Clean(ctx, cluster); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := l.Clean(ctx, cluster); err != nil {
		t.Fatal(err)
	}

	// Containers "on" the VM, started over SSH the way the reconciler will.
	probes := []struct {
		name, restart string
		stopByHand    bool
		wantAfter     string
	}{
		{name: "labprobe-unless-stopped", restart: "unless-stopped", wantAfter: "running"},
		{name: "labprobe-always", restart: "always", wantAfter: "running"},
		{name: "labprobe-no", restart: "no", wantAfter: "exited"},
		{name: "labprobe-stopped-by-hand", restart: "unless-stopped", stopByHand: true, wantAfter: "exited"},
	}
	for _, p := range probes {
		run := fmt.Sprintf("docker run -d --name %s --restart %s --network container:%s "+
			"--label pgaf.vm=%s --label pgaf.cluster=%s --entrypoint sleep pgaf/lab-vm infinity",
			p.name, p.restart, vm.Container, vm.Name, cluster)
		if _, err := l.SSH(ctx, vm.Name, run); err != nil {
			t.Fatal(err)
		}
		if p.stopByHand {
			if _, err := l.SSH(ctx, vm.Name, "docker stop -t 1 "+p.name); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := l.PowerOff(ctx, vm.Name); err != nil {
		t.Fatal(err)
	}
	// Nothing may come back by itself while the power is off: watch for a
	// while (dockerd would restart a crashed unless-stopped container within
	// a second or so).
	names := []string{vm.Container}
	for _, p := range probes {
		names = append(names, p.name)
	}
	watch := time.Now().Add(4 * time.Second)
	for time.Now().Before(watch) {
		for _, n := range names {
			st, err := containerState(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if st != "exited" {
				t.Fatalf("%s is %s while %s is powered off", n, st, vm.Name)
			}
		}
		time.Sleep(200 * time.Millisecond) // observation window, not readiness
	}
	if _, err := l.SSH(ctx, vm.Name, "true"); err == nil {
		t.Fatalf("ssh to a powered-off VM succeeded")
	}

	if err := l.PowerOn(ctx, vm.Name); err != nil {
		t.Fatal(err)
	}
	vmPid, err := docker(ctx, "container", "inspect", "-f", "{{.State.Pid}}", vm.Container)
	if err != nil {
		t.Fatal(err)
	}
	vmNet, err := os.Readlink("/proc/" + vmPid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		st, err := containerState(ctx, p.name)
		if err != nil {
			t.Fatal(err)
		}
		if st != p.wantAfter {
			t.Errorf("%s (restart %s, stopped by hand %v) after power-on: %s, want %s",
				p.name, p.restart, p.stopByHand, st, p.wantAfter)
			continue
		}
		if st != "running" {
			continue
		}
		// It must have joined the VM's new network namespace.
		pid, err := docker(ctx, "container", "inspect", "-f", "{{.State.Pid}}", p.name)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := os.Readlink("/proc/" + pid + "/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		if ns != vmNet {
			t.Errorf("%s is in network namespace %s, the VM in %s", p.name, ns, vmNet)
		}
		addr, err := docker(ctx, "exec", p.name, "hostname", "-I")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(addr) != vm.Address {
			t.Errorf("%s sees address %q, want the VM's %s", p.name, addr, vm.Address)
		}
	}
	if _, err := l.SSH(ctx, vm.Name, "true"); err != nil {
		t.Errorf("ssh after power-on: %v", err)
	}
}

func TestLabDisconnectKeepsTheAddress(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vm, err := l.VM(spareVM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Reconnect(cleanupCtx(t), vm.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := l.Disconnect(ctx, vm.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := l.SSH(ctx, vm.Name, "true"); err == nil {
		t.Fatalf("ssh to a disconnected VM succeeded")
	}
	if err := l.Reconnect(ctx, vm.Name); err != nil {
		t.Fatal(err)
	}
	out, err := l.SSH(ctx, vm.Name, "hostname -I")
	if err != nil {
		t.Fatalf("ssh after reconnect: %v", err)
	}
	if got := strings.TrimSpace(out); got != vm.Address {
		t.Errorf("address after reconnect: %q, want %s", got, vm.Address)
	}
}

// TestLabReset removes the whole lab, so it runs only when asked
// (E2E_LAB_RESET=1, as `make test-e2e` does before the rest of the suite),
// and brings the lab up again at the end.
func TestLabReset(t *testing.T) {
	if os.Getenv("E2E_LAB_RESET") != "1" {
		t.Skip("destroys the lab; set E2E_LAB_RESET=1")
	}
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Bystanders: a container and a volume that are not the lab's.
	bystander := fmt.Sprintf("labreset-bystander-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := cleanupCtx(t)
		if _, err := docker(ctx, "rm", "-f", bystander); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if _, err := docker(ctx, "volume", "rm", bystander); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := docker(ctx, "volume", "create", "--label", "other.label=x", bystander); err != nil {
		t.Fatal(err)
	}
	if _, err := docker(ctx, "create", "--name", bystander, "--label", "other.label=x",
		"-v", bystander+":/data", "debian:bookworm-slim", "true"); err != nil {
		t.Fatal(err)
	}
	// Lab objects on a VM, with labels the reconciler uses.
	if _, err := l.SSH(ctx, spareVM, "docker volume create --label pgaf.managed=true --label pgaf.vm=vm4 labreset-data >/dev/null && "+
		"docker create --name labreset-node --label pgaf.managed=true --label pgaf.vm=vm4 -v labreset-data:/x pgaf/lab-vm true"); err != nil {
		t.Fatal(err)
	}

	if err := l.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	pgaf := regexp.MustCompile(`(^|[ ,])pgaf\.`)
	for _, list := range [][]string{
		{"ps", "-a", "--format", "{{.Names}} {{.Labels}}"},
		{"volume", "ls", "--format", "{{.Name}} {{.Labels}}"},
		{"network", "ls", "--format", "{{.Name}} {{.Labels}}"},
	} {
		out, err := docker(ctx, list...)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if f := strings.SplitN(line, " ", 2); len(f) == 2 && pgaf.MatchString(" "+f[1]) {
				t.Errorf("after reset, %s still has %s", list[0], line)
			}
		}
	}
	if _, err := docker(ctx, "container", "inspect", bystander); err != nil {
		t.Errorf("reset removed a container that is not the lab's: %v", err)
	}
	if _, err := docker(ctx, "volume", "inspect", bystander); err != nil {
		t.Errorf("reset removed a volume that is not the lab's: %v", err)
	}
	if _, err := LoadLab(); !errors.Is(err, ErrNoLab) {
		t.Errorf("LoadLab after reset: %v, want ErrNoLab", err)
	}

	start := time.Now()
	if err := l.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab up again in %s (images cached)", time.Since(start).Round(100*time.Millisecond))
	l2 := loadLab(t)
	for _, vm := range l2.VMs {
		if _, err := l2.SSH(ctx, vm.Name, "docker ps -q"); err != nil {
			t.Errorf("after up: %v", err)
		}
	}
}

// pgafNode is one row of pgautofailover.node as the test needs it.
type pgafNode struct {
	Name, Host         string
	Port               int
	Reported, Assigned string
}

func (n pgafNode) String() string {
	return fmt.Sprintf("%s(%s:%d) %s/%s", n.Name, n.Host, n.Port, n.Reported, n.Assigned)
}

func monitorNodes(ctx context.Context, uri string) ([]pgafNode, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(cctx, `SELECT nodename, nodehost, nodeport, reportedstate::text, goalstate::text
		FROM pgautofailover.node ORDER BY nodeid`)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	var nodes []pgafNode
	for rows.Next() {
		var n pgafNode
		if err := rows.Scan(&n.Name, &n.Host, &n.Port, &n.Reported, &n.Assigned); err != nil {
			return nil, fmt.Errorf("monitor: %w", err)
		}
		nodes = append(nodes, n)
	}
	return nodes, rows.Err()
}

func summary(nodes []pgafNode) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.String()
	}
	return strings.Join(s, ", ")
}

// stable reports whether exactly one node is primary and the others
// secondaries, every one settled (reported == assigned).
func stable(nodes []pgafNode, want int) (primary pgafNode, ok bool) {
	p, s := 0, 0
	for _, n := range nodes {
		switch {
		case n.Reported == "primary" && n.Assigned == "primary":
			p++
			primary = n
		case n.Reported == "secondary" && n.Assigned == "secondary":
			s++
		}
	}
	return primary, len(nodes) == want && p == 1 && s == want-1
}

// The operators' manual procedure on the lab, then a power cut of the
// primary's VM: pg_auto_failover must promote another node, take the old
// primary back as a secondary when the power returns, and keep every row.
func TestLabManualProcedureSurvivesPrimaryPowerCut(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const cluster = "baseline"
	root := filepath.Dir(filepath.Dir(l.Script))
	t.Cleanup(func() {
		ctx := cleanupCtx(t)
		if err := l.Restore(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := l.Clean(ctx, cluster); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// Bring-up from empty VMs, over SSH, with pg_autoctl (e2e/baseline.sh).
	cmd := exec.CommandContext(ctx, filepath.Join(root, "e2e", "baseline.sh"))
	cmd.Env = append(os.Environ(), "LAB_DIR="+l.Dir, "CLUSTER="+cluster)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("baseline.sh: %v\n%s%s", err, out, stderr.String())
	}
	t.Logf("%s", strings.TrimSpace(string(out)))

	mon, err := l.VM("vm3")
	if err != nil {
		t.Fatal(err)
	}
	monitorURI := fmt.Sprintf("postgres://autoctl_node@%s:5432/pg_auto_failover?sslmode=prefer", mon.Address)
	nodes, err := monitorNodes(ctx, monitorURI)
	if err != nil {
		t.Fatal(err)
	}
	oldPrimary, ok := stable(nodes, 3)
	if !ok {
		t.Fatalf("after bring-up: %s; want 1 primary + 2 secondaries", summary(nodes))
	}
	wantHosts := map[string]string{"node1": "vm1:5432", "node2": "vm2:5432", "node3": "vm3:5433"}
	var hosts []string
	for _, n := range nodes {
		vm, err := l.VMByAddress(n.Host)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s:%d", vm.Name, n.Port); got != wantHosts[n.Name] {
			t.Errorf("%s runs on %s, want %s", n.Name, got, wantHosts[n.Name])
		}
		hosts = append(hosts, fmt.Sprintf("%s:%d", n.Host, n.Port))
	}
	victim, err := l.VMByAddress(oldPrimary.Host)
	if err != nil {
		t.Fatal(err)
	}
	if victim.Name == mon.Name {
		t.Fatalf("the primary %s shares %s with the monitor: a power cut would take both", oldPrimary.Name, mon.Name)
	}

	// Rows written through the applications' multi-host connection string.
	appURI := "postgres://postgres@" + strings.Join(hosts, ",") +
		"/postgres?target_session_attrs=read-write&connect_timeout=3"
	const before = 500
	if err := execSQL(ctx, appURI,
		`CREATE TABLE lab_rows (id int PRIMARY KEY, note text NOT NULL)`,
		fmt.Sprintf(`INSERT INTO lab_rows SELECT g, 'before' FROM generate_series(1, %d) g`, before-10),
	); err != nil {
		t.Fatal(err)
	}
	for i := before - 9; i <= before; i++ { // and a few single commits
		if err := execSQL(ctx, appURI, fmt.Sprintf(`INSERT INTO lab_rows VALUES (%d, 'before')`, i)); err != nil {
			t.Fatal(err)
		}
	}

	// Power cut on the primary's VM.
	cut := time.Now()
	if err := l.PowerOff(ctx, victim.Name); err != nil {
		t.Fatal(err)
	}
	var newPrimary pgafNode
	err = poll(ctx, 3*time.Minute, "a new primary", func(ctx context.Context) (bool, string, error) {
		nodes, err := monitorNodes(ctx, monitorURI)
		if err != nil {
			return false, err.Error(), nil // the monitor may be busy; keep polling
		}
		for _, n := range nodes {
			if n.Name != oldPrimary.Name && n.Reported == n.Assigned &&
				(n.Reported == "primary" || n.Reported == "wait_primary") {
				newPrimary = n
				return true, summary(nodes), nil
			}
		}
		return false, summary(nodes), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover: %s became %s %s after the power cut of %s", newPrimary.Name,
		newPrimary.Reported, time.Since(cut).Round(100*time.Millisecond), victim.Name)

	const after = 20
	if err := execSQL(ctx, appURI, fmt.Sprintf(
		`INSERT INTO lab_rows SELECT g, 'after' FROM generate_series(%d, %d) g`, before+1, before+after)); err != nil {
		t.Fatalf("write on the new primary: %v", err)
	}

	// Power back: the old primary must rejoin as a secondary.
	back := time.Now()
	if err := l.PowerOn(ctx, victim.Name); err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, 5*time.Minute, "old primary back as secondary", func(ctx context.Context) (bool, string, error) {
		nodes, err := monitorNodes(ctx, monitorURI)
		if err != nil {
			return false, err.Error(), nil
		}
		p, ok := stable(nodes, 3)
		return ok && p.Name == newPrimary.Name, summary(nodes), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s rejoined as secondary %s after power-on", oldPrimary.Name, time.Since(back).Round(100*time.Millisecond))

	// Every row is on the primary, and the rejoined node catches up to it.
	oldURI := fmt.Sprintf("postgres://postgres@%s:%d/postgres?connect_timeout=3", oldPrimary.Host, oldPrimary.Port)
	for _, target := range []struct{ what, uri string }{{"primary", appURI}, {"rejoined " + oldPrimary.Name, oldURI}} {
		err := poll(ctx, 2*time.Minute, "rows on "+target.what, func(ctx context.Context) (bool, string, error) {
			nb, na, err := countRows(ctx, target.uri)
			if err != nil {
				return false, err.Error(), nil
			}
			return nb == before && na == after, fmt.Sprintf("%d rows before, %d after", nb, na), nil
		})
		if err != nil {
			t.Error(err)
		}
	}
}

func execSQL(ctx context.Context, uri string, stmts ...string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(cctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// countRows counts lab_rows written before and after the failover.
// Rows "before" must be exactly ids 1..n: a count of distinct ids in range.
func countRows(ctx context.Context, uri string) (before, after int, err error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, uri)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(cctx, `SELECT count(*) FILTER (WHERE note = 'before'),
		count(*) FILTER (WHERE note = 'after') FROM lab_rows`).Scan(&before, &after)
	return before, after, err
}
