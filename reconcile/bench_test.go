package reconcile

import (
	"fmt"
	"testing"
)

// BenchmarkPlanFleet plans a fleet of 1,000 converged clusters of 3 nodes
// (the target: under 50 ms and 50 MB allocated per plan), and the same
// fleet from empty VMs, where every cluster gets its full bring-up.
func BenchmarkPlanFleet(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("c%04d", i)
	}
	st := refState(names...)
	for _, tc := range []struct {
		name string
		obs  func() any
	}{{"converged", nil}, {"empty", nil}} {
		obs := converged(st)
		if tc.name == "empty" {
			obs = emptyObs(st)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := Plan(st, obs)
				if len(p.Clusters) != 1000 {
					b.Fatalf("%d cluster plans", len(p.Clusters))
				}
			}
		})
	}
}
