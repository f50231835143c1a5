package observe

import (
	"strings"
	"testing"
	"time"

	"github.com/pgaf-gitops/reconciler/desired"
)

func TestParseLSN(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0/0", 0, true},
		{"0/3000148", 0x3000148, true},
		{"1/0", 1 << 32, true},
		{"A/FF", 0xA<<32 | 0xFF, true},
		{"FFFFFFFF/FFFFFFFF", 1<<64 - 1, true},
		{"", 0, false},
		{"0", 0, false},
		{"0/", 0, false},
		{"/1", 0, false},
		{"G/1", 0, false},
		{"100000000/0", 0, false},
	}
	for _, c := range cases {
		got, ok := ParseLSN(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseLSN(%q) = %#x, %v; want %#x, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Merge takes each cluster and VM the state names from the newer
// observation when it has it, else from the older; nothing else.
func TestMerge(t *testing.T) {
	st := &desired.State{VMs: []desired.VM{{Name: "vm1"}, {Name: "vm2"}}, Clusters: []desired.Cluster{{Name: "a"}, {Name: "b"}}}
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	older := &Observation{Time: t0, VMs: []VM{{Name: "vm1", Error: "old"}, {Name: "vm2", Error: "old"}, {Name: "gone"}},
		Clusters: []Cluster{{Name: "a", Monitor: Monitor{Error: "old"}}, {Name: "b", Monitor: Monitor{Error: "old"}}, {Name: "gone"}}}
	newer := &Observation{Time: t0.Add(time.Second), VMs: []VM{{Name: "vm2", Error: "new"}},
		Clusters: []Cluster{{Name: "b", Monitor: Monitor{Error: "new"}}}}
	m := Merge(st, older, newer)
	var got []string
	for _, vm := range m.VMs {
		got = append(got, vm.Name+"="+vm.Error)
	}
	for _, c := range m.Clusters {
		got = append(got, c.Name+"="+c.Monitor.Error)
	}
	if want := "vm1=old vm2=new a=old b=new"; strings.Join(got, " ") != want || !m.Time.Equal(newer.Time) {
		t.Errorf("merged %v at %v, want %s at the newer time", got, m.Time, want)
	}
	if first := Merge(st, nil, newer); len(first.Clusters) != 1 || len(first.VMs) != 1 {
		t.Errorf("merge onto nothing: %+v", first)
	}
}
