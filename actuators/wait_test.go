package actuators

import (
	"context"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// waitWorld answers a wait for node2: the monitor reports node2 as
// settledAfter polls go by; the container view is fixed.
type waitWorld struct {
	started      time.Time // node2's container start
	report       time.Time // node2's report time once settled
	settledAfter int
	restarted    time.Time // when set, the container's start from the second full observation on
	polls, fulls int
}

func (w *waitWorld) node() observe.Node {
	n := observe.Node{Name: "node2", ReportedState: "catchingup", AssignedState: "secondary", Health: observe.HealthGood, PGIsRunning: true,
		ReportTime: w.report}
	if w.polls+w.fulls > w.settledAfter {
		n.ReportedState = "secondary"
	}
	return n
}

func (w *waitWorld) monitor(ctx context.Context, cluster string) observe.Monitor {
	w.polls++
	return observe.Monitor{Reached: true, Nodes: []observe.Node{w.node()}}
}

func (w *waitWorld) observe(ctx context.Context) *observe.Observation {
	w.fulls++
	if w.fulls > 1 && !w.restarted.IsZero() {
		w.started = w.restarted
	}
	return &observe.Observation{
		VMs:      []observe.VM{{Name: "vm2", Reached: true, Containers: []observe.Container{{Name: "main-node2", Cluster: "main", Node: "node2", State: "running", StartedAt: w.started}}}},
		Clusters: []observe.Cluster{{Name: "main", Monitor: observe.Monitor{Reached: true, Nodes: []observe.Node{w.node()}}}},
	}
}

func waitForNode2(t *testing.T, w *waitWorld, timeout time.Duration) (*Executor, error) {
	t.Helper()
	x := &Executor{State: fakeState(t), Observe: w.observe, ObserveMonitor: w.monitor}
	a := reconcile.Action{Kind: reconcile.Wait, Cluster: "main", Node: "node2",
		Until: &reconcile.Condition{Node: "node2", States: []string{"secondary"}, Timeout: reconcile.Duration(timeout)}}
	return x, x.Execute(context.Background(), a)
}

// A wait polls the monitor alone, confirms with one full observation, and
// hands that observation to the next plan.
func TestWaitPollsTheMonitorThenConfirms(t *testing.T) {
	now := time.Now()
	w := &waitWorld{started: now.Add(-time.Minute), report: now, settledAfter: 4}
	x, err := waitForNode2(t, w, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w.fulls != 2 || w.polls < 3 {
		t.Errorf("%d full observations and %d monitor polls; want 2 full (the first, the confirmation) and the rest monitor polls", w.fulls, w.polls)
	}
	first := x.observe(context.Background())
	if w.fulls != 2 || first == nil {
		t.Errorf("the next plan did not start from the confirming observation (%d full observations)", w.fulls)
	}
	x.observe(context.Background())
	if w.fulls != 3 {
		t.Errorf("the confirming observation was handed on twice (%d full observations)", w.fulls)
	}
}

// The monitor's view alone is not enough: a container that restarted
// during the wait (seen only in a full observation) makes the node's
// report stale, and the wait goes on.
func TestWaitDoesNotEndOnAStaleReport(t *testing.T) {
	now := time.Now()
	w := &waitWorld{started: now.Add(-time.Minute), report: now.Add(-30 * time.Second), settledAfter: 1, restarted: now}
	_, err := waitForNode2(t, w, 700*time.Millisecond)
	if _, ok := err.(*WaitTimeoutError); !ok {
		t.Fatalf("err %v, want a wait timeout: the report predates the container's restart", err)
	}
	if w.fulls < 2 || w.polls < 1 {
		t.Errorf("%d full observations, %d monitor polls: want the monitor polled, then its word checked against the containers", w.fulls, w.polls)
	}
}

// A wait starts from the observation its plan was made from (Apply hands
// it on): no second full observation before the first monitor poll.
func TestWaitStartsFromThePlansObservation(t *testing.T) {
	now := time.Now()
	w := &waitWorld{started: now.Add(-time.Minute), report: now, settledAfter: 3}
	x := &Executor{State: fakeState(t), Observe: w.observe, ObserveMonitor: w.monitor}
	x.latest = w.observe(context.Background())
	w.fulls = 0
	a := reconcile.Action{Kind: reconcile.Wait, Cluster: "main", Node: "node2",
		Until: &reconcile.Condition{Node: "node2", States: []string{"secondary"}, Timeout: reconcile.Duration(time.Minute)}}
	if err := x.Execute(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if w.fulls != 1 {
		t.Errorf("%d full observations; want 1 (the confirmation): the wait did not start from the plan's", w.fulls)
	}
}
