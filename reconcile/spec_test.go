package reconcile

import (
	"testing"

	"github.com/pgaf-gitops/reconciler/observe"
)

func TestSpecHash(t *testing.T) {
	st := refState()
	c := &st.Clusters[0]
	base := NodeSpec(st, c, &c.Nodes[0])
	if base.Hash() != base.Labels[observe.LabelSpecHash] {
		t.Fatal("NodeSpec's hash label is not its Hash")
	}
	if base.Hash() != NodeSpec(st, c, &c.Nodes[0]).Hash() {
		t.Fatal("hash is not stable")
	}
	changes := map[string]func(s *ContainerSpec){
		"image":        func(s *ContainerSpec) { s.Image = "pgaf/postgres:15-2.0-b" },
		"env":          func(s *ContainerSpec) { s.Env["PGAF_X"] = "1" },
		"command":      func(s *ContainerSpec) { s.Command = append(s.Command, "--x") },
		"command_join": func(s *ContainerSpec) { s.Command = append(s.Command[:len(s.Command)-1], "--r", "un") },
		"label":        func(s *ContainerSpec) { s.Labels["x"] = "y" },
	}
	for name, change := range changes {
		s := NodeSpec(st, c, &c.Nodes[0])
		change(&s)
		if s.Hash() == base.Hash() {
			t.Errorf("%s: changed spec, same hash", name)
		}
	}
	s := NodeSpec(st, c, &c.Nodes[0])
	s.Labels[observe.LabelRebuild] = "token"
	if s.Hash() != base.Hash() {
		t.Error("the rebuild token changes the hash; it must not (the wipe re-creates the container)")
	}
	c.Nodes[0].CandidatePriority = 10
	if NodeSpec(st, c, &c.Nodes[0]).Hash() != base.Hash() {
		t.Error("candidate priority changes the container spec; it is set through the monitor")
	}
}
