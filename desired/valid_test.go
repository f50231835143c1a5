package desired

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const twoVMs = `
vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
`

// minimalCluster is the smallest valid cluster on twoVMs.
const minimalCluster = `
clusters:
  - name: main
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm1, port: 6000}
    nodes:
      - {name: a, vm: vm1}
      - {name: b, vm: vm2}
`

func parseOne(t *testing.T, src string) *State {
	t.Helper()
	st, err := Parse(map[string][]byte{"test.yaml": []byte(src)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return st
}

func TestExampleLoads(t *testing.T) {
	st, err := Load("../examples/cluster.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(st.VMs) != 3 || len(st.Clusters) != 1 {
		t.Fatalf("got %d VMs and %d clusters, want 3 and 1", len(st.VMs), len(st.Clusters))
	}
	for i, want := range []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"} {
		vm := st.VMs[i]
		if vm.Address != want || vm.SSH.User != "ops" || vm.SSH.Port != 22 || vm.DockerNetwork != "host" {
			t.Errorf("vm %d = %+v, want address %s, user ops, port 22, network host", i, vm, want)
		}
	}
	c := st.Clusters[0]
	if c.Name != "main" || c.Image != "pgaf/postgres:15-2.0" || c.Monitor.VM != "vm3" || c.Monitor.Port != 5432 {
		t.Errorf("cluster = %s image %s monitor %+v", c.Name, c.Image, c.Monitor)
	}
	type placement struct {
		Name, VM string
		Port     int
	}
	var got []placement
	for _, n := range c.Nodes {
		got = append(got, placement{n.Name, n.VM, n.Port})
	}
	want := []placement{{"node1", "vm1", 5432}, {"node2", "vm2", 5432}, {"node3", "vm3", 5433}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

func TestValidCases(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, st *State)
	}{
		{"defaults_applied", twoVMs + minimalCluster, func(t *testing.T, st *State) {
			vm := st.VMs[0]
			if vm.SSH.Port != 22 || vm.DockerNetwork != "host" {
				t.Errorf("vm defaults: %+v", vm)
			}
			c := st.Clusters[0]
			if c.Formation != "default" || c.Database != "postgres" || c.User != "postgres" ||
				c.Auth != "trust" || c.SSL != "off" || c.RemovedNodeData != "keep" ||
				c.Diverged.Policy != "manual" || c.Diverged.GracePeriod.Duration != 5*time.Minute ||
				c.Monitor.Image != c.Image || c.NumberSyncStandbys != 0 {
				t.Errorf("cluster defaults: %+v", c)
			}
			if c.ClientNetworks == nil || c.MonitorSettings == nil || c.PostgreSQLParameters == nil {
				t.Errorf("lists and maps must be non-nil: %+v", c)
			}
			for _, n := range c.Nodes {
				if n.Port != 5432 || n.CandidatePriority != 50 || n.ReplicationQuorum == nil || !*n.ReplicationQuorum {
					t.Errorf("node defaults: %+v", n)
				}
			}
		}},
		{"zero_candidate_priority_is_kept", twoVMs + strings.Replace(minimalCluster,
			"{name: b, vm: vm2}", "{name: b, vm: vm2, candidate_priority: 0, replication_quorum: false}", 1),
			func(t *testing.T, st *State) {
				n := st.Clusters[0].Nodes[1]
				if n.CandidatePriority != 0 || *n.ReplicationQuorum {
					t.Errorf("node b = %+v, want priority 0 and quorum false", n)
				}
			}},
		{"null_values_take_defaults", twoVMs + strings.Replace(minimalCluster,
			"{name: a, vm: vm1}", "{name: a, vm: vm1, port: ~, candidate_priority: null, replication_quorum: ~}", 1) +
			"    ssl:\n    client_networks:\n",
			func(t *testing.T, st *State) {
				n := st.Clusters[0].Nodes[0]
				if n.Port != 5432 || n.CandidatePriority != 50 || !*n.ReplicationQuorum || st.Clusters[0].SSL != "off" {
					t.Errorf("node a = %+v", n)
				}
			}},
		{"sync_standbys_with_enough_quorum_nodes", `
vms:
  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}
  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}
  - {name: vm3, address: 10.0.0.13, ssh: {user: ops}}
clusters:
  - name: main
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm3}
    number_sync_standbys: 1
    nodes:
      - {name: a, vm: vm1}
      - {name: b, vm: vm2}
      - {name: c, vm: vm3, port: 5433}
`, func(t *testing.T, st *State) {
			if st.Clusters[0].NumberSyncStandbys != 1 {
				t.Errorf("number_sync_standbys = %d", st.Clusters[0].NumberSyncStandbys)
			}
		}},
		{"every_option", `
vms:
  - name: db1
    address: db1.example.com
    ssh: {user: postgres-ops, port: 2222, host_key_fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"}
    docker_network: "container:lab-db1"
  - {name: db2, address: "fd00::12", ssh: {user: ops}}
clusters:
  - name: billing
    formation: billing-f
    image: registry.example:5000/pgaf/postgres:15-2.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    database: billing
    user: app
    monitor: {vm: db1, port: 7000, image: "pgaf/postgres:15-2.1"}
    nodes:
      - {name: n1, vm: db1, port: 5432, candidate_priority: 100, replication_quorum: true, rebuild: 2024-05-01}
      - {name: n2, vm: db2, port: 5432, candidate_priority: 0, replication_quorum: true, rebuild: 7}
    number_sync_standbys: 0
    auth: scram-sha-256
    ssl: self-signed
    client_networks: [10.1.0.0/16, "fd00:1::/64"]
    monitor_settings: {health_check_period: 2000, enable_health_checks: "on", health_check_max_retries: "3"}
    postgresql_parameters: {wal_level: logical, max_connections: 300, log_lock_waits: on, pg_stat_statements.max: 10000, work_mem: 8MB}
    diverged_nodes: {policy: auto, grace_period: 10m}
    removed_node_data: delete
`, func(t *testing.T, st *State) {
			c := st.Clusters[0]
			want := map[string]string{"wal_level": "logical", "max_connections": "300", "log_lock_waits": "on", "pg_stat_statements.max": "10000", "work_mem": "8MB"}
			if diff := cmp.Diff(want, c.PostgreSQLParameters); diff != "" {
				t.Errorf("parameters (-want +got):\n%s", diff)
			}
			if c.MonitorSettings["health_check_period"] != "2000" || c.MonitorSettings["health_check_max_retries"] != "3" {
				t.Errorf("monitor settings = %v", c.MonitorSettings)
			}
			if c.Nodes[0].Rebuild != "2024-05-01" || c.Nodes[1].Rebuild != "7" {
				t.Errorf("rebuild tokens = %q, %q", c.Nodes[0].Rebuild, c.Nodes[1].Rebuild)
			}
			if c.Monitor.Image != "pgaf/postgres:15-2.1" || c.Diverged.GracePeriod.Duration != 10*time.Minute {
				t.Errorf("monitor image %q grace %v", c.Monitor.Image, c.Diverged.GracePeriod)
			}
			if st.VMs[0].SSH.Port != 2222 || st.VMs[0].DockerNetwork != "container:lab-db1" {
				t.Errorf("vm db1 = %+v", st.VMs[0])
			}
		}},
		{"two_clusters_share_vms_on_other_ports", twoVMs + minimalCluster + `
  - name: second
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm2, port: 6000}
    nodes:
      - {name: a, vm: vm1, port: 5433}
      - {name: b, vm: vm2, port: 5433}
`, func(t *testing.T, st *State) {
			if len(st.Clusters) != 2 {
				t.Errorf("got %d clusters", len(st.Clusters))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := parseOne(t, tt.src)
			tt.check(t, st)
			roundTrip(t, st)
		})
	}
}

// roundTrip renders st and parses it back; the result must be equal, and a
// second rendering byte-identical.
func roundTrip(t *testing.T, st *State) {
	t.Helper()
	var a, b bytes.Buffer
	if err := Render(&a, st); err != nil {
		t.Fatalf("Render: %v", err)
	}
	back, err := Parse(map[string][]byte{"rendered.yaml": a.Bytes()})
	if err != nil {
		t.Fatalf("Parse(Render(st)): %v\n%s", err, a.String())
	}
	if diff := cmp.Diff(st, back); diff != "" {
		t.Fatalf("round trip changed the state (-before +after):\n%s", diff)
	}
	if err := Render(&b, back); err != nil {
		t.Fatalf("Render: %v", err)
	}
	if a.String() != b.String() {
		t.Fatalf("Render is not deterministic:\n%s\n---\n%s", a.String(), b.String())
	}
}

func TestRenderRoundTripExample(t *testing.T) {
	st, err := Load("../examples/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, st)
}

func TestApplyDefaultsIsIdempotent(t *testing.T) {
	st := parseOne(t, twoVMs+minimalCluster)
	again := *st
	ApplyDefaults(&again)
	if diff := cmp.Diff(st, &again); diff != "" {
		t.Errorf("second ApplyDefaults changed the state:\n%s", diff)
	}
	var empty State
	ApplyDefaults(&empty)
	if empty.VMs == nil || empty.Clusters == nil {
		t.Errorf("ApplyDefaults left nil lists: %+v", empty)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirectory(t *testing.T) {
	t.Run("files_form_one_state", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"10-vms.yaml":      "vms:\n  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}\n",
			"20-more-vms.yml":  "vms:\n  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}\n",
			"30-clusters.yaml": minimalCluster,
			"40-empty.yaml":    "",
			"50-comments.yaml": "# nothing yet\n",
			".hidden.yaml":     "not: [valid",
			"README.md":        "not yaml",
			"sub/ignored.yaml": "not: [valid",
			"60-second.yaml": `clusters:
  - name: second
    image: pgaf/postgres:15-2.0
    monitor: {vm: vm3}
    nodes:
      - {name: a, vm: vm1, port: 5433}
      - {name: b, vm: vm2, port: 5433}
    nodes: []
`,
			"70-uppercase.YAML":  "",
			"80-another-vm.yaml": "vms:\n  - {name: vm3, address: 10.0.0.13, ssh: {user: ops}}\n",
		})
		_, err := Load(dir)
		// 60-second.yaml repeats the nodes key: the error names that file,
		// and nothing else is wrong (its VMs come from three other files).
		want := filepath.Join(dir, "60-second.yaml") + ":8:5: duplicate key \"nodes\" in cluster (first at line 5)"
		if err == nil || err.Error() != want {
			t.Fatalf("Load error = %v, want %s", err, want)
		}
	})
	t.Run("valid_directory", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"b-clusters.yaml": minimalCluster,
			"a-vm1.yaml":      "vms:\n  - {name: vm1, address: 10.0.0.11, ssh: {user: ops}}\n",
			"c-vm2.yml":       "vms:\n  - {name: vm2, address: 10.0.0.12, ssh: {user: ops}}\n",
			".hidden.yaml":    "not: [valid",
			"sub/x.yaml":      "not: [valid",
		})
		st, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.VMs) != 2 || st.VMs[0].Name != "vm1" || st.VMs[1].Name != "vm2" || len(st.Clusters) != 1 {
			t.Errorf("state = %+v", st)
		}
	})
	t.Run("error_in_second_file_and_across_files", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"1.yaml": twoVMs + minimalCluster,
			"2.yaml": "vms:\n  - {name: vm1, address: 10.0.0.99, ssh: {user: ops, port: x}}\n",
		})
		_, err := Load(dir)
		f1, f2 := filepath.Join(dir, "1.yaml"), filepath.Join(dir, "2.yaml")
		want := f2 + ":2:12: vm \"vm1\" is defined twice (first at " + f1 + ":3:12)\n" +
			f2 + ":2:60: port: expected an integer, got string \"x\""
		if err == nil || err.Error() != want {
			t.Fatalf("Load error =\n%v\nwant\n%s", err, want)
		}
	})
	t.Run("syntax_error_does_not_cascade", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"1-vms.yaml":      "vms:\n  - {name: vm1, address: 10.0.0.11\n",
			"2-clusters.yaml": minimalCluster,
		})
		_, err := Load(dir)
		want := filepath.Join(dir, "1-vms.yaml") + ":2:1: invalid YAML: did not find expected ',' or '}' (on this line or after it)"
		if err == nil || err.Error() != want {
			t.Fatalf("Load error =\n%v\nwant\n%s", err, want)
		}
	})
	t.Run("no_yaml_files", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"README.md": "x"})
		_, err := Load(dir)
		var errs Errors
		if !errors.As(err, &errs) || err.Error() != dir+": no .yaml or .yml files in this directory" {
			t.Fatalf("Load error = %v", err)
		}
	})
}

func TestLoadIOErrorIsNotErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	var errs Errors
	if err == nil || errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v; want a wrapped fs.ErrNotExist, not Errors", err)
	}
}

func TestErrorsAreSortedAndUnwrap(t *testing.T) {
	errs := Errors{
		{File: "b.yaml", Line: 1, Col: 1, Message: "third"},
		{File: "a.yaml", Line: 2, Col: 1, Message: "second"},
		{File: "a.yaml", Line: 1, Col: 5, Message: "first"},
		{File: "a.yaml", Message: "whole file"},
	}
	want := "a.yaml: whole file\na.yaml:1:5: first\na.yaml:2:1: second\nb.yaml:1:1: third"
	if got := errs.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	var one *Error
	if !errors.As(error(errs), &one) || one.Message != "third" {
		t.Errorf("errors.As(*Error) = %v", one)
	}
}

func TestTooLargeFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"big.yaml": "# " + strings.Repeat("x", MaxFileSize) + "\n"})
	_, err := Load(dir)
	want := filepath.Join(dir, "big.yaml") + ": file is larger than the limit of 4194304 bytes"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error = %v, want %s", err, want)
	}
}
