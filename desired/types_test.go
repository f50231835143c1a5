package desired

import (
	"slices"
	"testing"
)

// Only keeps one cluster and every VM, and names the others as siblings.
func TestOnly(t *testing.T) {
	st := &State{VMs: []VM{{Name: "vm1"}, {Name: "vm2"}}, Clusters: []Cluster{{Name: "a"}, {Name: "b"}, {Name: "c"}}, Commit: "c1"}
	sub := st.Only("b")
	if len(sub.Clusters) != 1 || sub.Clusters[0].Name != "b" || len(sub.VMs) != 2 || sub.Commit != "c1" || !slices.Equal(sub.Siblings, []string{"a", "c"}) {
		t.Errorf("Only(b) = %+v", sub)
	}
	// The sub-state's cluster slice cannot grow into the whole state's.
	sub.Clusters = append(sub.Clusters, Cluster{Name: "x"})
	if st.Clusters[2].Name != "c" {
		t.Errorf("appending to Only's clusters overwrote the state's: %+v", st.Clusters)
	}
	if st.Only("nope") != nil {
		t.Errorf("Only of an unknown cluster is not nil")
	}
}
