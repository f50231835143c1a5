//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/actuators"
	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// BenchmarkObserveLab times one observation of the three-VM lab (every VM
// over SSH, the monitor over SQL, in parallel) with warm SSH connections:
//
//	go test -tags e2e -run XXX -bench ObserveLab -benchtime 20x ./e2e/
func BenchmarkObserveLab(b *testing.B) {
	l, err := LoadLab()
	if err != nil {
		b.Fatal(err)
	}
	st, err := desired.Load(l.Desired)
	if err != nil {
		b.Fatal(err)
	}
	ex, err := actuators.NewSSHExecutor(actuators.SSHConfig{KeyFiles: []string{l.SSHKey}, KnownHostsFiles: []string{l.KnownHosts}}, actuators.HostsFromDesired(st))
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	ctx := context.Background()
	opts := observe.Options{Timeout: 10 * time.Second}
	warm := observe.Observe(ctx, st, ex, opts) // dial every VM once
	for _, vm := range warm.VMs {
		if !vm.Reached {
			b.Fatalf("%s not reached: %s", vm.Name, vm.Error)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		obs := observe.Observe(ctx, st, ex, opts)
		if !obs.VMs[0].Reached {
			b.Fatal(obs.VMs[0].Error)
		}
	}
	b.StopTimer()
	if d := ex.Dials(); d != int64(len(st.VMs)) {
		b.Errorf("%d SSH dials for %d VMs: connections were not reused", d, len(st.VMs))
	}
}
