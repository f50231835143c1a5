//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reconciler against the lab: one cluster ("main", the reference
// layout of .lab/desired.yaml) is brought up once and shared by the
// subtests, which run in order and each leave it converged.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// reconcilerBinary builds cmd/reconciler once per test binary.
func reconcilerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgaf-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "reconciler")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/reconciler").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// rec runs the reconciler binary with a configuration for the lab.
type rec struct {
	bin, config, desired string
	lab                  *Lab
}

func newRec(t testing.TB, l *Lab) *rec {
	t.Helper()
	dir := t.TempDir()
	desired := filepath.Join(dir, "desired.yaml")
	b, err := os.ReadFile(l.Desired)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(desired, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf("desired: %s\nssh:\n  private_keys: [%s]\n  known_hosts: [%s]\n  connect_timeout: 5s\nobserve_timeout: 5s\nlog: {format: json, level: info}\n",
		desired, l.SSHKey, l.KnownHosts)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return &rec{bin: reconcilerBinary(t), config: cfg, desired: desired, lab: l}
}

// edit rewrites the desired state: a commit, in the lab.
func (r *rec) edit(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(r.desired)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("desired state has no %q", from)
	}
	if err := os.WriteFile(r.desired, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *rec) cmd(ctx context.Context, verb string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.bin, append([]string{verb, "--config", r.config}, args...)...)
}

// run runs a verb and returns stdout, stderr and the exit code.
func (r *rec) run(t testing.TB, ctx context.Context, verb string, args ...string) (string, string, int) {
	t.Helper()
	cmd := r.cmd(ctx, verb, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", verb, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// apply runs `reconciler apply` and fails the test unless it converged.
func (r *rec) apply(t testing.TB, ctx context.Context) string {
	t.Helper()
	start := time.Now()
	out, errOut, code := r.run(t, ctx, "apply")
	if code != 0 {
		t.Fatalf("apply exited %d after %s\nstdout:\n%s\nstderr:\n%s", code, time.Since(start).Round(time.Second), out, tail(errOut, 40))
	}
	t.Logf("apply took %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func monitorURI(l *Lab) string { return monitorURIOn(l, "vm3") }

// monitorURIOn is monitorURI for a monitor on vmName, port 5432.
func monitorURIOn(l *Lab, vmName string) string {
	vm, _ := l.VM(vmName)
	return fmt.Sprintf("postgres://autoctl_node@%s:5432/pg_auto_failover?sslmode=disable&connect_timeout=3", vm.Address)
}

// nodeIDs maps node names to their ids on the monitor.
func nodeIDs(t *testing.T, ctx context.Context, l *Lab) map[string]int64 {
	t.Helper()
	return nodeIDsOn(t, ctx, l, "vm3")
}

// nodeIDsOn is nodeIDs of the monitor on vmName.
func nodeIDsOn(t *testing.T, ctx context.Context, l *Lab, vmName string) map[string]int64 {
	t.Helper()
	conn, err := pgx.Connect(ctx, monitorURIOn(l, vmName))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT nodename, nodeid FROM pgautofailover.node`)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			t.Fatal(err)
		}
		ids[n] = id
	}
	return ids
}

// waitStable polls the monitor until one primary and want-1 secondaries.
func waitStable(t *testing.T, ctx context.Context, l *Lab, want int, timeout time.Duration) pgafNode {
	t.Helper()
	return waitStableOn(t, ctx, l, "vm3", want, timeout)
}

// waitStableOn is waitStable on the monitor on vmName.
func waitStableOn(t *testing.T, ctx context.Context, l *Lab, vmName string, want int, timeout time.Duration) pgafNode {
	t.Helper()
	var primary pgafNode
	err := poll(ctx, timeout, "cluster stable", func(ctx context.Context) (bool, string, error) {
		nodes, err := monitorNodes(ctx, monitorURIOn(l, vmName))
		if err != nil {
			return false, err.Error(), nil
		}
		p, ok := stable(nodes, want)
		primary = p
		return ok, summary(nodes), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return primary
}

// dockerMutations lists the container and volume events of cluster
// between since and until: every one changes something, or (exec) may
// have. The observer causes none: it reads the engine's API and the
// servers without docker exec.
func dockerMutations(t *testing.T, ctx context.Context, cluster string, since, until time.Time) []string {
	t.Helper()
	out, err := docker(ctx, "events", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano),
		"--filter", "label=pgaf.cluster="+cluster, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if err != nil {
		t.Fatal(err)
	}
	var muts []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" {
			muts = append(muts, line)
		}
	}
	return muts
}

// writeRow inserts one row through the application's connection string.
func writeRow(ctx context.Context, dsn, note string) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(cctx, `CREATE TABLE IF NOT EXISTS e2e_rows (id bigserial PRIMARY KEY, note text NOT NULL)`); err != nil {
		return err
	}
	_, err = conn.Exec(cctx, `INSERT INTO e2e_rows (note) VALUES ($1)`, note)
	return err
}

// freshCluster removes every container and volume of cluster from the
// lab, and again when the test ends (unless E2E_KEEP is set), after
// undoing every fault (each VM connected and powered on). Cleanups the
// test registers later run first.
func freshCluster(t testing.TB, ctx context.Context, l *Lab, cluster string) {
	t.Helper()
	if err := l.Clean(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx := cleanupCtx(t)
		if t.Failed() {
			logTails(t, cctx, cluster)
		}
		if err := l.Restore(cctx); err != nil {
			t.Errorf("restore: %v", err)
		}
		if os.Getenv("E2E_KEEP") == "" {
			if err := l.Clean(cctx, cluster); err != nil {
				t.Errorf("clean: %v", err)
			}
		}
	})
}

// logTails logs the last lines of every container of cluster, with
// timestamps: what a failed test leaves to diagnose it (the containers
// are removed after). Seen needed: an old primary that stayed demoted,
// assigned catchingup, after a power cycle in CI, with nothing to read.
func logTails(t testing.TB, ctx context.Context, cluster string) {
	t.Helper()
	names, err := docker(ctx, "ps", "-a", "--filter", "label=pgaf.cluster="+cluster, "--format", "{{.Names}}")
	if err != nil {
		t.Logf("list %s's containers: %v", cluster, err)
		return
	}
	for _, name := range strings.Fields(names) {
		out, err := exec.CommandContext(ctx, "docker", "logs", "--timestamps", "--tail", "150", name).CombinedOutput()
		if err != nil {
			t.Logf("docker logs %s: %v", name, err)
		}
		t.Logf("last lines of %s:\n%s", name, out)
	}
}

func TestReconcilerOnLab(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	freshCluster(t, ctx, l, "main")
	t.Cleanup(func() {
		if err := l.Trust(cleanupCtx(t), "vm2"); err != nil {
			t.Errorf("trust vm2: %v", err)
		}
	})
	r := newRec(t, l)

	ok := t.Run("kill_9_during_bring_up_then_apply_converges", func(t *testing.T) {
		cmd := r.cmd(ctx, "apply")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once node1's container exists: in the middle of bring-up.
		err := poll(ctx, 3*time.Minute, "main-node1 created", func(ctx context.Context) (bool, string, error) {
			s, _ := containerState(ctx, "main-node1")
			return s != "", s, nil
		})
		if kerr := cmd.Process.Signal(syscall.SIGKILL); kerr != nil {
			t.Fatal(kerr)
		}
		_ = cmd.Wait()
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		t.Logf("killed apply after:\n%s", out.String())
		r.apply(t, ctx)
		waitStable(t, ctx, l, 3, time.Minute)
	})
	if !ok {
		t.FailNow()
	}

	t.Run("second_apply_changes_nothing", func(t *testing.T) {
		since := time.Now()
		out := r.apply(t, ctx)
		until := time.Now()
		if !strings.Contains(out, "No changes") {
			t.Errorf("second apply did something:\n%s", out)
		}
		if muts := dockerMutations(t, ctx, "main", since, until.Add(time.Second)); len(muts) != 0 {
			t.Errorf("second apply made %d docker mutations: %v", len(muts), muts)
		}
	})

	t.Run("status_and_dsn", func(t *testing.T) {
		out, errOut, code := r.run(t, ctx, "status")
		if code != 0 {
			t.Fatalf("status exited %d: %s", code, errOut)
		}
		for _, want := range []string{"node1", "node2", "node3", "primary", "secondary", "answering"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		dsn := dsnOf(t, ctx, r)
		if !strings.Contains(dsn, ":5433") || !strings.Contains(dsn, "target_session_attrs=read-write") {
			t.Errorf("dsn %q lacks vm3's node on 5433 or read-write", dsn)
		}
		if err := writeRow(ctx, dsn, "status"); err != nil {
			t.Fatalf("write through dsn: %v", err)
		}
	})

	t.Run("dsn_follows_failover_to_node3_on_5433", func(t *testing.T) {
		// node2 may not be promoted, so pg_auto_failover must pick node3,
		// the node that shares vm3 with the monitor on another port.
		r.edit(t, "{name: node2, vm: vm2, port: 5432}", "{name: node2, vm: vm2, port: 5432, candidate_priority: 0}")
		r.apply(t, ctx)
		// node1 must be the primary, so that losing vm1 leaves node3 as
		// the only candidate: arrange it rather than skip.
		promote(t, ctx, l, "node1")
		ids := nodeIDs(t, ctx, l)
		dsn := dsnOf(t, ctx, r)
		if err := writeRow(ctx, dsn, "before-failover"); err != nil {
			t.Fatal(err)
		}
		if err := l.PowerOff(ctx, "vm1"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := poll(ctx, 2*time.Minute, "write through dsn after failover", func(ctx context.Context) (bool, string, error) {
			if err := writeRow(ctx, dsn, "after-failover"); err != nil {
				return false, err.Error(), nil
			}
			return true, "", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("writes through dsn resumed %s after vm1 lost power", time.Since(start).Round(100*time.Millisecond))
		nodes, err := monitorNodes(ctx, monitorURI(l))
		if err != nil {
			t.Fatal(err)
		}
		promoted := 0
		for _, n := range nodes {
			// node1 is unreachable: the monitor keeps its last report
			// (primary) and assigns it demoted.
			if n.Assigned == "primary" || n.Assigned == "wait_primary" {
				promoted++
				if n.Name != "node3" || n.Port != 5433 {
					t.Errorf("new primary is %s, want node3 on 5433", n)
				}
			}
		}
		if promoted != 1 {
			t.Errorf("%d nodes assigned primary after the failover: %s", promoted, summary(nodes))
		}
		if err := l.PowerOn(ctx, "vm1"); err != nil {
			t.Fatal(err)
		}
		r.edit(t, "{name: node2, vm: vm2, port: 5432, candidate_priority: 0}", "{name: node2, vm: vm2, port: 5432}")
		r.apply(t, ctx)
		waitStable(t, ctx, l, 3, 3*time.Minute)
		if got := nodeIDs(t, ctx, l); fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("node ids changed: %v -> %v", ids, got)
		}
	})

	t.Run("restart_power_cycle_and_replace_keep_the_node", func(t *testing.T) {
		ids := nodeIDs(t, ctx, l)
		check := func(what string) {
			t.Helper()
			r.apply(t, ctx)
			waitStable(t, ctx, l, 3, 3*time.Minute)
			if got := nodeIDs(t, ctx, l); fmt.Sprint(got) != fmt.Sprint(ids) {
				t.Errorf("%s: node ids changed: %v -> %v", what, ids, got)
			}
		}
		// A node created before the keepers' monitor URI carried its TCP
		// settings: a restart gives it the command's URI (the entrypoint).
		want, err := l.SSH(ctx, "vm2", `docker exec main-node2 pg_autoctl config get pg_autoctl.monitor`)
		if err != nil {
			t.Fatal(err)
		}
		want = strings.TrimSpace(want)
		if !strings.Contains(want, "tcp_user_timeout=") {
			t.Fatalf("node2's monitor URI %q has no tcp_user_timeout", want)
		}
		older := want[:strings.Index(want, "?")] + "?sslmode=prefer"
		if _, err := l.SSH(ctx, "vm2", "docker exec main-node2 pg_autoctl config set pg_autoctl.monitor '"+older+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.SSH(ctx, "vm2", "docker restart main-node2"); err != nil {
			t.Fatal(err)
		}
		check("docker restart")
		if got, err := l.SSH(ctx, "vm2", `docker exec main-node2 pg_autoctl config get pg_autoctl.monitor`); err != nil {
			t.Error(err)
		} else if strings.TrimSpace(got) != want {
			t.Errorf("after a restart node2's monitor URI is %q, want the command's %q", strings.TrimSpace(got), want)
		}
		if err := l.PowerOff(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		if err := l.PowerOn(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		check("power cycle")
		before, _ := docker(ctx, "inspect", "-f", "{{.Id}}", "main-node2")
		if _, err := l.SSH(ctx, "vm2", "docker rm -f main-node2"); err != nil {
			t.Fatal(err)
		}
		check("container removed by hand")
		// A changed spec (one more client network) replaces every node's
		// container on its volume, the primary last after a switchover.
		r.edit(t, `client_networks: ["172.30.77.0/24"]`, `client_networks: ["172.30.77.0/24", "10.99.0.0/16"]`)
		out := r.apply(t, ctx)
		if n := strings.Count(out, "replace_container"); n != 3 {
			t.Errorf("%d replace_container steps, want 3:\n%s", n, out)
		}
		check("spec changed")
		after, _ := docker(ctx, "inspect", "-f", "{{.Id}}", "main-node2")
		if before == after {
			t.Error("main-node2 was not replaced")
		}
	})

	t.Run("changed_host_key_is_refused", func(t *testing.T) {
		if err := l.Rekey(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		out, errOut, _ := r.run(t, ctx, "apply")
		if !regexp.MustCompile(`vm2.*SHA256:`).MatchString(out + errOut) {
			t.Errorf("apply does not name vm2 and the fingerprint it saw:\n%s\n%s", out, tail(errOut, 20))
		}
		for _, m := range dockerMutations(t, ctx, "main", since, time.Now().Add(time.Second)) {
			if strings.Contains(m, "node2") {
				t.Errorf("something was done on vm2: %s", m)
			}
		}
		if err := l.Trust(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		r.apply(t, ctx)
	})
}

func dsnOf(t *testing.T, ctx context.Context, r *rec) string {
	t.Helper()
	out, errOut, code := r.run(t, ctx, "dsn")
	if code != 0 {
		t.Fatalf("dsn exited %d: %s", code, errOut)
	}
	return strings.TrimSpace(out)
}

// startAppWriter starts the test's application: a writer through the
// string `reconciler dsn` prints, exactly as printed, one insert every
// 50 ms, stopped at the end of the test.
func startAppWriter(t *testing.T, ctx context.Context, r *rec) *Writer {
	t.Helper()
	w, err := StartWriter(ctx, dsnOf(t, ctx, r), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}
