package actuators

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// fakeWorld is a fast stand-in for Docker and pg_auto_failover: creating
// a container registers its node, which settles at once. It is for the
// apply loop's own logic; the real thing is proven in e2e.
type fakeWorld struct {
	mu    sync.Mutex
	st    *desired.State
	obs   observe.Observation
	clock time.Time
	calls []string
	// during, when set, runs inside every mutating call (to interrupt).
	during func()
	// fail, when set, is what creating a container returns.
	fail error
}

func newFakeWorld(st *desired.State) *fakeWorld {
	w := &fakeWorld{st: st, clock: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	w.obs = observe.Observation{Version: observe.SchemaVersion}
	for _, vm := range st.VMs {
		w.obs.VMs = append(w.obs.VMs, observe.VM{Name: vm.Name, Reached: true})
	}
	for _, c := range st.Clusters {
		w.obs.Clusters = append(w.obs.Clusters, observe.Cluster{Name: c.Name, Monitor: observe.Monitor{Error: "connection refused"}})
	}
	return w
}

func (w *fakeWorld) call(s string) {
	w.calls = append(w.calls, s)
	if w.during != nil {
		w.during()
	}
}

func (w *fakeWorld) vm(name string) *observe.VM {
	for i := range w.obs.VMs {
		if w.obs.VMs[i].Name == name {
			return &w.obs.VMs[i]
		}
	}
	panic("no vm " + name)
}

func (w *fakeWorld) EnsureVolume(ctx context.Context, vm, name string, labels map[string]string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vm(vm)
	for _, vol := range v.Volumes {
		if vol.Name == name {
			return nil
		}
	}
	w.call("volume " + name)
	v.Volumes = append(v.Volumes, observe.Volume{Name: name, Cluster: labels[observe.LabelCluster], Node: labels[observe.LabelNode], SizeBytes: -1})
	return nil
}

func (w *fakeWorld) EnsureContainer(ctx context.Context, spec reconcile.ContainerSpec) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vm(spec.VM)
	for _, ct := range v.Containers {
		if ct.Name == spec.Name && ct.SpecHash == spec.Hash() {
			return nil
		}
	}
	w.call("run " + spec.Name)
	if w.fail != nil {
		return w.fail
	}
	w.clock = w.clock.Add(time.Second)
	v.Containers = append(v.Containers, observe.Container{Name: spec.Name, Cluster: spec.Labels[observe.LabelCluster], Node: spec.Labels[observe.LabelNode],
		Role: spec.Labels[observe.LabelRole], Image: spec.Image, State: "running", StartedAt: w.clock, SpecHash: spec.Hash()})
	oc := &w.obs.Clusters[0]
	if spec.Labels[observe.LabelRole] == observe.RoleMonitor {
		oc.Monitor = observe.Monitor{Reached: true, Version: "2.0", Formation: observe.Formation{Name: "default", NumberSyncStandbys: 0}, Settings: map[string]string{}}
		return nil
	}
	state := "secondary"
	if len(oc.Monitor.Nodes) == 0 {
		state = "single"
	} else if oc.Monitor.Nodes[0].ReportedState == "single" {
		oc.Monitor.Nodes[0].ReportedState, oc.Monitor.Nodes[0].AssignedState = "primary", "primary"
	}
	oc.Monitor.Nodes = append(oc.Monitor.Nodes, observe.Node{ID: int64(len(oc.Monitor.Nodes) + 1), Name: spec.Labels[observe.LabelNode],
		ReportedState: state, AssignedState: state, Health: observe.HealthGood, PGIsRunning: true, CandidatePriority: 50, ReplicationQuorum: true,
		Timeline: 1, LSN: "0/3000000", ReportTime: w.clock.Add(time.Second), StateChangeTime: w.clock})
	return nil
}

func (w *fakeWorld) StartContainer(ctx context.Context, vm, name string) error {
	w.call("start " + name)
	return nil
}
func (w *fakeWorld) StopContainer(ctx context.Context, vm, name string) error {
	w.call("stop " + name)
	return nil
}
func (w *fakeWorld) RemoveContainer(ctx context.Context, vm, name string) error {
	w.call("rm " + name)
	return nil
}
func (w *fakeWorld) RemoveVolume(ctx context.Context, vm, name string) error {
	w.call("volume rm " + name)
	return nil
}
func (w *fakeWorld) FenceContainer(ctx context.Context, vm, name, fenced string) error {
	w.call("fence " + name)
	return nil
}
func (w *fakeWorld) Exec(ctx context.Context, vm, container string, argv []string) ([]byte, error) {
	return nil, errors.New("exec is not simulated")
}

func (w *fakeWorld) observe(ctx context.Context) *observe.Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(2 * time.Second)
	var o observe.Observation
	b, _ := jsonClone(w.obs)
	o = b
	o.Time = w.clock
	return &o
}

func jsonClone(o observe.Observation) (observe.Observation, error) {
	var b bytes.Buffer
	if err := observe.Write(&b, &o); err != nil {
		return o, err
	}
	c, err := observe.Read(&b)
	if err != nil {
		return o, err
	}
	return *c, nil
}

func fakeState(t *testing.T) *desired.State {
	t.Helper()
	yaml := `
vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
  - {name: vm3, address: 10.0.0.13, ssh: {user: ops}}
clusters:
  - name: main
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm3}
    nodes:
      - {name: node1, vm: vm1}
      - {name: node2, vm: vm2}
      - {name: node3, vm: vm3, port: 5433}
`
	st, err := desired.Parse(map[string][]byte{"cluster.yaml": []byte(yaml)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fakeApply(ctx context.Context, st *desired.State, w *fakeWorld) (*Outcome, string, error) {
	x := &Executor{State: st, Docker: w, Observe: w.observe, PollInterval: time.Millisecond}
	var out bytes.Buffer
	o, err := Apply(ctx, st, x, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return o, out.String(), err
}

func TestApplyConvergesThenChangesNothing(t *testing.T) {
	st := fakeState(t)
	w := newFakeWorld(st)
	o, out, err := fakeApply(context.Background(), st, w)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	want := []string{"volume main-monitor-data", "run main-monitor", "volume main-node1-data", "run main-node1",
		"volume main-node2-data", "run main-node2", "volume main-node3-data", "run main-node3"}
	if strings.Join(w.calls, ",") != strings.Join(want, ",") {
		t.Errorf("docker calls:\n got %v\nwant %v", w.calls, want)
	}
	if !strings.Contains(out, "Converged after") || len(o.Steps) != 4 { // the fake settles at once: no wait is left to run
		t.Errorf("%d steps, output:\n%s", len(o.Steps), out)
	}
	w.calls = nil
	_, out, err = fakeApply(context.Background(), st, w)
	if err != nil || len(w.calls) != 0 || !strings.HasPrefix(out, "No changes.") {
		t.Fatalf("second apply: err %v, calls %v, output %q", err, w.calls, out)
	}
}

func TestApplyStopsBetweenStepsWhenInterrupted(t *testing.T) {
	st := fakeState(t)
	w := newFakeWorld(st)
	ctx, cancel := context.WithCancel(context.Background())
	// The interrupt arrives in the middle of the first step: that step
	// must finish, and no other may start.
	w.during = func() {
		if len(w.calls) == 1 {
			cancel()
		}
	}
	o, out, err := fakeApply(ctx, st, w)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err %v, want ErrInterrupted\n%s", err, out)
	}
	if len(o.Steps) != 1 || o.Steps[0].Err != "" {
		t.Errorf("steps %+v, want the first one, complete", o.Steps)
	}
	if strings.Join(w.calls, ",") != "volume main-monitor-data,run main-monitor" {
		t.Errorf("the interrupted step did not finish, or another started: %v", w.calls)
	}
}

func TestApplyReportsBlocked(t *testing.T) {
	st := fakeState(t)
	w := newFakeWorld(st)
	w.obs.VMs[2] = observe.VM{Name: "vm3", Reached: false, Error: "ssh: handshake failed: host key mismatch"}
	_, out, err := fakeApply(context.Background(), st, w)
	var be *BlockedError
	if !errors.As(err, &be) || !strings.Contains(out, "vm3") || len(w.calls) != 0 {
		t.Fatalf("err %v, calls %v, output:\n%s", err, w.calls, out)
	}
}
