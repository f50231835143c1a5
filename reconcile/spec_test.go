package reconcile

import (
	"net/url"
	"slices"
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

// A keeper must not block on a dead monitor connection: every node is
// created with a monitor URI that bounds it (keep-alive probes and a TCP
// user timeout), whatever the cluster's SSL choice.
func TestMonitorURIBoundsADeadConnection(t *testing.T) {
	st := refState()
	for _, ssl := range []string{"off", "self-signed"} {
		c := &st.Clusters[0]
		c.SSL = ssl
		s := NodeSpec(st, c, &c.Nodes[0])
		i := slices.Index(s.Command, "--monitor")
		if i < 0 || i+1 >= len(s.Command) {
			t.Fatalf("ssl %s: node command has no --monitor: %q", ssl, s.Command)
		}
		u, err := url.Parse(s.Command[i+1])
		if err != nil {
			t.Fatalf("ssl %s: %v", ssl, err)
		}
		q := u.Query()
		want := map[string]string{"keepalives_idle": "1", "keepalives_interval": "1", "tcp_user_timeout": "1000", "sslmode": c.SSLMode()}
		for k, v := range want {
			if got := q.Get(k); got != v {
				t.Errorf("ssl %s: monitor URI %s: %s = %q, want %q", ssl, u, k, got, v)
			}
		}
	}
}
