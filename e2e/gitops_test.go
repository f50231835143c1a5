//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/pgaf-gitops/reconciler/internal/testenv"
	"github.com/pgaf-gitops/reconciler/service"
)

// `reconciler run` against the lab, with its own cluster "gitops" (monitor
// on vm3:6432, nodes on vm1:6432, vm2:6432 and vm3:6433) so that it
// coexists with the tests of cluster "main", and a real git repository on
// this machine served over file://. The subtests run in order on one
// cluster; the cluster is removed at the end (E2E_KEEP=1 keeps it).

const gitopsCluster = "gitops"

// gitopsRig is the repository, the binary and the files of the test.
type gitopsRig struct {
	t       *testing.T
	lab     *Lab
	bin     string
	dir     string
	repo    *testenv.Repo
	vms     string // the vms: part of the lab's desired state
	secret  []byte
	keyring string
	key     *openpgp.Entity
	// peakRSS is the largest VmHWM (kB) of the instances stopped so far.
	peakRSS int
}

// gitopsDesired is the cluster's desired state: node2's candidate priority
// and the client networks are what commits change.
type gitopsDesired struct {
	priority int
	networks []string
	broken   bool // append a key the schema refuses
}

func (r *gitopsRig) render(d gitopsDesired) string {
	nets := make([]string, len(d.networks))
	for i, n := range d.networks {
		nets[i] = strconv.Quote(n)
	}
	s := r.vms + fmt.Sprintf(`clusters:
  - name: %s
    formation: default
    image: %s
    monitor: {vm: vm3, port: 6432}
    nodes:
      - {name: node1, vm: vm1, port: 6432}
      - {name: node2, vm: vm2, port: 6432, candidate_priority: %d}
      - {name: node3, vm: vm3, port: 6433}
    auth: trust
    ssl: "off"
    client_networks: [%s]
`, gitopsCluster, r.lab.Image, d.priority, strings.Join(nets, ", "))
	if d.broken {
		s += "    replicas: 3\n"
	}
	return s
}

func newGitopsRig(t *testing.T, l *Lab) *gitopsRig {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(l.Desired)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\nclusters:")
	if i < 0 {
		t.Fatalf("%s has no clusters: section", l.Desired)
	}
	r := &gitopsRig{t: t, lab: l, dir: dir, vms: text[:i+1], secret: []byte("e2e-webhook-secret")}
	if err := os.WriteFile(filepath.Join(dir, "secret"), append(r.secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	r.repo = testenv.NewRepo(t)
	r.key, r.keyring = testenv.NewKey(t, "gitops-e2e")
	out := filepath.Join(dir, "reconciler")
	if b, err := exec.Command("go", "build", "-o", out, "../cmd/reconciler").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	r.bin = out
	return r
}

// commit writes desired.yaml and commits it, signed when signed is true.
func (r *gitopsRig) commit(d gitopsDesired, signed bool, msg string) string {
	r.t.Helper()
	var key *openpgp.Entity
	if signed {
		key = r.key
	}
	return r.repo.Commit(msg, key, map[string]string{"desired.yaml": r.render(d)})
}

// instanceOpts vary the configuration of one service instance.
type instanceOpts struct {
	name     string
	interval time.Duration
	verify   bool
	dryRun   bool
}

// instance is one running `reconciler run`.
type instance struct {
	rig     *gitopsRig
	name    string
	cmd     *exec.Cmd
	url     string
	logPath string
	done    chan error
	stopped bool
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start writes a configuration and starts an instance, waiting for /healthz.
func (r *gitopsRig) start(t *testing.T, ctx context.Context, o instanceOpts) *instance {
	t.Helper()
	if o.interval == 0 {
		o.interval = 10 * time.Second
	}
	port := freePort(t)
	verify := ""
	if o.verify {
		verify = "verify_keyring: " + r.keyring
	}
	cfg := fmt.Sprintf(`ssh:
  private_keys: [%s]
  known_hosts: [%s]
  connect_timeout: 5s
observe_timeout: 5s
log: {format: json, level: info}
source:
  git:
    url: file://%s
    branch: main
    path: desired.yaml
    cache_dir: %s
    fetch_timeout: 10s
    %s
run: {interval: %s, jitter: 0.1, backoff_min: 1s, backoff_max: 10s, wait_retry: 2s, instance: %s}
http: {listen: "127.0.0.1:%d"}
webhook: {path: /webhook, secret_file: %s}
lock: {kind: monitor}
`, r.lab.SSHKey, r.lab.KnownHosts, r.repo.Dir, filepath.Join(r.dir, "cache-"+o.name), verify,
		o.interval, o.name, port, filepath.Join(r.dir, "secret"))
	cfgPath := filepath.Join(r.dir, o.name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--config", cfgPath}
	if o.dryRun {
		args = append(args, "--dry-run")
	}
	in := &instance{rig: r, name: o.name, url: fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(r.dir, fmt.Sprintf("%s-%d.log", o.name, time.Now().UnixNano())), done: make(chan error, 1)}
	logf, err := os.Create(in.logPath)
	if err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command(r.bin, args...)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := in.cmd.Wait()
		logf.Close()
		in.done <- err
	}()
	// Stopped at the end of the whole test (or before, by the subtest that
	// replaces it), not of the subtest that started it.
	r.t.Cleanup(func() { in.stop(r.t) })
	err = poll(ctx, 15*time.Second, o.name+" /healthz", func(ctx context.Context) (bool, string, error) {
		select {
		case err := <-in.done:
			in.done <- err
			return false, "", fmt.Errorf("exited: %v\n%s", err, in.logTail(20))
		default:
		}
		code, body, err := in.get(ctx, "/healthz")
		if err != nil {
			return false, err.Error(), nil
		}
		return code == http.StatusOK, body, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (in *instance) get(ctx context.Context, path string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (in *instance) status(t *testing.T, ctx context.Context) service.Status {
	t.Helper()
	_, body, err := in.get(ctx, "/status")
	if err != nil {
		t.Fatalf("%s /status: %v", in.name, err)
	}
	var st service.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%s /status: %v\n%s", in.name, err, body)
	}
	return st
}

// waitStatus polls /status until cond holds.
func (in *instance) waitStatus(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func(service.Status) bool) service.Status {
	t.Helper()
	var st service.Status
	err := poll(ctx, timeout, in.name+": "+what, func(ctx context.Context) (bool, string, error) {
		st = in.status(t, ctx)
		return cond(st), fmt.Sprintf("%s %s: %s", st.Condition, st.Reason, firstLine(st.Message)), nil
	})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, in.logTail(30))
	}
	return st
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// webhook posts a push event signed with secret ("" for no signature).
func (in *instance) webhook(t *testing.T, secret []byte) int {
	t.Helper()
	body := []byte(`{"ref":"refs/heads/main"}`)
	req, _ := http.NewRequest(http.MethodPost, in.url+"/webhook", bytes.NewReader(body))
	if secret != nil {
		req.Header.Set(service.SignatureHeader, service.Sign(secret, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric sums the samples of a metric family in /metrics, or of one
// series when name carries its labels (sorted, as the exposition writes
// them).
func (in *instance) metric(t *testing.T, ctx context.Context, name string) float64 {
	sum, _ := in.samples(t, ctx, name)
	return sum
}

// samples is metric's sum and whether any sample was there.
func (in *instance) samples(t *testing.T, ctx context.Context, name string) (sum float64, found bool) {
	t.Helper()
	_, body, err := in.get(ctx, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
			found = true
		}
	}
	return sum, found
}

// rss is the instance's peak resident set (VmHWM, kB).
func (in *instance) rss() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// stop sends SIGTERM and waits for the instance to finish its step.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.stopped {
		return
	}
	in.stopped = true
	if r := in.rss(); r > in.rig.peakRSS {
		in.rig.peakRSS = r
	}
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("%s: SIGTERM: %v", in.name, err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM\n%s", in.name, err, in.logTail(20))
		}
	case <-time.After(6 * time.Minute):
		_ = in.cmd.Process.Kill()
		t.Errorf("%s did not stop within 6 minutes of SIGTERM", in.name)
	}
}

// kill9 kills the instance at once.
func (in *instance) kill9(t *testing.T) {
	t.Helper()
	in.stopped = true
	if r := in.rss(); r > in.rig.peakRSS {
		in.rig.peakRSS = r
	}
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-in.done
}

func (in *instance) logTail(n int) string {
	b, _ := os.ReadFile(in.logPath)
	return tail(string(b), n)
}

// logLine is the part of a JSON log line the test reads.
type logLine struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Commit  string    `json:"commit"`
	Action  string    `json:"action"`
	Cluster string    `json:"cluster"`
}

// actions lists the "executing" lines of the instance's log.
func (in *instance) actions() []logLine {
	f, err := os.Open(in.logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "executing" {
			out = append(out, l)
		}
	}
	return out
}

// timeline lists the log messages between since and until, with their
// offsets from since: where the time between a commit and its first action
// went.
func (in *instance) timeline(since, until time.Time) string {
	f, err := os.Open(in.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var parts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			logLine
			Reason string `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Time.Before(since) || l.Time.After(until) {
			continue
		}
		what := l.Msg
		if l.Action != "" {
			what += " " + l.Action
		}
		if l.Reason != "" && len(l.Reason) < 60 {
			what += " (" + l.Reason + ")"
		}
		parts = append(parts, fmt.Sprintf("+%s %s", l.Time.Sub(since).Round(time.Millisecond), what))
	}
	return strings.Join(parts, "; ")
}

// firstAction is the time of the first step executed for commit.
func (in *instance) firstAction(commit string) (time.Time, bool) {
	for _, l := range in.actions() {
		if l.Commit == commit {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

func gitopsMonitorURI(l *Lab) string {
	vm, _ := l.VM("vm3")
	return fmt.Sprintf("postgres://autoctl_node@%s:6432/pg_auto_failover?sslmode=disable&connect_timeout=3", vm.Address)
}

func waitGitopsStable(t *testing.T, ctx context.Context, l *Lab, timeout time.Duration) {
	t.Helper()
	err := poll(ctx, timeout, "gitops stable", func(ctx context.Context) (bool, string, error) {
		nodes, err := monitorNodes(ctx, gitopsMonitorURI(l))
		if err != nil {
			return false, err.Error(), nil
		}
		_, ok := stable(nodes, 3)
		return ok, summary(nodes), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// candidatePriority reads node2's candidate priority on the monitor.
func candidatePriority(ctx context.Context, l *Lab, node string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "psql", gitopsMonitorURI(l), "-XAtc",
		fmt.Sprintf("SELECT candidatepriority FROM pgautofailover.node WHERE nodename = '%s'", node)).Output()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// gitopsSecondary names a secondary's container and its VM: removing it
// is drift that needs no failover.
func gitopsSecondary(t *testing.T, ctx context.Context, l *Lab) (container, vm string) {
	t.Helper()
	nodes, err := monitorNodes(ctx, gitopsMonitorURI(l))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		vm := map[string]string{"node1": "vm1", "node2": "vm2", "node3": "vm3"}[n.Name]
		if n.Reported == "secondary" && vm != "" {
			return gitopsCluster + "-" + n.Name, vm
		}
	}
	t.Fatalf("no secondary: %s", summary(nodes))
	return "", ""
}

func applied(commit string) func(service.Status) bool {
	return func(st service.Status) bool {
		return st.LastApplied != nil && st.LastApplied.Commit == commit && st.Condition == service.Ready && st.Current == nil
	}
}

func TestGitOpsRunOnLab(t *testing.T) {
	l := loadLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := l.Clean(ctx, gitopsCluster); err != nil {
		t.Fatal(err)
	}
	r := newGitopsRig(t, l)
	t.Cleanup(func() {
		t.Logf("peak RSS of the service instances: %d kB (%.1f MB)", r.peakRSS, float64(r.peakRSS)/1024)
		if os.Getenv("E2E_KEEP") != "" {
			return
		}
		if err := l.Clean(cleanupCtx(t), gitopsCluster); err != nil {
			t.Errorf("clean: %v", err)
		}
	})
	base := gitopsDesired{priority: 50, networks: []string{l.Subnet}}
	c1 := r.commit(base, true, "bring up the gitops cluster")

	in := r.start(t, ctx, instanceOpts{name: "main"})
	start := time.Now()
	in.waitStatus(t, ctx, 8*time.Minute, "bring-up applied", applied(c1))
	t.Logf("bring-up of cluster gitops converged in %s", time.Since(start).Round(time.Second))
	waitGitopsStable(t, ctx, l, 2*time.Minute)

	ok := t.Run("commit_applied_within_one_interval", func(t *testing.T) {
		d := base
		d.priority = 40
		before := time.Now()
		c := r.commit(d, true, "node2 priority 40")
		st := in.waitStatus(t, ctx, time.Minute, "commit applied", applied(c))
		first, ok := in.firstAction(c)
		if !ok {
			t.Fatalf("no action logged for %s", c)
		}
		if lat := first.Sub(before); lat > 11*time.Second+2*time.Second {
			t.Errorf("first action %s after the commit, want within one interval (10s, jitter 10%%)", lat)
		} else {
			t.Logf("first action %s after the commit (interval 10s, polling); trigger %s", lat.Round(time.Millisecond), st.LastRun.Trigger)
		}
		if p, err := candidatePriority(ctx, l, "node2"); err != nil || p != 40 {
			t.Errorf("node2 candidate priority %d (%v), want 40", p, err)
		}
		if st.LastPlan == nil || st.LastPlan.Commit != c {
			t.Errorf("last plan's commit %+v, want %s", st.LastPlan, c)
		}
		_, metrics, _ := in.get(ctx, "/metrics")
		if !strings.Contains(metrics, `pgaf_desired_revision_info{commit="`+c+`",which="applied"} 1`) {
			t.Errorf("/metrics does not name the applied commit %s", c)
		}
		base = d
	})
	if !ok {
		t.FailNow()
	}

	t.Run("webhook_good_signature_reconciles_within_2s_bad_is_refused", func(t *testing.T) {
		d := base
		d.priority = 30
		c := r.commit(d, true, "node2 priority 30")
		webhooks := in.metric(t, ctx, `pgaf_reconcile_triggers_total{trigger="webhook"}`)
		for _, secret := range [][]byte{nil, []byte("not the secret")} {
			if code := in.webhook(t, secret); code != http.StatusUnauthorized {
				t.Errorf("signature %q: status %d, want 401", secret, code)
			}
		}
		if got := in.metric(t, ctx, `pgaf_reconcile_triggers_total{trigger="webhook"}`); got != webhooks {
			t.Errorf("refused webhooks started %v run(s)", got-webhooks)
		}
		if got := in.metric(t, ctx, `pgaf_webhook_requests_total{result="unauthorized"}`); got < 2 {
			t.Errorf("unauthorized webhooks counted %v, want 2", got)
		}
		if _, ok := in.firstAction(c); ok {
			st := in.status(t, ctx)
			if st.LastRun == nil || st.LastRun.Trigger == "webhook" {
				t.Errorf("acted on %s after bad signatures: %+v", c, st.LastRun)
			}
		}
		sent := time.Now()
		if code := in.webhook(t, r.secret); code != http.StatusAccepted {
			t.Fatalf("good signature: status %d, want 202", code)
		}
		in.waitStatus(t, ctx, 2*time.Second, "a run on the new commit within 2s", func(st service.Status) bool {
			return (st.Current != nil && st.LastSeen != nil && st.LastSeen.Commit == c) ||
				(st.LastRun != nil && st.LastRun.Start.After(sent) && st.LastSeen != nil && st.LastSeen.Commit == c)
		})
		t.Logf("webhook to a run on %s: %s", c[:12], time.Since(sent).Round(time.Millisecond))
		in.waitStatus(t, ctx, time.Minute, "commit applied", applied(c))
		if first, ok := in.firstAction(c); ok {
			t.Logf("webhook to first action: %s", first.Sub(sent).Round(time.Millisecond))
		}
		base = d
	})

	t.Run("invalid_yaml_commit_leaves_the_cluster_untouched", func(t *testing.T) {
		d := base
		d.priority = 20
		d.broken = true
		since := time.Now()
		bad := r.commit(d, true, "a key the schema refuses")
		in.webhook(t, r.secret)
		st := in.waitStatus(t, ctx, 30*time.Second, "invalid commit reported", func(st service.Status) bool {
			return st.LastSeen != nil && st.LastSeen.Commit == bad && st.Current == nil && st.LastRun != nil && st.LastRun.Start.After(since)
		})
		if st.Condition != service.Stalled || st.Reason != service.ReasonInvalid {
			t.Errorf("condition %s %s, want Stalled %s", st.Condition, st.Reason, service.ReasonInvalid)
		}
		if len(st.Errors) == 0 || st.Errors[0].File != "desired.yaml" || st.Errors[0].Line == 0 {
			t.Errorf("errors %+v, want desired.yaml:LINE:COL", st.Errors)
		} else {
			t.Logf("/status: %s", st.Errors[0].Error())
		}
		if st.InForce == nil || st.InForce.Commit == bad {
			t.Errorf("in force %+v, want the last good commit", st.InForce)
		}
		if p, err := candidatePriority(ctx, l, "node2"); err != nil || p != base.priority {
			t.Errorf("node2 priority %d (%v), want %d untouched", p, err, base.priority)
		}
		if _, ok := in.firstAction(bad); ok {
			t.Errorf("an action ran for the invalid commit")
		}
		if muts := dockerMutations(t, ctx, gitopsCluster, since, time.Now().Add(time.Second)); len(muts) != 0 {
			t.Errorf("docker mutations after the invalid commit: %v", muts)
		}
		d.broken = false
		good := r.commit(d, true, "fixed")
		in.webhook(t, r.secret)
		in.waitStatus(t, ctx, time.Minute, "next good commit applied", applied(good))
		base = d
	})

	t.Run("verification_refuses_an_unsigned_commit", func(t *testing.T) {
		in.stop(t)
		in = r.start(t, ctx, instanceOpts{name: "main", verify: true})
		head := in.waitStatus(t, ctx, time.Minute, "signed head in force", func(st service.Status) bool {
			return st.Condition == service.Ready && st.InForce != nil && st.InForce.SignedBy != ""
		})
		d := base
		d.priority = 10
		since := time.Now()
		unsigned := r.commit(d, false, "unsigned")
		in.webhook(t, r.secret)
		st := in.waitStatus(t, ctx, 30*time.Second, "unsigned commit refused", func(st service.Status) bool {
			return st.LastSeen != nil && st.LastSeen.Commit == unsigned && st.Current == nil && st.LastRun.Start.After(since)
		})
		if st.Condition != service.Stalled || st.Reason != service.ReasonVerificationFailed || !strings.Contains(st.Message, "not signed") {
			t.Errorf("status %s %s %q", st.Condition, st.Reason, st.Message)
		} else {
			t.Logf("/status: %s %s: %s", st.Condition, st.Reason, firstLine(st.Message))
		}
		if st.InForce.Commit != head.InForce.Commit {
			t.Errorf("in force %s, want the last trusted %s", st.InForce.Commit, head.InForce.Commit)
		}
		if p, err := candidatePriority(ctx, l, "node2"); err != nil || p != base.priority {
			t.Errorf("node2 priority %d (%v), want %d untouched", p, err, base.priority)
		}
		if muts := dockerMutations(t, ctx, gitopsCluster, since, time.Now().Add(time.Second)); len(muts) != 0 {
			t.Errorf("docker mutations after the unsigned commit: %v", muts)
		}
		signed := r.commit(base, true, "signed again")
		in.webhook(t, r.secret)
		in.waitStatus(t, ctx, time.Minute, "signed commit applied", applied(signed))
	})

	ok = t.Run("kill_9_during_apply_then_restart_converges", func(t *testing.T) {
		d := base
		d.networks = []string{l.Subnet, "10.99.0.0/16"} // every node's container is replaced, in turn
		c := r.commit(d, true, "one more client network")
		in.webhook(t, r.secret)
		err := poll(ctx, 2*time.Minute, "first replace_container", func(ctx context.Context) (bool, string, error) {
			for _, a := range in.actions() {
				if a.Commit == c && a.Action == "replace_container" {
					return true, "", nil
				}
			}
			return false, "", nil
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, in.logTail(20))
		}
		time.Sleep(500 * time.Millisecond) // inside the step
		in.kill9(t)
		t.Logf("killed -9 during: %s", in.actions()[len(in.actions())-1].Action)
		in = r.start(t, ctx, instanceOpts{name: "main", verify: true})
		start := time.Now()
		in.waitStatus(t, ctx, 8*time.Minute, "converged after restart", applied(c))
		t.Logf("restarted instance converged in %s", time.Since(start).Round(time.Second))
		waitGitopsStable(t, ctx, l, 3*time.Minute)
		base = d
	})
	if !ok {
		t.FailNow()
	}

	t.Run("two_instances_only_one_acts", func(t *testing.T) {
		in.stop(t)
		a := r.start(t, ctx, instanceOpts{name: "a"})
		b := r.start(t, ctx, instanceOpts{name: "b"})
		for _, x := range []*instance{a, b} {
			x.waitStatus(t, ctx, time.Minute, "idle and ready", func(st service.Status) bool { return st.Condition == service.Ready })
		}
		// Drift both see: a secondary's container removed by hand.
		victim, vm := gitopsSecondary(t, ctx, l)
		if _, err := l.SSH(ctx, vm, "docker rm -f "+victim); err != nil {
			t.Fatal(err)
		}
		a.webhook(t, r.secret)
		b.webhook(t, r.secret)
		sawHeld := ""
		err := poll(ctx, 5*time.Minute, "both ready again", func(ctx context.Context) (bool, string, error) {
			sa, sb := a.status(t, ctx), b.status(t, ctx)
			for _, st := range []service.Status{sa, sb} {
				if st.Reason == service.ReasonLockHeld && sawHeld == "" {
					sawHeld = st.Instance + ": " + firstLine(st.Message)
				}
			}
			s, _ := containerState(ctx, victim)
			return sa.Condition == service.Ready && sb.Condition == service.Ready && s == "running",
				fmt.Sprintf("a %s %s, b %s %s, %s %s", sa.Condition, sa.Reason, sb.Condition, sb.Reason, victim, s), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		na, nb := a.metric(t, ctx, "pgaf_actions_total"), b.metric(t, ctx, "pgaf_actions_total")
		t.Logf("actions: a %v, b %v; lock report: %s", na, nb, sawHeld)
		if (na == 0) == (nb == 0) {
			t.Errorf("actions a=%v b=%v: want exactly one instance acting", na, nb)
		}
		if sawHeld == "" {
			t.Errorf("the idle instance never reported who holds the lock")
		} else if !strings.Contains(sawHeld, `"a"`) && !strings.Contains(sawHeld, `"b"`) {
			t.Errorf("lock report does not name the holder: %s", sawHeld)
		}
		waitGitopsStable(t, ctx, l, 3*time.Minute)
		a.stop(t)
		b.stop(t)
	})

	// Two instances; the one acting on a rolling change (every container
	// replaced in turn) is killed -9 in the middle of a step. Its monitor
	// session dies with it, and with the session the advisory lock: the
	// other instance, which said who held the lock and since when, takes
	// it at its next retry (wait_retry 2 s here), resumes from what it
	// observes and finishes the rollout.
	t.Run("kill_9_of_the_acting_instance_hands_over_to_the_other", func(t *testing.T) {
		in.stop(t)
		a := r.start(t, ctx, instanceOpts{name: "ha-a"})
		b := r.start(t, ctx, instanceOpts{name: "ha-b"})
		defer a.stop(t)
		defer b.stop(t)
		for _, x := range []*instance{a, b} {
			x.waitStatus(t, ctx, time.Minute, "idle and ready", func(st service.Status) bool { return st.Condition == service.Ready })
		}
		d := base
		d.networks = append(slices.Clone(base.networks), "10.98.0.0/16")
		c := r.commit(d, true, "another client network, rolled out by one of two instances")
		a.webhook(t, r.secret)
		b.webhook(t, r.secret)
		var acting, waiting *instance
		err := poll(ctx, 2*time.Minute, "a replace_container by either instance", func(ctx context.Context) (bool, string, error) {
			for _, x := range [][2]*instance{{a, b}, {b, a}} {
				for _, l := range x[0].actions() {
					if l.Commit == c && l.Action == "replace_container" {
						acting, waiting = x[0], x[1]
						return true, "", nil
					}
				}
			}
			return false, "", nil
		})
		if err != nil {
			t.Fatal(err)
		}
		held := waiting.waitStatus(t, ctx, 30*time.Second, "says who holds the lock", func(st service.Status) bool {
			return st.Reason == service.ReasonLockHeld
		})
		if !strings.Contains(held.Message, strconv.Quote(acting.name)) || !strings.Contains(held.Message, "connected ") {
			t.Errorf("%s's /status: %q, want the holder %q and since when", waiting.name, held.Message, acting.name)
		}
		killed := time.Now()
		acting.kill9(t)
		t.Logf("killed -9 %s during: %s", acting.name, acting.actions()[len(acting.actions())-1].Action)
		var handover time.Duration
		err = poll(ctx, time.Minute, waiting.name+"'s first action after the kill", func(ctx context.Context) (bool, string, error) {
			for _, l := range waiting.actions() {
				if l.Commit == c && l.Time.After(killed) {
					handover = l.Time.Sub(killed)
					return true, "", nil
				}
			}
			return false, waiting.logTail(1), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("lock handover after kill -9: %s from the kill to %s's first action (wait_retry 2s)", handover.Round(10*time.Millisecond), waiting.name)
		waiting.waitStatus(t, ctx, 8*time.Minute, "the rollout finished", applied(c))
		waitGitopsStable(t, ctx, l, 3*time.Minute)
		var steps []string
		for _, x := range []*instance{acting, waiting} {
			for _, l := range x.actions() {
				if l.Commit == c {
					steps = append(steps, x.name+" "+l.Action)
				}
			}
		}
		t.Logf("steps of the rollout: %s", strings.Join(steps, ", "))
		base = d
	})

	t.Run("dry_run_reports_drift_then_run_repairs_it", func(t *testing.T) {
		victim, vm := gitopsSecondary(t, ctx, l)
		if _, err := l.SSH(ctx, vm, "docker rm -f "+victim); err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		dry := r.start(t, ctx, instanceOpts{name: "dry", dryRun: true})
		st := dry.waitStatus(t, ctx, time.Minute, "drift reported", func(st service.Status) bool {
			return st.Reason == service.ReasonDrift
		})
		if st.Drift[gitopsCluster] == 0 || !st.DryRun {
			t.Errorf("drift %v dry_run %v", st.Drift, st.DryRun)
		}
		t.Logf("dry run: %s", st.Message)
		dry.webhook(t, r.secret) // another run: still nothing done
		dry.waitStatus(t, ctx, 30*time.Second, "second dry run", func(x service.Status) bool {
			return x.LastRun != nil && x.LastRun.Trigger == "webhook" && x.Current == nil
		})
		if s, _ := containerState(ctx, victim); s != "" {
			t.Errorf("dry run: %s is %q, want still absent", victim, s)
		}
		if muts := dockerMutations(t, ctx, gitopsCluster, since, time.Now().Add(time.Second)); len(muts) != 0 {
			t.Errorf("dry run made docker mutations: %v", muts)
		}
		if n := dry.metric(t, ctx, "pgaf_actions_total"); n != 0 {
			t.Errorf("dry run executed %v action(s)", n)
		}
		dry.stop(t)
		in = r.start(t, ctx, instanceOpts{name: "main"})
		in.waitStatus(t, ctx, 5*time.Minute, "repaired", func(st service.Status) bool {
			return st.Condition == service.Ready && st.LastApplied != nil
		})
		if s, _ := containerState(ctx, victim); s != "running" {
			t.Errorf("%s is %q after run, want running", victim, s)
		}
		waitGitopsStable(t, ctx, l, 3*time.Minute)
	})

	// The page and the metrics an on-call engineer has through a primary
	// power cut: converged, during the failover (the powered-off node's
	// planning blocked: vm_unobserved), and after. A commit during the cut
	// changes node2's candidate priority: that goes through the monitor,
	// so it may be applied before or after the cut is seen. The no-primary
	// alert's expression is true on the metrics scraped during the cut
	// and false after.
	t.Run("status_page_and_no_primary_alert_through_a_power_cut", func(t *testing.T) {
		bin := chromium(t)
		shots := filepath.Join(l.Dir, "artefacts")
		// node2 on vm2 is the one to cut: vm3 holds the monitor.
		switched := promoteOn(t, ctx, gitopsMonitorURI(l), "node2")
		in.webhook(t, r.secret)
		in.waitStatus(t, ctx, time.Minute, "converged with node2 primary", func(st service.Status) bool {
			return st.Condition == service.Ready && st.Current == nil && st.ObservedAt.After(time.Now().Add(-10*time.Second))
		})
		page := in.page(t, ctx)
		for _, want := range []string{"node1", "node2", "node3", "<td>primary</td>", "<td>secondary</td>", `<td class="good">good</td>`} {
			if !strings.Contains(page, want) {
				t.Errorf("converged page lacks %q", want)
			}
		}
		// Each standby's replay lag from node2's pg_stat_replication, on
		// the page and in /metrics; the switchover to node2 in the history.
		if n := len(regexp.MustCompile(`<td class="n">\d+ ms</td>|<td class="n">\d+\.\d s</td>`).FindAllString(page, -1)); n != 2 {
			t.Errorf("converged page shows %d replay lags, want one per standby (2)", n)
		}
		for _, node := range []string{"node1", "node3"} {
			if lag, ok := in.samples(t, ctx, `pgaf_node_replication_lag_seconds{cluster="`+gitopsCluster+`",node="`+node+`"}`); !ok || lag < 0 || lag > 60 {
				t.Errorf("pgaf_node_replication_lag_seconds of %s: %v (present %v), want 0-60 s", node, lag, ok)
			}
		}
		if switched {
			if !regexp.MustCompile(`<td>switchover</td><td>node[13]</td><td>node2</td>`).MatchString(page) {
				t.Errorf("converged page: the switchover to node2 is not in the history")
			}
			if n := in.metric(t, ctx, `pgaf_failovers_total{cluster="`+gitopsCluster+`",kind="switchover"}`); n < 1 {
				t.Errorf("pgaf_failovers_total switchover = %v after the switchover to node2, want >= 1", n)
			}
		}
		failoversBefore := in.metric(t, ctx, `pgaf_failovers_total{cluster="`+gitopsCluster+`",kind="failover"}`)
		screenshot(t, ctx, bin, shots, in.url+"/", "page-1-converged")

		var (
			mu      sync.Mutex
			samples []scrape
		)
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() { // a scrape a second, and a run each time (SIGHUP)
			defer close(sampled)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if sc, err := in.clusterScrape(ctx, gitopsCluster); err == nil {
					mu.Lock()
					samples = append(samples, sc)
					mu.Unlock()
				}
				_ = in.cmd.Process.Signal(syscall.SIGHUP)
			}
		}()
		stopSampling := sync.OnceFunc(func() { close(stop); <-sampled })
		defer stopSampling()
		seen := func(cond func(scrape) bool) (scrape, bool) {
			mu.Lock()
			defer mu.Unlock()
			for _, sc := range samples {
				if cond(sc) {
					return sc, true
				}
			}
			return scrape{}, false
		}

		cut := time.Now()
		if err := l.PowerOff(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.PowerOn(cleanupCtx(t), "vm2") })
		d := base
		d.priority = base.priority + 1
		c := r.commit(d, true, "node2 priority while vm2 is off")
		err := poll(ctx, 3*time.Minute, "no-primary alert expression true", func(ctx context.Context) (bool, string, error) {
			sc, ok := seen(func(sc scrape) bool { return sc.at.After(cut) && sc.alertNoPrimary() })
			return ok, sc.String(), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		page = in.page(t, ctx)
		// node2's health cell, and the change committed for it blocked.
		for _, want := range []string{`<td class="bad">bad</td>`, "guard <code>vm_unobserved</code>"} {
			if !strings.Contains(page, want) {
				t.Errorf("page during the failover lacks %q", want)
			}
		}
		screenshot(t, ctx, bin, shots, in.url+"/", "page-2-failover-and-blocked")
		var promoted time.Time
		err = poll(ctx, 3*time.Minute, "a new primary, and the expression false", func(ctx context.Context) (bool, string, error) {
			nodes, err := monitorNodes(ctx, gitopsMonitorURI(l))
			if err != nil {
				return false, err.Error(), nil
			}
			for _, n := range nodes {
				if n.Name != "node2" && (n.Reported == "wait_primary" || n.Reported == "primary") && promoted.IsZero() {
					promoted = time.Now()
				}
			}
			if promoted.IsZero() {
				return false, summary(nodes), nil
			}
			sc, ok := seen(func(sc scrape) bool { return sc.at.After(promoted) && sc.primaries == 1 })
			return ok, summary(nodes) + "; " + sc.String(), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stopSampling()
		var window time.Duration
		var first time.Time
		for _, sc := range samples {
			switch {
			case sc.alertNoPrimary() && first.IsZero():
				first = sc.at
			case !sc.alertNoPrimary() && !first.IsZero() && window == 0:
				window = sc.at.Sub(first)
			}
			if sc.primaries > 1 {
				t.Errorf("scrape %s: more than one primary", sc)
			}
		}
		t.Logf("no-primary expression true for %s of scrapes (%d scrapes a second apart); the alert waits 1m", window.Round(time.Second), len(samples))
		checkRulesOnScrapes(t, shots, samples)

		if err := l.PowerOn(ctx, "vm2"); err != nil {
			t.Fatal(err)
		}
		in.webhook(t, r.secret)
		in.waitStatus(t, ctx, 5*time.Minute, "the commit of the cut applied and converged after power-on", applied(c))
		base = d
		waitGitopsStable(t, ctx, l, 3*time.Minute)
		page = in.page(t, ctx)
		if strings.Contains(page, "guard <code>vm_unobserved</code>") {
			t.Errorf("page after the failover: still blocked")
		}
		// The failover in the history: from node2, to whichever node won.
		if !strings.Contains(page, "<td>failover</td><td>node2</td>") {
			t.Errorf("page after the failover: no failover from node2 in the history")
		}
		if n := in.metric(t, ctx, `pgaf_failovers_total{cluster="`+gitopsCluster+`",kind="failover"}`); n != failoversBefore+1 {
			t.Errorf("pgaf_failovers_total failover = %v after the power cut, want one more than before it (%v)", n, failoversBefore)
		}
		if at, ok := in.samples(t, ctx, `pgaf_last_failover_timestamp_seconds{cluster="`+gitopsCluster+`"}`); !ok ||
			at < float64(cut.Unix()) || at > float64(time.Now().Unix()) {
			t.Errorf("pgaf_last_failover_timestamp_seconds = %v (present %v), want between the cut (%d) and now", at, ok, cut.Unix())
		}
		screenshot(t, ctx, bin, shots, in.url+"/", "page-3-after")
	})

	t.Run("measure_commit_to_first_action", func(t *testing.T) {
		n := 10
		if v, err := strconv.Atoi(os.Getenv("GITOPS_BENCH_COMMITS")); err == nil && v > 0 {
			n = v
		}
		measure := func(t *testing.T, x *instance, webhook bool, interval time.Duration) []time.Duration {
			var lats []time.Duration
			for i := range n {
				if !webhook {
					// Commits land at a random phase of the interval.
					time.Sleep(time.Duration(rand.Int64N(int64(interval))))
				}
				d := base
				d.priority = 50 - (i%2)*5 - 1
				before := time.Now()
				c := r.commit(d, true, fmt.Sprintf("bench %d", i))
				if webhook {
					x.webhook(t, r.secret)
				}
				x.waitStatus(t, ctx, interval+time.Minute, "bench commit applied", applied(c))
				first, ok := x.firstAction(c)
				if !ok {
					t.Fatalf("no action logged for %s", c)
				}
				lats = append(lats, first.Sub(before))
				if first.Sub(before) > interval/2 || (webhook && first.Sub(before) > time.Second) {
					t.Logf("commit %d took %s; service log since the commit: %s", i, first.Sub(before).Round(time.Millisecond), x.timeline(before, first))
				}
				base = d
			}
			return lats
		}
		report := func(what string, lats []time.Duration) {
			s := slices.Clone(lats)
			slices.Sort(s)
			t.Logf("commit-to-first-action, %s, %d commits: median %s, worst %s, all %v",
				what, len(s), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), s)
		}
		report("webhook", measure(t, in, true, 10*time.Second))
		in.stop(t)
		poller := r.start(t, ctx, instanceOpts{name: "poll", interval: 5 * time.Second})
		poller.waitStatus(t, ctx, time.Minute, "ready", func(st service.Status) bool { return st.Condition == service.Ready })
		report("polling every 5s (jitter 10%)", measure(t, poller, false, 5*time.Second))
		poller.stop(t)
		t.Logf("peak RSS over every instance of this test: %d kB (%.1f MB); goal < 40 MB", r.peakRSS, float64(r.peakRSS)/1024)
	})
}
