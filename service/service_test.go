package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/internal/testenv"
	"github.com/pgaf-gitops/reconciler/reconcile"
	"github.com/pgaf-gitops/reconciler/source"
)

// desiredYAML is a small valid desired state; image is what commits change.
func desiredYAML(image string) string {
	return fmt.Sprintf(`vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
clusters:
  - name: main
    image: %s
    monitor: {vm: vm1, port: 6432}
    nodes:
      - {name: node1, vm: vm1}
      - {name: node2, vm: vm2}
`, image)
}

// fakeEngine records what it was asked to converge. Each Apply runs
// actions (BeforeStep, then AfterStep) and returns err.
type fakeEngine struct {
	mu      sync.Mutex
	applied []string // st.Commit of each Apply
	planned []string
	actions []reconcile.Action
	err     error
	drift   []reconcile.Action // returned by Plan
	blocked []reconcile.Blocked
	// block, when set, is where Apply waits between its steps.
	block chan struct{}
}

func (f *fakeEngine) result(st *desired.State, acts []reconcile.Action) *reconcile.Result {
	return &reconcile.Result{Version: reconcile.PlanSchemaVersion, Commit: st.Commit,
		Clusters: []reconcile.ClusterPlan{{Name: "main", Actions: acts, Blocked: f.blocked}}}
}

func (f *fakeEngine) Plan(ctx context.Context, st *desired.State, h Hooks) (*reconcile.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planned = append(f.planned, st.Commit)
	return f.result(st, f.drift), nil
}

func (f *fakeEngine) Apply(ctx context.Context, st *desired.State, h Hooks) (*actuators.Outcome, error) {
	f.mu.Lock()
	f.applied = append(f.applied, st.Commit)
	acts, ferr, block := f.actions, f.err, f.block
	f.mu.Unlock()
	o := &actuators.Outcome{}
	for i, a := range acts {
		if i > 0 && block != nil {
			<-block
		}
		if ctx.Err() != nil {
			o.Last = f.result(st, acts[i:])
			return o, actuators.ErrInterrupted
		}
		if err := h.BeforeStep(ctx, a); err != nil {
			o.Last = f.result(st, acts[i:])
			return o, fmt.Errorf("step %d: %w", i+1, err)
		}
		h.AfterStep(actuators.StepResult{Action: a, Duration: time.Millisecond})
	}
	o.Last = f.result(st, nil)
	if len(f.blocked) > 0 && ferr == nil { // as actuators.Apply reports it
		ferr = &actuators.BlockedError{Blocked: f.blocked}
	}
	if ferr != nil {
		o.Last = f.result(st, acts)
	}
	return o, ferr
}

func (f *fakeEngine) appliedCommits() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...)
}

// repo is the shared test repository, committing desired.yaml alone.
type repo struct{ *testenv.Repo }

func newRepo(t *testing.T) *repo { return &repo{testenv.NewRepo(t)} }

func (r *repo) commit(content string) string { return r.signedCommit(content, nil) }

func (r *repo) signedCommit(content string, key *openpgp.Entity) string {
	return r.Commit("change", key, map[string]string{"desired.yaml": content})
}

// harness runs a service on a git repo with a fake engine and real HTTP.
type harness struct {
	t      *testing.T
	svc    *Service
	eng    *fakeEngine
	srv    *httptest.Server
	secret []byte
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, src source.Source, eng *fakeEngine, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, eng: eng, secret: []byte("hook-secret")}
	cfg := Config{Source: src, Engine: eng, Interval: time.Hour, WebhookSecret: h.secret, Instance: "test"}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.srv = httptest.NewServer(svc.Handler("/webhook"))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		h.srv.Close()
	})
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("run: %v", err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		h.t.Error("run did not return after cancel")
	}
}

// waitFor polls the status until cond holds.
func (h *harness) waitFor(what string, cond func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := h.getStatus()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			h.t.Fatalf("timed out waiting for %s; status:\n%s", what, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getStatus reads /status over HTTP, as operators do.
func (h *harness) getStatus() Status {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) post(body string, sig string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/webhook", strings.NewReader(body))
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func applied(commit string) func(Status) bool {
	return func(st Status) bool {
		return st.LastApplied != nil && st.LastApplied.Commit == commit && st.Current == nil
	}
}

func gitSource(t *testing.T, r *repo, keyring string) *source.Git {
	t.Helper()
	g, err := source.NewGit(source.GitConfig{URL: r.URL(), CacheDir: filepath.Join(t.TempDir(), "cache"), Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestWebhookTriggersARunWithTheNewCommit(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(desiredYAML("img:1"))
	eng := &fakeEngine{}
	h := start(t, gitSource(t, r, ""), eng, nil)
	st := h.waitFor("first commit applied", applied(c1))
	if st.Condition != Ready || st.Reason != ReasonSucceeded || st.LastPlan.Commit != c1 {
		t.Errorf("after the first run: %s %s, plan commit %s", st.Condition, st.Reason, st.LastPlan.Commit)
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %s", code, body)
	}

	c2 := r.commit(desiredYAML("img:2"))
	body := `{"ref":"refs/heads/main"}`
	tests := []struct {
		name string
		sig  string
	}{
		{"missing_signature", ""},
		{"bad_signature", Sign([]byte("wrong secret"), []byte(body))},
		{"signature_of_another_body", Sign(h.secret, []byte(body+" "))},
		{"not_hex", "sha256=zz"},
		{"sha1_form", "sha1=" + strings.TrimPrefix(Sign(h.secret, []byte(body)), "sha256=")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code := h.post(body, tc.sig); code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", code)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // a run, were one triggered, would start now
	if got := eng.appliedCommits(); len(got) != 1 {
		t.Fatalf("refused webhooks started runs: applied %v", got)
	}

	start := time.Now()
	if code := h.post(body, Sign(h.secret, []byte(body))); code != http.StatusAccepted {
		t.Fatalf("good signature: status %d, want 202", code)
	}
	st = h.waitFor("second commit applied", applied(c2))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("webhook to applied took %s, want < 2s", d)
	}
	if st.LastRun.Trigger != "webhook" || st.LastSeen.Commit != c2 || st.InForce.Commit != c2 {
		t.Errorf("run %+v seen %+v in force %+v", st.LastRun, st.LastSeen, st.InForce)
	}
	if got := eng.appliedCommits(); got[len(got)-1] != c2 {
		t.Errorf("engine applied %v, want %s last", got, c2)
	}
	_, metrics := h.get("/metrics")
	for _, want := range []string{
		`pgaf_desired_revision_info{commit="` + c2 + `",which="applied"} 1`,
		`pgaf_webhook_requests_total{result="unauthorized"} 5`,
		`pgaf_webhook_requests_total{result="accepted"} 1`,
		`pgaf_reconcile_runs_total{result="success"} 2`,
		`pgaf_condition{condition="Ready",reason="ReconciliationSucceeded"} 1`,
		`pgaf_reconcile_duration_seconds_count 2`,
		`pgaf_reconcile_last_success_timestamp_seconds`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, page := h.get("/"); code != http.StatusOK || !strings.Contains(page, c2[:12]) || !strings.Contains(page, "Ready") {
		t.Errorf("status page %d lacks the commit or the condition:\n%s", code, page)
	}
}

func TestInvalidCommitKeepsTheLastGoodState(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(desiredYAML("img:1"))
	eng := &fakeEngine{}
	h := start(t, gitSource(t, r, ""), eng, nil)
	h.waitFor("first commit applied", applied(c1))

	bad := r.commit(desiredYAML("img:1") + "    bogus_key: 1\n")
	h.svc.Trigger("test")
	st := h.waitFor("invalid commit reported", func(st Status) bool {
		return st.LastSeen != nil && st.LastSeen.Commit == bad && st.Current == nil && st.LastRun != nil
	})
	if st.Condition != Stalled || st.Reason != ReasonInvalid {
		t.Errorf("condition %s %s, want Stalled InvalidDesiredState", st.Condition, st.Reason)
	}
	if len(st.Errors) == 0 || st.Errors[0].File != "desired.yaml" || st.Errors[0].Line != 11 || st.Errors[0].Col == 0 {
		t.Errorf("errors %+v, want desired.yaml:11:COL", st.Errors)
	}
	if !strings.Contains(st.Message, "desired.yaml:11:") || !strings.Contains(st.Message, "stays in force") {
		t.Errorf("message %q lacks FILE:LINE or that the last good state stays", st.Message)
	}
	if st.InForce.Commit != c1 || st.LastApplied.Commit != c1 {
		t.Errorf("in force %s applied %s, want %s", st.InForce.Commit, st.LastApplied.Commit, c1)
	}
	for _, c := range eng.appliedCommits() {
		if c == bad {
			t.Errorf("the invalid commit was applied")
		}
	}
	if code, _ := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d: the last good state is in force", code)
	}

	c3 := r.commit(desiredYAML("img:3"))
	h.svc.Trigger("test")
	st = h.waitFor("next good commit applied", applied(c3))
	if st.Condition != Ready || len(st.Errors) != 0 {
		t.Errorf("after a good commit: %s, errors %v", st.Condition, st.Errors)
	}
}

func TestNoGoodStateAtAllIsStalledAndNotReady(t *testing.T) {
	r := newRepo(t)
	r.commit("vms: [\n")
	eng := &fakeEngine{}
	h := start(t, gitSource(t, r, ""), eng, nil)
	st := h.waitFor("a run", func(st Status) bool { return st.LastRun != nil })
	if st.Condition != Stalled || st.Reason != ReasonInvalid || len(st.Errors) == 0 {
		t.Errorf("status %s %s %v", st.Condition, st.Reason, st.Errors)
	}
	if code, _ := h.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d, want 503", code)
	}
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d, want 200", code)
	}
	if n := len(eng.appliedCommits()); n != 0 {
		t.Errorf("%d applies without a desired state", n)
	}
}

func TestGitOutageKeepsEnforcingAndBacksOff(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(desiredYAML("img:1"))
	eng := &fakeEngine{}
	h := start(t, gitSource(t, r, ""), eng, func(c *Config) { c.BackoffMin = time.Hour })
	h.waitFor("first commit applied", applied(c1))
	if err := os.RemoveAll(r.Dir); err != nil {
		t.Fatal(err)
	}
	h.svc.Trigger("test")
	st := h.waitFor("outage reported", func(st Status) bool { return st.Reason == ReasonFetchFailed && st.Current == nil })
	if st.Condition != Reconciling || st.ConsecutiveFailures != 1 || st.LastRun.Result != string(ClassTransient) {
		t.Errorf("status %s failures %d result %s", st.Condition, st.ConsecutiveFailures, st.LastRun.Result)
	}
	if got := eng.appliedCommits(); len(got) != 2 || got[1] != c1 {
		t.Errorf("applied %v, want %s enforced again from the cache", got, c1)
	}
	if until := time.Until(st.NextRun); until < 25*time.Minute {
		t.Errorf("next run in %s, want the backoff (at least half an hour)", until)
	}
}

func TestVerificationRefusesAnUnsignedHead(t *testing.T) {
	key, ring := testenv.NewKey(t, "trusted")
	r := newRepo(t)
	c1 := r.signedCommit(desiredYAML("img:1"), key)
	eng := &fakeEngine{}
	h := start(t, gitSource(t, r, ring), eng, nil)
	st := h.waitFor("signed commit applied", applied(c1))
	if !strings.Contains(st.InForce.SignedBy, "trusted") {
		t.Errorf("signed by %q", st.InForce.SignedBy)
	}
	c2 := r.commit(desiredYAML("img:2"))
	h.svc.Trigger("test")
	st = h.waitFor("unsigned commit refused", func(st Status) bool {
		return st.LastSeen != nil && st.LastSeen.Commit == c2 && st.Current == nil
	})
	if st.Condition != Stalled || st.Reason != ReasonVerificationFailed || !strings.Contains(st.Message, "not signed") {
		t.Errorf("status %s %s %q", st.Condition, st.Reason, st.Message)
	}
	if st.InForce.Commit != c1 {
		t.Errorf("in force %s, want %s", st.InForce.Commit, c1)
	}
	for _, c := range eng.appliedCommits() {
		if c == c2 {
			t.Error("the unsigned commit was applied")
		}
	}
}

func TestLockHeldElsewhereStopsBeforeTheStep(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(desiredYAML("img:1"))
	other := NewFileLock(t.TempDir(), "other-instance")
	ours := NewFileLock(other.Dir, "test")
	if err := other.Hold(context.Background(), nil, "main"); err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{actions: []reconcile.Action{{Cluster: "main", Kind: reconcile.CreateNode, Node: "node1", Spec: &reconcile.ContainerSpec{Image: "img:1"}}}}
	h := start(t, gitSource(t, r, ""), eng, func(c *Config) { c.Lock = ours; c.WaitRetry = time.Hour })
	st := h.waitFor("a run", func(st Status) bool { return st.LastRun != nil })
	if st.Reason != ReasonLockHeld || !strings.Contains(st.Message, "other-instance") || st.LastRun.Result != string(ClassWaiting) {
		t.Errorf("status %s %s %q", st.Reason, st.LastRun.Result, st.Message)
	}
	if len(st.Steps) != 0 {
		t.Errorf("steps ran without the lock: %+v", st.Steps)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	h.svc.Trigger("test")
	st = h.waitFor("applied once the lock is free", applied(c1))
	if len(st.Steps) != 1 || len(st.LocksHeld) != 1 || st.LocksHeld[0] != "main" {
		t.Errorf("steps %+v locks %v", st.Steps, st.LocksHeld)
	}
}

func TestDryRunReportsDriftAndNeverActs(t *testing.T) {
	r := newRepo(t)
	c1 := r.commit(desiredYAML("img:1"))
	drift := []reconcile.Action{{Cluster: "main", Kind: reconcile.CreateNode, Node: "node2", Reason: "container absent"}}
	eng := &fakeEngine{drift: drift}
	h := start(t, gitSource(t, r, ""), eng, func(c *Config) { c.DryRun = true; c.Lock = lockNever{t} })
	st := h.waitFor("a run", func(st Status) bool { return st.LastRun != nil })
	if st.Condition != Stalled || st.Reason != ReasonDrift || st.Drift["main"] != 1 || !st.DryRun {
		t.Errorf("status %s %s drift %v", st.Condition, st.Reason, st.Drift)
	}
	if st.LastApplied != nil || len(eng.appliedCommits()) != 0 {
		t.Errorf("dry run applied: %+v %v", st.LastApplied, eng.appliedCommits())
	}
	_, metrics := h.get("/metrics")
	if want := `pgaf_drift_actions{cluster="main",commit="` + c1 + `"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	eng.mu.Lock()
	eng.drift = nil
	eng.mu.Unlock()
	h.svc.Trigger("test")
	st = h.waitFor("no drift", func(st Status) bool { return st.Reason == ReasonNoDrift })
	if st.Condition != Ready {
		t.Errorf("condition %s", st.Condition)
	}
}

// lockNever fails the test if anything asks for the lock.
type lockNever struct{ t *testing.T }

func (l lockNever) Hold(context.Context, *desired.State, string) error {
	l.t.Error("the lock was asked for")
	return errors.New("no")
}
func (lockNever) Held() []string { return nil }
func (lockNever) Close() error   { return nil }

func TestCancelStopsBetweenStepsAndReportsIt(t *testing.T) {
	r := newRepo(t)
	r.commit(desiredYAML("img:1"))
	block := make(chan struct{})
	eng := &fakeEngine{block: block, actions: []reconcile.Action{
		{Cluster: "main", Kind: reconcile.CreateMonitor, Node: "monitor", Spec: &reconcile.ContainerSpec{Image: "img:1"}},
		{Cluster: "main", Kind: reconcile.CreateNode, Node: "node1", Spec: &reconcile.ContainerSpec{Image: "img:1"}},
	}}
	h := start(t, gitSource(t, r, ""), eng, nil)
	h.waitFor("first step done", func(st Status) bool { return len(st.Steps) == 1 })
	h.cancel() // SIGTERM
	close(block)
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatal(err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return")
	}
	st := h.svc.Status()
	if st.Reason != ReasonInterrupted || len(st.Steps) != 1 || st.LastRun.Result != string(ClassInterrupted) {
		t.Errorf("status %s steps %d result %s", st.Reason, len(st.Steps), st.LastRun.Result)
	}
}

func TestBackoffDoublesCapsAndResets(t *testing.T) {
	s, err := New(Config{Source: fakeSource{}, Engine: &fakeEngine{}, Interval: time.Minute, Jitter: 0.1,
		BackoffMin: time.Second, BackoffMax: 10 * time.Second, Rand: func() float64 { return 1 }})
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for range 6 {
		got = append(got, s.delay(ClassTransient))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backoff %v, want %v", got, want)
	}
	s.cfg.Rand = func() float64 { return 0 }
	if d := s.delay(ClassTransient); d != 5*time.Second {
		t.Errorf("lowest jitter %s, want half the cap", d)
	}
	s.cfg.Rand = func() float64 { return 0.5 }
	if d := s.delay(ClassSuccess); d != time.Minute || s.failures != 0 {
		t.Errorf("after success: %s, failures %d", d, s.failures)
	}
	if d := s.delay(ClassTransient); d != 750*time.Millisecond {
		t.Errorf("after reset: %s, want the first step again", d)
	}
	s.cfg.Rand = func() float64 { return 1 }
	if d := s.delay(ClassStalled); d != 66*time.Second {
		t.Errorf("stalled waits the interval with jitter: %s", d)
	}
}

type fakeSource struct{}

func (fakeSource) Fetch(context.Context) (*source.Snapshot, error) { return nil, errors.New("none") }
func (fakeSource) String() string                                  { return "fake" }

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassSuccess},
		{"invalid_desired_state", fmt.Errorf("rev x: %w", desired.Errors{{File: "a.yaml", Line: 1, Col: 1, Message: "bad"}}), ClassStalled},
		{"unsigned", &source.VerificationError{Commit: "abc", Unsigned: true}, ClassStalled},
		{"path", &source.PathError{Path: "x"}, ClassStalled},
		{"source_config", &source.ConfigError{Field: "keyring", Err: os.ErrNotExist}, ClassStalled},
		{"fetch", &source.FetchError{Op: "fetch", Err: errors.New("connection refused")}, ClassTransient},
		{"lock_held", fmt.Errorf("step 1: %w", &HeldError{Cluster: "main", Holder: "x"}), ClassWaiting},
		{"lock_unreachable", &LockUnreachableError{Cluster: "main", Err: errors.New("down")}, ClassWaiting},
		{"wait_timeout", fmt.Errorf("step 2: %w", &actuators.WaitTimeoutError{Cluster: "main"}), ClassWaiting},
		{"interrupted", fmt.Errorf("x: %w", actuators.ErrInterrupted), ClassInterrupted},
		{"ssh_failure", errors.New("ssh vm1: connection refused"), ClassTransient},
		{"blocked_vm_unobserved", &actuators.BlockedError{Blocked: []reconcile.Blocked{{Guard: reconcile.GuardVMUnobserved}}}, ClassWaiting},
		{"blocked_manual_policy", &actuators.BlockedError{Blocked: []reconcile.Blocked{{Guard: reconcile.GuardVMUnobserved}, {Guard: reconcile.GuardManualPolicy}}}, ClassStalled},
		{"joined_invalid_and_fetch", errors.Join(desired.Errors{{Message: "bad"}}, &source.FetchError{Err: errors.New("x")}), ClassStalled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestDirSourceChangeTriggersARun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "desired.yaml")
	if err := os.WriteFile(path, []byte(desiredYAML("img:1")), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := source.NewDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng := &fakeEngine{}
	h := start(t, d, eng, func(c *Config) { c.Debounce = 50 * time.Millisecond })
	first := h.waitFor("first run", func(st Status) bool { return st.LastApplied != nil && st.Current == nil })
	if first.LastApplied.Commit != "" || !strings.HasPrefix(first.LastApplied.Revision, "sha256:") {
		t.Errorf("directory revision %+v", first.LastApplied)
	}
	// The watch starts with the loop; write until a run follows.
	deadline := time.Now().Add(5 * time.Second)
	for i := 2; ; i++ {
		if err := os.WriteFile(path, []byte(desiredYAML(fmt.Sprintf("img:%d", i))), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		st := h.svc.Status()
		if st.LastApplied != nil && st.LastApplied.Revision != first.LastApplied.Revision {
			if st.LastRun.Trigger != "fsnotify" {
				t.Errorf("trigger %s, want fsnotify", st.LastRun.Trigger)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no run after the file changed")
		}
	}
}

func TestEmptyButBlockedPlanIsNotConverged(t *testing.T) {
	r := newRepo(t)
	r.commit(desiredYAML("img:1"))
	eng := &fakeEngine{blocked: []reconcile.Blocked{{Cluster: "main", Node: "monitor", Guard: reconcile.GuardVMUnobserved, Reason: "vm1 was not reached"}}}
	h := start(t, gitSource(t, r, ""), eng, func(c *Config) { c.WaitRetry = time.Hour })
	st := h.waitFor("a run", func(st Status) bool { return st.LastRun != nil })
	if st.Condition != Reconciling || st.Reason != ReasonBlocked || !strings.Contains(st.Message, "vm1 was not reached") {
		t.Errorf("status %s %s %q", st.Condition, st.Reason, st.Message)
	}
	if st.LastApplied != nil || st.LastRun.Result != string(ClassWaiting) {
		t.Errorf("applied %+v result %s", st.LastApplied, st.LastRun.Result)
	}
}
