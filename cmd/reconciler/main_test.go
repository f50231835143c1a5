package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "../../examples/cluster.yaml")
	if code != 0 || !strings.Contains(out, "valid: 3 VM(s), 1 cluster(s), 3 node(s)") {
		t.Fatalf("exit %d, out %q", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("vms:\n  - name: vm1\n    adress: 10.0.0.1\n"), 0o644)
	code, _, errOut := runCLI(t, "validate", bad)
	if code != 1 || !strings.Contains(errOut, "\n"+bad+":3:5: unknown key \"adress\" in vm; did you mean \"address\"?\n") || !strings.HasPrefix(errOut, bad+":2:5: ") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, out, _ = runCLI(t, "validate", "--show-defaults", "../../examples/cluster.yaml")
	if code != 0 || !strings.Contains(out, "docker_network: host") {
		t.Fatalf("show-defaults: exit %d, out %q", code, out)
	}
}

func TestPlanDetailedExitcode(t *testing.T) {
	cases := []struct {
		fixture string
		want    int
	}{{"converged", 0}, {"empty_vms", 2}}
	for _, tc := range cases {
		dir := "../../reconcile/testdata/plans/" + tc.fixture
		code, out, errOut := runCLI(t, "plan", "--desired", dir+"/desired.yaml", "--observation", dir+"/observation.json", "--detailed-exitcode")
		if code != tc.want {
			t.Errorf("%s: exit %d, want %d; stderr %s", tc.fixture, code, tc.want, errOut)
		}
		if !strings.Contains(out, "cluster main") {
			t.Errorf("%s: output lacks the cluster: %s", tc.fixture, out)
		}
	}
	dir := "../../reconcile/testdata/plans/empty_vms"
	code, out, _ := runCLI(t, "plan", "--desired", dir+"/desired.yaml", "--observation", dir+"/observation.json", "--output", "json")
	var p struct {
		Version  int
		Clusters []struct{ Actions []struct{ Kind string } }
	}
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Version != 1 || p.Clusters[0].Actions[0].Kind != "create_monitor" {
		t.Fatalf("json plan: exit %d, %s", code, out)
	}
	code, out, _ = runCLI(t, "plan", "--desired", dir+"/desired.yaml", "--observation", dir+"/observation.json", "--output", "markdown")
	if code != 0 || !strings.Contains(out, "| 1 | create_monitor") {
		t.Fatalf("markdown plan: exit %d, %s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"plan", "--output", "yaml", "--observation", "x"}, {"validate"}, {"dsn", "--target-session-attrs", "bogus"}} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestDSN(t *testing.T) {
	code, out, errOut := runCLI(t, "dsn", "--desired", "../../examples/cluster.yaml")
	want := "postgresql://postgres@10.0.0.11:5432,10.0.0.12:5432,10.0.0.13:5433/postgres?connect_timeout=2&target_session_attrs=read-write&tcp_user_timeout=5000\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, out %q, want %q, stderr %s", code, out, want, errOut)
	}
	_, out, _ = runCLI(t, "dsn", "--desired", "../../examples/cluster.yaml", "--target-session-attrs", "any", "--connect-timeout", "10s", "--tcp-user-timeout", "1500ms")
	if !strings.HasSuffix(out, "?connect_timeout=10&target_session_attrs=any&tcp_user_timeout=1500\n") {
		t.Fatalf("options: %q", out)
	}
	_, out, _ = runCLI(t, "dsn", "--desired", "../../examples/cluster.yaml", "--connect-timeout", "0", "--tcp-user-timeout", "0")
	if !strings.HasSuffix(out, "/postgres?target_session_attrs=read-write\n") {
		t.Fatalf("timeouts left out: %q", out)
	}
	for _, bad := range [][]string{{"--connect-timeout", "1s"}, {"--connect-timeout", "2500ms"}, {"--tcp-user-timeout", "-1s"}} {
		code, _, errOut := runCLI(t, append([]string{"dsn", "--desired", "../../examples/cluster.yaml"}, bad...)...)
		if code != 1 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errOut)
		}
	}
}

func TestExplainVerb(t *testing.T) {
	dir := "../../reconcile/testdata/plans/diverged_auto"
	in := []string{"--desired", dir + "/desired.yaml", "--observation", dir + "/observation.json"}
	code, out, errOut := runCLI(t, append([]string{"explain", "node1"}, in...)...)
	if code != 0 || !strings.Contains(out, "remove_volume main-node1-data on vm1") || !strings.Contains(out, "passed  newest_data") ||
		!strings.Contains(out, "evidence: log: FATAL:  requested timeline 2 is not a child of this server's history") {
		t.Fatalf("exit %d, stderr %s, out:\n%s", code, errOut, out)
	}
	var e struct {
		Node   string
		Guards []struct{ Guard string }
	}
	// NODE between options.
	code, out, _ = runCLI(t, append(append([]string{"explain", "--cluster", "main"}, in...), "node2", "--output", "json")...)
	if code != 0 || json.Unmarshal([]byte(out), &e) != nil || e.Node != "node2" || len(e.Guards) == 0 {
		t.Fatalf("json: exit %d, %s", code, out)
	}
	code, _, errOut = runCLI(t, append([]string{"explain", "node9"}, in...)...)
	if code != 1 || !strings.Contains(errOut, `no node "node9" in any cluster; the clusters and their nodes: main (node1, node2, node3)`) {
		t.Fatalf("unknown node: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"explain"}, {"explain", "node1", "node2"}, {"explain", "node1", "--output", "yaml"}} {
		code, _, errOut := runCLI(t, args...)
		if code != 1 || !strings.Contains(errOut, "usage") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}
