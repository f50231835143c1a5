package observe

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tarOf is what the engine's archive API answers for one file.
func tarOf(t *testing.T, name string, body []byte) string {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// keeperState lays out a pg_autoctl.state the way pg_auto_failover 2.0
// writes it on amd64 (1024 bytes, KeeperStateData first).
func keeperState(nodeID int32, assigned, current uint32) []byte {
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint32(b[0:], 1)   // state version
	binary.LittleEndian.PutUint32(b[4:], 150) // pg_version
	binary.LittleEndian.PutUint64(b[16:], 7447000000000000000)
	binary.LittleEndian.PutUint32(b[stateNodeID:], uint32(nodeID))
	binary.LittleEndian.PutUint32(b[28:], 0) // group
	binary.LittleEndian.PutUint32(b[stateAssigned:], assigned)
	binary.LittleEndian.PutUint64(b[40:], 12)
	binary.LittleEndian.PutUint64(b[48:], 1764800000)
	binary.LittleEndian.PutUint32(b[stateCurrent:], current)
	return b
}

func TestKeeperReadsConfigAndState(t *testing.T) {
	env := []string{"PGDATA=/var/lib/postgres/pgaf", "XDG_CONFIG_HOME=/var/lib/postgres/config", "XDG_DATA_HOME=/var/lib/postgres/share"}
	cfgPath := "/containers/c1/archive"
	cfg := "[pg_autoctl]\nrole = keeper\nmonitor = postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?sslmode=prefer\nformation = default\n\n[postgresql]\npgdata = /var/lib/postgres/pgaf\nmonitor = not-this-one\n"
	tests := []struct {
		name  string
		files map[string][]byte // by requested path
		want  *Keeper
	}{
		{"secondary following a monitor", map[string][]byte{
			"/var/lib/postgres/config/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.cfg":  []byte(cfg),
			"/var/lib/postgres/share/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.state": keeperState(2, 9, 9),
		}, &Keeper{Monitor: "postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?sslmode=prefer", NodeID: 2, CurrentRole: "secondary", AssignedRole: "secondary"}},
		{"primary with its monitor disabled, mid-transition", map[string][]byte{
			"/var/lib/postgres/config/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.cfg":  []byte("[pg_autoctl]\nmonitor = PG_AUTOCTL_DISABLED\n"),
			"/var/lib/postgres/share/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.state": keeperState(1, 6, 3),
		}, &Keeper{Monitor: KeeperMonitorDisabled, NodeID: 1, CurrentRole: "primary", AssignedRole: "demoted"}},
		{"moved to the monitor of a token", map[string][]byte{
			"/var/lib/postgres/config/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.cfg":  []byte(cfg),
			"/var/lib/postgres/share/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.state": keeperState(3, 9, 9),
			"/var/lib/postgres/config/pgaf-monitor-recreate":                            []byte("lost 2026-12-04\n"),
		}, &Keeper{Monitor: "postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?sslmode=prefer", NodeID: 3, CurrentRole: "secondary", AssignedRole: "secondary", Recreate: "lost 2026-12-04"}},
		{"no config yet: nothing to say", map[string][]byte{}, nil},
		{"a state file that is not one", map[string][]byte{
			"/var/lib/postgres/config/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.cfg":  []byte(cfg),
			"/var/lib/postgres/share/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.state": []byte("short"),
		}, &Keeper{Monitor: "postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?sslmode=prefer",
			Error: "/var/lib/postgres/share/pg_autoctl/var/lib/postgres/pgaf/pg_autoctl.state: 5 bytes, too short for a keeper state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVMs(t)
			f.engine("vm1", archive(t, cfgPath, tt.files))
			e := newEngine(f, "vm1")
			defer e.close()
			got := e.keeper(t.Context(), "c1", env)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("keeper (-want +got):\n%s", d)
			}
		})
	}
}

// archive serves the files as the engine's archive API does: a tar of
// the file the path parameter names, 404 for another.
func archive(t *testing.T, path string, files map[string][]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Query().Get("path")]
		if r.URL.Path != path || !ok {
			http.Error(w, `{"message":"Could not find the file in container c1"}`, http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, tarOf(t, "pg_autoctl.x", body))
	})
}

// Keepers are read only for the nodes the monitor does not list, or all
// of a cluster whose monitor was not reached.
func TestReadKeepersOnlyWhereTheMonitorDoesNotKnow(t *testing.T) {
	env := `"Env":["PGDATA=/d","XDG_CONFIG_HOME=/c","XDG_DATA_HOME=/s"]`
	files := map[string]string{
		"/c/pg_autoctl/d/pg_autoctl.cfg": "[pg_autoctl]\nmonitor = PG_AUTOCTL_DISABLED\n",
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/json"):
			_, _ = io.WriteString(w, `{"Id":"x","Config":{`+env+`}}`)
		case strings.HasSuffix(r.URL.Path, "/archive"):
			if body, ok := files[r.URL.Query().Get("path")]; ok {
				_, _ = io.WriteString(w, tarOf(t, "f", []byte(body)))
				return
			}
			http.Error(w, `{"message":"Could not find the file"}`, http.StatusNotFound)
		default:
			http.Error(w, `{"message":"no"}`, http.StatusNotFound)
		}
	})
	f := newFakeVMs(t)
	f.engine("vm1", h)
	obs := &Observation{
		VMs: []VM{{Name: "vm1", Reached: true, Containers: []Container{
			{Name: "a-node1", ID: "a1", Cluster: "a", Node: "node1", Role: RoleNode},
			{Name: "a-node2", ID: "a2", Cluster: "a", Node: "node2", Role: RoleNode},
			{Name: "a-monitor", ID: "am", Cluster: "a", Node: "monitor", Role: RoleMonitor},
			{Name: "b-node1", ID: "b1", Cluster: "b", Node: "node1", Role: RoleNode},
		}}},
		Clusters: []Cluster{
			{Name: "a", Monitor: Monitor{Reached: true, Nodes: []Node{{Name: "node1"}}}},
			{Name: "b", Monitor: Monitor{Reached: false}},
		},
	}
	readKeepers(t.Context(), f, obs, 5*time.Second)
	got := map[string]*Keeper{}
	for _, ct := range obs.VMs[0].Containers {
		got[ct.Name] = ct.Keeper
	}
	disabled := &Keeper{Monitor: KeeperMonitorDisabled}
	want := map[string]*Keeper{"a-node1": nil, "a-node2": disabled, "a-monitor": nil, "b-node1": disabled}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("keepers (-want +got):\n%s", d)
	}
	for _, r := range f.requested() {
		if strings.Contains(r, "/a1/") || strings.Contains(r, "/am/") {
			t.Errorf("asked about a container the monitor knows: %s", r)
		}
	}
}
