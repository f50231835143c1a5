package actuators

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
)

const twoClustersYAML = `
vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
  - {name: vm3, address: 10.0.0.13, ssh: {user: ops}}
clusters:
  - name: alpha
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm3, port: 6000}
    nodes:
      - {name: node1, vm: vm1, port: 6001}
      - {name: node2, vm: vm2, port: 6001}
  - name: beta
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm3, port: 7000}
    nodes:
      - {name: node1, vm: vm1, port: 7001}
      - {name: node2, vm: vm2, port: 7001}
`

// applyEach runs ApplyEach over one fake world per cluster.
func applyEach(t *testing.T, st *desired.State, worlds map[string]*fakeWorld) (*Outcome, string, error) {
	t.Helper()
	var out bytes.Buffer
	o, err := ApplyEach(context.Background(), st, func(sub *desired.State) *Executor {
		if len(sub.Clusters) != 1 || len(sub.VMs) != len(st.VMs) {
			t.Errorf("executor for %d clusters and %d VMs, want 1 and all %d", len(sub.Clusters), len(sub.VMs), len(st.VMs))
		}
		w := worlds[sub.Clusters[0].Name]
		return &Executor{State: sub, Docker: w, Observe: w.observe, PollInterval: time.Millisecond}
	}, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return o, out.String(), err
}

// One cluster's step fails and another's takes long: neither stops nor
// delays the other cluster, which converges.
func TestApplyEachKeepsClustersApart(t *testing.T) {
	st, err := desired.Parse(map[string][]byte{"clusters.yaml": []byte(twoClustersYAML)})
	if err != nil {
		t.Fatal(err)
	}
	worlds := map[string]*fakeWorld{}
	for _, name := range []string{"alpha", "beta"} {
		worlds[name] = newFakeWorld(st.Only(name))
	}
	// alpha's monitor container cannot be created, and only once beta has
	// created its last node: with one cluster after the other, this hangs.
	betaDone := make(chan struct{})
	worlds["beta"].during = func() {
		if worlds["beta"].calls[len(worlds["beta"].calls)-1] == "run beta-node2" {
			close(betaDone)
		}
	}
	worlds["alpha"].fail = errors.New("docker: port 6000 is already allocated")
	worlds["alpha"].during = func() {
		select {
		case <-betaDone:
		case <-time.After(10 * time.Second):
			t.Error("alpha's step waited 10 s for beta: the clusters were applied one after the other")
		}
	}
	o, out, err := applyEach(t, st, worlds)
	var ce *ClusterError
	if !errors.As(err, &ce) || ce.Cluster != "alpha" || !strings.Contains(err.Error(), "cluster alpha: step 1: ") ||
		!strings.Contains(err.Error(), "port 6000 is already allocated") {
		t.Errorf("err %v, want alpha's failed step alone", err)
	}
	if want := "volume beta-monitor-data,run beta-monitor,volume beta-node1-data,run beta-node1,volume beta-node2-data,run beta-node2"; strings.Join(worlds["beta"].calls, ",") != want {
		t.Errorf("beta's docker calls %v, want its whole bring-up", worlds["beta"].calls)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "alpha: ") && !strings.HasPrefix(line, "beta: ") {
			t.Errorf("output line without its cluster: %q", line)
		}
	}
	if !strings.Contains(out, "beta: Converged after 3 step(s).") {
		t.Errorf("output lacks beta's convergence:\n%s", out)
	}
	if !strings.HasPrefix(o.Stopped, "alpha: step 1 (") || strings.Contains(o.Stopped, "beta") {
		t.Errorf("stopped %q, want alpha's step alone", o.Stopped)
	}
	if len(o.Steps) != 4 || o.Steps[0].Action.Cluster != "alpha" || o.Steps[0].Err == "" {
		t.Errorf("steps %+v, want alpha's failed one then beta's three", o.Steps)
	}
	if len(o.Last.Clusters) != 2 || o.Last.Clusters[0].Name != "alpha" || o.Last.Clusters[1].Name != "beta" {
		t.Errorf("last plan's clusters %+v, want alpha and beta", o.Last.Clusters)
	}
	// Each cluster's plan saw the other's containers: not strays.
	for _, n := range o.Last.Notes {
		if strings.Contains(n, "not in the desired state") {
			t.Errorf("note about a sibling cluster: %s", n)
		}
	}

	// Fixed, the next apply brings alpha up and leaves beta alone.
	worlds["alpha"].fail, worlds["alpha"].during, worlds["beta"].during = nil, nil, nil
	worlds["alpha"].calls, worlds["beta"].calls = nil, nil
	if _, out, err := applyEach(t, st, worlds); err != nil || len(worlds["beta"].calls) != 0 || strings.Join(worlds["alpha"].calls, ",") != "run alpha-monitor,volume alpha-node1-data,run alpha-node1,volume alpha-node2-data,run alpha-node2" {
		t.Errorf("second apply: err %v, alpha calls %v, beta calls %v\n%s", err, worlds["alpha"].calls, worlds["beta"].calls, out)
	}
}
