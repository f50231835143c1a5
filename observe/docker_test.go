package observe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeVMs is a Dialer whose VMs each have a fake Docker engine: an HTTP
// handler served on a Unix socket of the test. A VM can instead fail to
// dial, or wait before it connects. TCP connections (a node's PostgreSQL)
// are refused, as by a VM where nothing listens.
type fakeVMs struct {
	t     *testing.T
	mu    sync.Mutex
	socks map[string]string // VM -> socket path
	err   map[string]error
	delay map[string]time.Duration
	// requests records "VM GET /path?query" in arrival order.
	requests []string
	tcp      []string // "VM addr" of every TCP dial
	panic    bool
}

func newFakeVMs(t *testing.T) *fakeVMs {
	return &fakeVMs{t: t, socks: map[string]string{}, err: map[string]error{}, delay: map[string]time.Duration{}}
}

// engine serves h as vm's Docker engine.
func (f *fakeVMs) engine(vm string, h http.Handler) {
	f.t.Helper()
	sock := filepath.Join(f.t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		f.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, vm+" "+r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	f.t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			f.t.Errorf("close fake engine of %s: %v", vm, err)
		}
	})
	f.mu.Lock()
	f.socks[vm] = sock
	f.mu.Unlock()
}

func (f *fakeVMs) Dial(ctx context.Context, vm, network, addr string) (net.Conn, error) {
	if f.panic {
		panic("dialer bug")
	}
	f.mu.Lock()
	sock, err, d := f.socks[vm], f.err[vm], f.delay[vm]
	if network == "tcp" {
		f.tcp = append(f.tcp, vm+" "+addr)
	}
	f.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s: %w", vm, ctx.Err())
		}
	}
	if err != nil {
		return nil, err
	}
	switch {
	case network == "unix" && addr == DockerSocket && sock != "":
		var nd net.Dialer
		return nd.DialContext(ctx, "unix", sock)
	case network == "tcp":
		return nil, fmt.Errorf("ssh %s: forward: tcp %s: connect failed (Connection refused)", vm, addr)
	}
	return nil, fmt.Errorf("ssh %s: forward: %s %s: no such socket", vm, network, addr)
}

func (f *fakeVMs) requested() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// replay serves the engine answers capture.sh recorded in
// testdata/engine/NAME: the request's path names the file.
func replay(t *testing.T, name string) http.Handler {
	dir := filepath.Join("testdata", "engine", name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.Error(w, `{"message":"no such object"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
}

// answers serves fixed bodies by path; a path it does not know is a 404.
type answers map[string]struct {
	status int
	body   string
}

func (a answers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ans, ok := a[r.URL.Path]
	if !ok {
		http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
		return
	}
	if ans.status != 0 {
		w.WriteHeader(ans.status)
	}
	_, _ = io.WriteString(w, ans.body)
}

func ok(body string) struct {
	status int
	body   string
} {
	return struct {
		status int
		body   string
	}{0, body}
}

func status(code int, body string) struct {
	status int
	body   string
} {
	return struct {
		status int
		body   string
	}{code, body}
}

// emptyEngine answers a VM with nothing of ours on it.
var emptyEngine = answers{"/containers/json": ok(`[]`), "/volumes": ok(`{"Volumes":[],"Warnings":null}`)}

// The fixture is what this machine's engine answered (capture.sh): a
// running node container whose log has fatal lines (six timeline errors
// and a pg_rewind failure: the last five are kept), a never-started
// monitor container, their two volumes. Another VM's objects were present
// and the engine left them out: the filter must be asked for.
func TestObserveVMReadsRealEngineAnswers(t *testing.T) {
	f := newFakeVMs(t)
	f.engine("vmcap", replay(t, "vmcap"))
	got := ObserveVM(t.Context(), f, "vmcap")

	started, err := time.Parse(time.RFC3339Nano, "2026-12-01T23:18:05.457447294Z")
	if err != nil {
		t.Fatal(err)
	}
	common := map[string]string{LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", "pgaf.image.tag": "15-2.0"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	want := VM{
		Name:    "vmcap",
		Reached: true,
		Containers: []Container{
			{
				Name: "pgaf-cap-monitor", ID: "654fb74f5c63080cf62214f1eb60fef4597d8ad34c093483bdcab062fd5a4aff",
				Cluster: "pgaf-cap", Node: "monitor", Role: RoleMonitor,
				Image: "pgaf/postgres:15-2.0", State: "created", SpecHash: "fedcba9876543210",
				Labels:  with(LabelNode, "monitor", LabelRole, RoleMonitor, LabelSpecHash, "fedcba9876543210"),
				Command: []string{"pg_autoctl", "--help"},
			},
			{
				Name: "pgaf-cap-node1", ID: "044190365b0c63b221fcaf713fc052394b125dec96cbc09d78d91543ff9f56b8",
				Cluster: "pgaf-cap", Node: "node1", Role: RoleNode,
				Image: "pgaf/postgres:15-2.0", State: "running", StartedAt: started,
				SpecHash: "0123456789abcdef", Rebuild: "tok1",
				Labels: with(LabelNode, "node1", LabelRole, RoleNode, LabelSpecHash, "0123456789abcdef", LabelRebuild, "tok1"),
				LogEvidence: []string{
					"FATAL:  requested timeline 3 is not a child of this server's history",
					"FATAL:  requested timeline 4 is not a child of this server's history",
					"FATAL:  requested timeline 5 is not a child of this server's history",
					"FATAL:  requested timeline 6 is not a child of this server's history",
					"pg_autoctl: pg_rewind failed, trying pg_basebackup",
				},
				// Its command says --pgport 6543; nothing listens there.
				Postgres: &Postgres{Error: "postgres on vmcap port 6543: failed to connect to `user=postgres database=postgres`: 127.0.0.1:6543 (127.0.0.1): dial error: ssh vmcap: forward: tcp 127.0.0.1:6543: connect failed (Connection refused)"},
			},
		},
		Volumes: []Volume{
			{Name: "pgaf-cap-monitor-data", Cluster: "pgaf-cap", Node: "monitor", SizeBytes: -1,
				Labels: map[string]string{LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "monitor"}},
			{Name: "pgaf-cap-node1-data", Cluster: "pgaf-cap", Node: "node1", Rebuild: "tok1", SizeBytes: -1,
				Labels: map[string]string{LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "node1", LabelRebuild: "tok1"}},
		},
	}
	// The node's command is the capture's shell script, then its port.
	if n := len(got.Containers); n == 2 {
		cmd := got.Containers[1].Command
		if len(cmd) < 4 || cmd[0] != "-c" || !slices.Equal(cmd[len(cmd)-3:], []string{"sh", "--pgport", "6543"}) {
			t.Errorf("node command %q", cmd)
		}
		want.Containers[1].Command = cmd
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ObserveVM (-want +got):\n%s", d)
	}

	// What was asked: the VM's containers (all, not only running ones)
	// and volumes by label, each container's inspect, the node's log
	// tail (not the monitor's), and the node's server on its port.
	filter := `filters=%7B%22label%22%3A%5B%22pgaf.vm%3Dvmcap%22%5D%7D`
	wantReqs := []string{
		"vmcap GET /containers/044190365b0c63b221fcaf713fc052394b125dec96cbc09d78d91543ff9f56b8/json",
		"vmcap GET /containers/044190365b0c63b221fcaf713fc052394b125dec96cbc09d78d91543ff9f56b8/logs?stderr=1&stdout=1&tail=200",
		"vmcap GET /containers/654fb74f5c63080cf62214f1eb60fef4597d8ad34c093483bdcab062fd5a4aff/json",
		"vmcap GET /containers/json?all=1&" + filter,
		"vmcap GET /volumes?" + filter,
	}
	reqs := f.requested()
	slices.Sort(reqs)
	if d := cmp.Diff(wantReqs, reqs); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"vmcap 127.0.0.1:6543"}, f.tcp); d != "" {
		t.Errorf("TCP dials (-want +got):\n%s", d)
	}
}

func TestObserveVMEmpty(t *testing.T) {
	f := newFakeVMs(t)
	f.engine("vm1", emptyEngine)
	got := ObserveVM(t.Context(), f, "vm1")
	want := VM{Name: "vm1", Reached: true, Containers: []Container{}, Volumes: []Volume{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ObserveVM (-want +got):\n%s", d)
	}
}

func TestObserveVMFailures(t *testing.T) {
	list := `[{"Id":"c1"}]`
	vols := `{"Volumes":[]}`
	tests := []struct {
		name    string
		engine  answers
		dialErr error
		wantErr string
	}{
		{"ssh_unreachable", nil, errors.New("ssh vm1 (10.0.0.1:22): dial: connection refused"), "connection refused"},
		{"forwarding_refused", nil, errors.New("ssh vm1 (10.0.0.1:22): forward: unix /var/run/docker.sock: ssh: rejected: administratively prohibited"), "administratively prohibited"},
		{"list_failed", answers{"/containers/json": status(500, `{"message":"engine is shutting down"}`), "/volumes": ok(vols)},
			nil, "GET /containers/json: 500 Internal Server Error: engine is shutting down"},
		{"volumes_failed", answers{"/containers/json": ok(`[]`), "/volumes": status(500, `plain text`)}, nil, "GET /volumes: 500 Internal Server Error: plain text"},
		{"garbage_list", answers{"/containers/json": ok(`[{"Id": `), "/volumes": ok(vols)}, nil, "GET /containers/json: unexpected end of JSON input"},
		{"garbage_volumes", answers{"/containers/json": ok(`[]`), "/volumes": ok(`{"Volumes": 3}`)}, nil, "GET /volumes: json"},
		{"inspect_failed", answers{"/containers/json": ok(list), "/volumes": ok(vols), "/containers/c1/json": status(500, `{"message":"boom"}`)},
			nil, "GET /containers/c1/json: 500 Internal Server Error: boom"},
		{"garbage_inspect", answers{"/containers/json": ok(list), "/volumes": ok(vols), "/containers/c1/json": ok(`{"Name": 7}`)},
			nil, "GET /containers/c1/json: json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVMs(t)
			if tt.engine != nil {
				f.engine("vm1", tt.engine)
			}
			f.err["vm1"] = tt.dialErr
			got := ObserveVM(t.Context(), f, "vm1")
			if got.Reached {
				t.Errorf("Reached = true, want false")
			}
			if !strings.Contains(got.Error, tt.wantErr) || !strings.HasPrefix(got.Error, "observe vm1: ") {
				t.Errorf("Error = %q, want it to name vm1 and contain %q", got.Error, tt.wantErr)
			}
			if len(got.Containers) != 0 || len(got.Volumes) != 0 {
				t.Errorf("an unreached VM has objects: %+v", got)
			}
			if tt.dialErr != nil {
				if want := "observe vm1: " + tt.dialErr.Error(); got.Error != want {
					t.Errorf("Error = %q, want the dialer's error once: %q", got.Error, want)
				}
				if reqs := f.requested(); len(reqs) != 0 {
					t.Errorf("requests reached an engine that cannot be dialled: %v", reqs)
				}
			}
		})
	}
}

func TestObserveVMTolerates(t *testing.T) {
	tests := []struct {
		name   string
		engine answers
		check  func(t *testing.T, vm VM)
	}{
		// A container removed between the list and its inspect is left out.
		{"vanished_container", answers{
			"/containers/json":    ok(`[{"Id":"gone"},{"Id":"c1"}]`),
			"/volumes":            ok(`{"Volumes":null}`),
			"/containers/c1/json": ok(`{"Id":"c1","Name":"/c1","State":{"Status":"exited","StartedAt":"0001-01-01T00:00:00Z"},"Config":{"Image":"img","Labels":{"pgaf.role":"node","maintainer":"x"}}}`),
			"/containers/c1/logs": status(501, `{"message":"configured logging driver does not support reading"}`),
		}, func(t *testing.T, vm VM) {
			if len(vm.Containers) != 1 || vm.Containers[0].Name != "c1" {
				t.Fatalf("got %+v", vm)
			}
			c := vm.Containers[0]
			if !c.StartedAt.IsZero() {
				t.Errorf("StartedAt of a never-started container = %v, want zero", c.StartedAt)
			}
			if _, ok := c.Labels["maintainer"]; ok {
				t.Errorf("an image label was kept: %v", c.Labels)
			}
			if c.LogEvidence != nil || c.Postgres != nil {
				t.Errorf("an unreadable log or a stopped node gave evidence %q and server %+v", c.LogEvidence, c.Postgres)
			}
		}},
		// A stopped container says when it stopped; a running one has no
		// FinishedAt (Docker keeps the previous stop's there).
		{"finished_at_of_a_stopped_container", answers{
			"/containers/json":    ok(`[{"Id":"c1"},{"Id":"c2"}]`),
			"/volumes":            ok(`{"Volumes":null}`),
			"/containers/c1/json": ok(`{"Id":"c1","Name":"/c1","State":{"Status":"exited","StartedAt":"2026-12-03T07:00:00.5Z","FinishedAt":"2026-12-03T07:10:00.25Z"},"Config":{"Image":"img","Labels":{"pgaf.role":"monitor"}}}`),
			"/containers/c2/json": ok(`{"Id":"c2","Name":"/c2","State":{"Status":"running","StartedAt":"2026-12-03T07:11:00Z","FinishedAt":"2026-12-03T07:10:00Z"},"Config":{"Image":"img","Labels":{"pgaf.role":"monitor"}}}`),
		}, func(t *testing.T, vm VM) {
			if len(vm.Containers) != 2 {
				t.Fatalf("got %+v", vm)
			}
			if got, want := vm.Containers[0].FinishedAt, time.Date(2026, 12, 3, 7, 10, 0, 250e6, time.UTC); !got.Equal(want) {
				t.Errorf("FinishedAt of the exited container = %v, want %v", got, want)
			}
			if got := vm.Containers[1].FinishedAt; !got.IsZero() {
				t.Errorf("FinishedAt of a running container = %v, want zero", got)
			}
		}},
		{"sorted_by_name_with_size", answers{
			"/containers/json":   ok(`[{"Id":"2"},{"Id":"1"}]`),
			"/containers/1/json": ok(`{"Id":"1","Name":"/a","Config":{}}`),
			"/containers/2/json": ok(`{"Id":"2","Name":"/b","Config":{}}`),
			"/volumes":           ok(`{"Volumes":[{"Name":"z","Labels":null},{"Name":"y","Labels":{"pgaf.vm":"vm1"},"UsageData":{"Size":1234,"RefCount":1}}]}`),
		}, func(t *testing.T, vm VM) {
			if vm.Containers[0].Name != "a" || vm.Containers[1].Name != "b" || vm.Volumes[0].Name != "y" || vm.Volumes[1].Name != "z" {
				t.Errorf("not sorted: %+v", vm)
			}
			if vm.Volumes[0].SizeBytes != 1234 || vm.Volumes[1].SizeBytes != -1 {
				t.Errorf("sizes %d and %d, want 1234 and -1 (unknown)", vm.Volumes[0].SizeBytes, vm.Volumes[1].SizeBytes)
			}
		}},
		// A TTY container's log is not multiplexed.
		{"tty_log", answers{
			"/containers/json":    ok(`[{"Id":"t"}]`),
			"/volumes":            ok(`{"Volumes":[]}`),
			"/containers/t/json":  ok(`{"Id":"t","Name":"/t","State":{"Status":"exited"},"Config":{"Tty":true,"Labels":{"pgaf.role":"node"}}}`),
			"/containers/t/logs":  ok("INFO fine\r\nFATAL:  database system identifier differs between the primary and standby\r\n"),
			"/containers/t/other": ok(""),
		}, func(t *testing.T, vm VM) {
			want := []string{"FATAL:  database system identifier differs between the primary and standby"}
			if d := cmp.Diff(want, vm.Containers[0].LogEvidence); d != "" {
				t.Errorf("evidence (-want +got):\n%s", d)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVMs(t)
			f.engine("vm1", tt.engine)
			vm := ObserveVM(t.Context(), f, "vm1")
			if vm.Error != "" || !vm.Reached {
				t.Fatalf("Reached %v, Error = %q", vm.Reached, vm.Error)
			}
			tt.check(t, vm)
		})
	}
}

func TestObserveVMRecoversFromDialerPanic(t *testing.T) {
	f := newFakeVMs(t)
	f.panic = true
	got := ObserveVM(t.Context(), f, "vm1")
	if got.Reached || !strings.Contains(got.Error, "panic") {
		t.Errorf("got %+v, want an unreached VM whose error says panic", got)
	}
}

func TestObserveVMsParallelWithTimeout(t *testing.T) {
	f := newFakeVMs(t)
	for _, vm := range []string{"vm1", "vm2", "vm3"} {
		f.engine(vm, emptyEngine)
	}
	f.err["vm2"] = errors.New("ssh vm2: dial: no route to host")
	f.delay["vm1"] = 300 * time.Millisecond
	f.delay["vm3"] = time.Hour
	start := time.Now()
	got := ObserveVMs(t.Context(), f, []string{"vm3", "vm1", "vm2"}, time.Second)
	took := time.Since(start)
	if took > 3*time.Second {
		t.Errorf("took %v: the per-VM timeout of 1s was not applied", took)
	}
	if len(got) != 3 || got[0].Name != "vm1" || got[1].Name != "vm2" || got[2].Name != "vm3" {
		t.Fatalf("got %+v, want vm1, vm2, vm3 in order", got)
	}
	if !got[0].Reached {
		t.Errorf("vm1 not reached: %s", got[0].Error)
	}
	if got[1].Reached || !strings.Contains(got[1].Error, "no route") {
		t.Errorf("vm2 = %+v, want unreached with the dial error", got[1])
	}
	// The dialer's own words, not only the context's.
	if want := "observe vm3: ssh vm3: context deadline exceeded"; got[2].Reached || got[2].Error != want {
		t.Errorf("vm3 = %+v, want unreached after its timeout, Error %q", got[2], want)
	}
}

func TestObserveVMsRunsInParallel(t *testing.T) {
	var inflight, peak atomic.Int32
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/containers/json" {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		emptyEngine.ServeHTTP(w, r)
	})
	f := newFakeVMs(t)
	names := []string{"a", "b", "c", "d", "e"}
	for _, n := range names {
		f.engine(n, slow)
	}
	got := ObserveVMs(t.Context(), f, names, 0)
	if peak.Load() != int32(len(names)) {
		t.Errorf("at most %d VMs observed at once, want %d", peak.Load(), len(names))
	}
	for _, vm := range got {
		if !vm.Reached {
			t.Errorf("%s not reached: %s", vm.Name, vm.Error)
		}
	}
}

func TestDemux(t *testing.T) {
	frame := func(stream byte, s string) []byte {
		h := make([]byte, 8, 8+len(s))
		h[0] = stream
		binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
		return append(h, s...)
	}
	var b []byte
	b = append(b, frame(1, "out one\n")...)
	b = append(b, frame(2, "err two\n")...)
	b = append(b, frame(1, "")...)
	b = append(b, frame(2, "truncated long line")[:8+9]...)
	if got, want := string(demux(b)), "out one\nerr two\ntruncated"; got != want {
		t.Errorf("demux = %q, want %q", got, want)
	}
	if got := demux([]byte{1, 0, 0}); len(got) != 0 {
		t.Errorf("a partial header gave %q", got)
	}
}

func TestPostgresPort(t *testing.T) {
	tests := []struct {
		name string
		cmd  []string
		env  []string
		want int
	}{
		{"pg_autoctl_flag", []string{"pg_autoctl", "create", "postgres", "--pgport", "5433", "--run"}, []string{"PGPORT=6000"}, 5433},
		{"flag_with_equals", []string{"pg_autoctl", "--pgport=5434"}, nil, 5434},
		{"env", []string{"pg_autoctl", "create", "postgres"}, []string{"PATH=/bin", "PGPORT=6001"}, 6001},
		{"flag_without_value", []string{"pg_autoctl", "--pgport"}, nil, 5432},
		{"default", nil, nil, 5432},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := postgresPort(tt.cmd, tt.env); got != tt.want {
				t.Errorf("postgresPort = %d, want %d", got, tt.want)
			}
		})
	}
}

// The bodies are what lab nodes answered PostgresQuery.
func TestParsePostgres(t *testing.T) {
	start := time.Date(2026, 11, 26, 2, 0, 22, 746392000, time.UTC)
	cases := []struct {
		name string
		body string
		want *Postgres
	}{
		{"pending_restart", `{"start" : "2026-11-26T02:00:22.746392+00:00", "params" : { "synchronous_standby_names" : "", "work_mem" : "8MB", "max_connections" : "150" }, "pending" : ["max_connections"], "postmaster" : ["max_connections", "shared_buffers"]}`,
			&Postgres{StartTime: start, Parameters: map[string]string{"synchronous_standby_names": "", "work_mem": "8MB", "max_connections": "150"}, PendingRestart: []string{"max_connections"}, RestartOnly: []string{"max_connections", "shared_buffers"}}},
		{"primary_with_standbys", `{"start" : "2026-11-26T02:00:22.746392+00:00", "params" : {}, "pending" : [], "postmaster" : [], "standbys" : [{"name" : "pgautofailover_standby_2", "state" : "streaming", "sync_state" : "quorum", "replay_lag" : 0.001204}, {"name" : "pgautofailover_standby_3", "state" : "catchup", "sync_state" : "async", "replay_lag" : null}]}`,
			&Postgres{StartTime: start, Standbys: []Standby{
				{Name: "pgautofailover_standby_2", State: "streaming", SyncState: "quorum", ReplayLagSeconds: ptr(0.001204)},
				{Name: "pgautofailover_standby_3", State: "catchup", SyncState: "async"}}}},
		{"nothing_set", `{"start" : "2026-11-26T02:00:22.746392+00:00", "params" : {}, "pending" : []}`, &Postgres{StartTime: start}},
		{"garbage", `{"start"`, &Postgres{Error: "postgres answer: unexpected end of JSON input"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, parsePostgres([]byte(tc.body))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
