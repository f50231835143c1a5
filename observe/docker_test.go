package observe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeRunner answers each VM with canned output or an error, and records
// every argv it was given.
type fakeRunner struct {
	mu    sync.Mutex
	out   map[string][]byte
	err   map[string]error
	delay map[string]time.Duration
	calls []fakeCall
	panic bool
}

type fakeCall struct {
	VM   string
	Argv []string
}

func (f *fakeRunner) Run(ctx context.Context, vm string, argv []string) ([]byte, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{vm, argv})
	out, err, d := f.out[vm], f.err[vm], f.delay[vm]
	f.mu.Unlock()
	if f.panic {
		panic("runner bug")
	}
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s: %w", vm, ctx.Err())
		}
	}
	return out, err
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vm_two_containers.txt is the real output of VMCommand("vmcap") on this
// machine's Docker engine: a running node container whose log has fatal
// lines (six timeline errors and a pg_rewind failure: the last five are
// kept), a never-started monitor
// container, their two volumes; a container and a volume of another VM
// were present and must not appear.
func TestObserveVMParsesRealDockerOutput(t *testing.T) {
	r := &fakeRunner{out: map[string][]byte{"vmcap": readTestdata(t, "vm_two_containers.txt")}}
	got := ObserveVM(t.Context(), r, "vmcap")

	if len(r.calls) != 1 {
		t.Fatalf("%d round trips, want 1", len(r.calls))
	}
	if d := cmp.Diff(VMCommand("vmcap"), r.calls[0].Argv); d != "" {
		t.Errorf("argv (-want +got):\n%s", d)
	}
	started, err := time.Parse(time.RFC3339Nano, "2026-11-26T01:43:12.293720086Z")
	if err != nil {
		t.Fatal(err)
	}
	want := VM{
		Name:    "vmcap",
		Reached: true,
		Containers: []Container{
			{
				Name: "pgaf-cap-monitor", Cluster: "pgaf-cap", Node: "monitor", Role: RoleMonitor,
				Image: "pgaf-test/tiny:cap", State: "created", SpecHash: "fedcba9876543210",
				Labels: map[string]string{
					LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "monitor",
					LabelRole: RoleMonitor, LabelSpecHash: "fedcba9876543210",
				},
			},
			{
				Name: "pgaf-cap-node1", Cluster: "pgaf-cap", Node: "node1", Role: RoleNode,
				Image: "pgaf-test/tiny:cap", State: "running", StartedAt: started,
				SpecHash: "0123456789abcdef", Rebuild: "tok1",
				Labels: map[string]string{
					LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "node1",
					LabelRole: RoleNode, LabelSpecHash: "0123456789abcdef", LabelRebuild: "tok1",
				},
				LogEvidence: []string{
					"FATAL:  requested timeline 3 is not a child of this server's history",
					"FATAL:  requested timeline 4 is not a child of this server's history",
					"FATAL:  requested timeline 5 is not a child of this server's history",
					"FATAL:  requested timeline 6 is not a child of this server's history",
					"pg_autoctl: pg_rewind failed, trying pg_basebackup",
				},
			},
		},
		Volumes: []Volume{
			{Name: "pgaf-cap-monitor-data", Cluster: "pgaf-cap", Node: "monitor", SizeBytes: -1,
				Labels: map[string]string{LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "monitor"}},
			{Name: "pgaf-cap-node1-data", Cluster: "pgaf-cap", Node: "node1", Rebuild: "tok1", SizeBytes: -1,
				Labels: map[string]string{LabelManaged: "true", LabelVM: "vmcap", LabelCluster: "pgaf-cap", LabelNode: "node1", LabelRebuild: "tok1"}},
		},
	}
	// IDs are long and random: check their shape, then compare the rest.
	for i := range got.Containers {
		if len(got.Containers[i].ID) != 64 {
			t.Errorf("container %s: ID %q is not a full id", got.Containers[i].Name, got.Containers[i].ID)
		}
		got.Containers[i].ID = ""
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ObserveVM (-want +got):\n%s", d)
	}
}

func TestObserveVMEmpty(t *testing.T) {
	r := &fakeRunner{out: map[string][]byte{"vm1": readTestdata(t, "vm_empty.txt")}}
	got := ObserveVM(t.Context(), r, "vm1")
	want := VM{Name: "vm1", Reached: true, Containers: []Container{}, Volumes: []Volume{}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ObserveVM (-want +got):\n%s", d)
	}
}

func TestObserveVMFailures(t *testing.T) {
	real := string(readTestdata(t, "vm_two_containers.txt"))
	tests := []struct {
		name    string
		out     string
		err     error
		wantErr string
	}{
		{"ssh_error", "", errors.New("ssh vm1 (10.0.0.1:22): dial: connection refused"), "connection refused"},
		{"empty_output", "", nil, "truncated"},
		{"truncated_output", real[:len(real)/2], nil, "truncated"},
		{"garbage_json", "@@pgaf containers\n[{\"Id\": \n@@pgaf rc 0\n@@pgaf volumes\n@@pgaf rc 0\n@@pgaf end\n", nil, "docker inspect"},
		{"inspect_failed_no_output", "@@pgaf containers\n@@pgaf rc 1\n@@pgaf volumes\n@@pgaf rc 0\n@@pgaf end\n", nil, "exit status 1"},
		{"volume_ls_failed", "@@pgaf containers\n[]\n@@pgaf rc 0\n@@pgaf volumes\n@@pgaf rc 1\n@@pgaf end\n", nil, "docker volume ls: exit status 1"},
		{"bad_volume_line", "@@pgaf containers\n[]\n@@pgaf rc 0\n@@pgaf volumes\n{\"Name\":\n@@pgaf rc 0\n@@pgaf end\n", nil, "docker volume ls"},
		{"missing_volumes_section", "@@pgaf containers\n[]\n@@pgaf rc 0\n@@pgaf end\n", nil, "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{out: map[string][]byte{"vm1": []byte(tt.out)}, err: map[string]error{"vm1": tt.err}}
			got := ObserveVM(t.Context(), r, "vm1")
			if got.Reached {
				t.Errorf("Reached = true, want false")
			}
			if !strings.Contains(got.Error, tt.wantErr) || !strings.Contains(got.Error, "vm1") {
				t.Errorf("Error = %q, want it to name vm1 and contain %q", got.Error, tt.wantErr)
			}
			if len(got.Containers) != 0 || len(got.Volumes) != 0 {
				t.Errorf("an unreached VM has objects: %+v", got)
			}
		})
	}
}

func TestObserveVMTolerates(t *testing.T) {
	tests := []struct {
		name  string
		out   string
		check func(t *testing.T, vm VM)
	}{
		// A container removed between `docker ps` and `docker inspect`:
		// inspect prints the others and exits 1.
		{"vanished_container", "@@pgaf containers\n[{\"Id\":\"abc\",\"Name\":\"/c1\",\"State\":{\"Status\":\"exited\",\"StartedAt\":\"0001-01-01T00:00:00Z\"},\"Config\":{\"Image\":\"img\",\"Labels\":{\"pgaf.role\":\"node\",\"maintainer\":\"x\"}}}]\n@@pgaf rc 1\n@@pgaf volumes\n@@pgaf rc 0\n@@pgaf end\n",
			func(t *testing.T, vm VM) {
				if !vm.Reached || len(vm.Containers) != 1 || vm.Containers[0].Name != "c1" {
					t.Fatalf("got %+v", vm)
				}
				if !vm.Containers[0].StartedAt.IsZero() {
					t.Errorf("StartedAt of a never-started container = %v, want zero", vm.Containers[0].StartedAt)
				}
				if _, ok := vm.Containers[0].Labels["maintainer"]; ok {
					t.Errorf("an image label was kept: %v", vm.Containers[0].Labels)
				}
			}},
		{"login_banner_before_sections", "Welcome to vm1\n@@pgaf containers\n[]\n@@pgaf rc 0\n@@pgaf volumes\n{\"Name\":\"v\",\"Labels\":{\"pgaf.vm\":\"vm1\",\"pgaf.rebuild\":\"\"},\"UsageData\":{\"Size\":1234,\"RefCount\":1}}\n@@pgaf rc 0\n@@pgaf end\n",
			func(t *testing.T, vm VM) {
				if !vm.Reached || len(vm.Volumes) != 1 || vm.Volumes[0].SizeBytes != 1234 {
					t.Fatalf("got %+v", vm)
				}
				if d := cmp.Diff(map[string]string{LabelVM: "vm1"}, vm.Volumes[0].Labels); d != "" {
					t.Errorf("labels printed empty must be absent (-want +got):\n%s", d)
				}
			}},
		{"sorted_by_name", "@@pgaf containers\n[{\"Id\":\"2\",\"Name\":\"/b\",\"Config\":{}},{\"Id\":\"1\",\"Name\":\"/a\",\"Config\":{}}]\n@@pgaf rc 0\n@@pgaf volumes\n{\"Name\":\"z\"}\n{\"Name\":\"y\"}\n@@pgaf rc 0\n@@pgaf end\n",
			func(t *testing.T, vm VM) {
				if vm.Containers[0].Name != "a" || vm.Containers[1].Name != "b" || vm.Volumes[0].Name != "y" || vm.Volumes[1].Name != "z" {
					t.Errorf("not sorted: %+v", vm)
				}
				if vm.Volumes[0].SizeBytes != -1 {
					t.Errorf("unknown size = %d, want -1", vm.Volumes[0].SizeBytes)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{out: map[string][]byte{"vm1": []byte(tt.out)}}
			vm := ObserveVM(t.Context(), r, "vm1")
			if vm.Error != "" {
				t.Fatalf("Error = %q", vm.Error)
			}
			tt.check(t, vm)
		})
	}
}

func TestObserveVMRecoversFromRunnerPanic(t *testing.T) {
	got := ObserveVM(t.Context(), &fakeRunner{panic: true}, "vm1")
	if got.Reached || !strings.Contains(got.Error, "panic") {
		t.Errorf("got %+v, want an unreached VM whose error says panic", got)
	}
}

func TestObserveVMsParallelWithTimeout(t *testing.T) {
	empty := readTestdata(t, "vm_empty.txt")
	r := &fakeRunner{
		out:   map[string][]byte{"vm1": empty, "vm2": empty, "vm3": empty},
		err:   map[string]error{"vm2": errors.New("ssh vm2: dial: no route to host")},
		delay: map[string]time.Duration{"vm1": 300 * time.Millisecond, "vm3": time.Hour},
	}
	start := time.Now()
	got := ObserveVMs(t.Context(), r, []string{"vm3", "vm1", "vm2"}, time.Second)
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
	if got[2].Reached || !strings.Contains(got[2].Error, "deadline exceeded") {
		t.Errorf("vm3 = %+v, want unreached after its timeout", got[2])
	}
}

func TestObserveVMsRunsInParallel(t *testing.T) {
	empty := readTestdata(t, "vm_empty.txt")
	var inflight, peak atomic.Int32
	r := runnerFunc(func(ctx context.Context, vm string, argv []string) ([]byte, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		return empty, nil
	})
	names := []string{"a", "b", "c", "d", "e"}
	got := ObserveVMs(t.Context(), r, names, 0)
	if peak.Load() != int32(len(names)) {
		t.Errorf("at most %d VMs observed at once, want %d", peak.Load(), len(names))
	}
	for _, vm := range got {
		if !vm.Reached {
			t.Errorf("%s not reached: %s", vm.Name, vm.Error)
		}
	}
}

type runnerFunc func(ctx context.Context, vm string, argv []string) ([]byte, error)

func (f runnerFunc) Run(ctx context.Context, vm string, argv []string) ([]byte, error) {
	return f(ctx, vm, argv)
}

func TestVMCommandScriptQuotesVM(t *testing.T) {
	argv := VMCommand("vm1")
	if argv[0] != "sh" || argv[1] != "-c" || argv[3] != "sh" || argv[4] != "vm1" {
		t.Fatalf("argv = %q, want sh -c SCRIPT sh vm1 ...", argv)
	}
	// The VM name reaches docker as data ($1), never as script text.
	if strings.Contains(argv[2], "vm1") {
		t.Errorf("the script embeds the VM name")
	}
}
