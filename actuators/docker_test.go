package actuators

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// scriptRunner answers commands by their first matching prefix (argv
// joined with spaces) and records every argv.
type scriptRunner struct {
	mu      sync.Mutex
	answers []answer
	calls   [][]string
}

type answer struct {
	prefix string
	out    string
	err    error
}

func (r *scriptRunner) Run(ctx context.Context, vm string, argv []string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, argv)
	line := strings.Join(argv, " ")
	for _, a := range r.answers {
		if strings.HasPrefix(line, a.prefix) {
			return []byte(a.out), a.err
		}
	}
	return nil, nil
}

// verbs returns the calls as "docker <verb>" (or "docker volume <verb>").
func (r *scriptRunner) verbs() []string {
	var v []string
	for _, c := range r.calls {
		if len(c) > 2 && c[1] == "volume" {
			v = append(v, "volume "+c[2])
		} else if len(c) > 1 {
			v = append(v, c[1])
		}
	}
	return v
}

func testSpec() reconcile.ContainerSpec {
	return reconcile.ContainerSpec{
		Name: "main-node1", VM: "vm1", Image: "pgaf/postgres:15-2.0", Network: "host",
		User: "postgres", Restart: "unless-stopped", Volume: "main-node1-data", Mount: "/var/lib/postgres",
		Tmpfs: []string{"/tmp"},
		Env:   map[string]string{"PGDATA": "/var/lib/postgres/pgaf", "XDG_CONFIG_HOME": "/var/lib/postgres/config"},
		Labels: map[string]string{
			observe.LabelManaged: "true", observe.LabelVM: "vm1", observe.LabelCluster: "main",
			observe.LabelNode: "node1", observe.LabelRole: observe.RoleNode, observe.LabelRebuild: "r1",
			observe.LabelSpecHash: "stale-value-is-overridden",
		},
		Command: []string{"pg_autoctl", "create", "postgres", "--name", "node 1's", "--run"},
	}
}

func TestRunArgs(t *testing.T) {
	s := testSpec()
	want := []string{"docker", "run", "--detach", "--name", "main-node1",
		"--network", "host", "--user", "postgres", "--restart", "unless-stopped",
		"--mount", "type=volume,src=main-node1-data,dst=/var/lib/postgres",
		"--tmpfs", "/tmp",
		"--env", "PGDATA=/var/lib/postgres/pgaf", "--env", "XDG_CONFIG_HOME=/var/lib/postgres/config",
		"--label", "pgaf.cluster=main", "--label", "pgaf.managed=true", "--label", "pgaf.node=node1",
		"--label", "pgaf.rebuild=r1", "--label", "pgaf.role=node", "--label", "pgaf.spec-hash=" + s.Hash(),
		"--label", "pgaf.vm=vm1",
		"pgaf/postgres:15-2.0", "pg_autoctl", "create", "postgres", "--name", "node 1's", "--run"}
	if d := cmp.Diff(want, RunArgs(s)); d != "" {
		t.Errorf("RunArgs (-want +got):\n%s", d)
	}
	if s.Labels[observe.LabelSpecHash] != "stale-value-is-overridden" {
		t.Errorf("RunArgs modified the spec's labels")
	}
}

func psLine(name, state, hash string) string {
	return name + "\tdeadbeef\t" + state + "\t" + hash + "\n"
}

func TestEnsureContainer(t *testing.T) {
	spec := testSpec()
	hash := spec.Hash()
	volumeThere := answer{prefix: "docker volume ls", out: "main-node1-data\n"}
	noSuchImage := answer{prefix: "docker image inspect", err: &CommandError{VM: "vm1", ExitStatus: 1, Stderr: "Error response from daemon: no such image: pgaf/postgres:15-2.0: No such image: pgaf/postgres:15-2.0"}}
	tests := []struct {
		name      string
		answers   []answer
		want      EnsureResult
		wantVerbs []string
		wantErr   string
	}{
		{"absent_is_created", []answer{{prefix: "docker ps"}, volumeThere},
			Created, []string{"ps", "volume ls", "image", "run"}, ""},
		{"absent_without_volume_is_refused", []answer{{prefix: "docker ps"}, {prefix: "docker volume ls"}},
			"", []string{"ps", "volume ls"}, "volume main-node1-data does not exist"},
		{"same_hash_running_is_left_alone", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", hash)}},
			Unchanged, []string{"ps"}, ""},
		{"same_hash_restarting_is_left_alone", []answer{{prefix: "docker ps", out: psLine("main-node1", "restarting", hash)}},
			Unchanged, []string{"ps"}, ""},
		{"same_hash_exited_is_started", []answer{{prefix: "docker ps", out: psLine("main-node1", "exited", hash)}},
			Started, []string{"ps", "start"}, ""},
		{"same_hash_created_is_started", []answer{{prefix: "docker ps", out: psLine("main-node1", "created", hash)}},
			Started, []string{"ps", "start"}, ""},
		{"other_hash_running_is_replaced", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", "0000")}, volumeThere},
			Replaced, []string{"ps", "volume ls", "image", "stop", "rm", "run"}, ""},
		{"other_hash_exited_is_replaced_without_stop", []answer{{prefix: "docker ps", out: psLine("main-node1", "exited", "0000")}, volumeThere},
			Replaced, []string{"ps", "volume ls", "image", "rm", "run"}, ""},
		{"missing_hash_label_is_replaced", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", "")}, volumeThere},
			Replaced, []string{"ps", "volume ls", "image", "stop", "rm", "run"}, ""},
		{"dead_is_replaced", []answer{{prefix: "docker ps", out: psLine("main-node1", "dead", hash)}, volumeThere},
			Replaced, []string{"ps", "volume ls", "image", "rm", "run"}, ""},
		{"regex_lookalike_is_not_ours", []answer{{prefix: "docker ps", out: psLine("main-node1x", "running", hash)}, volumeThere},
			Created, []string{"ps", "volume ls", "image", "run"}, ""},
		{"ps_failure", []answer{{prefix: "docker ps", err: errors.New("Cannot connect to the Docker daemon")}},
			"", []string{"ps"}, "docker vm1: ps main-node1: Cannot connect"},
		{"run_failure", []answer{{prefix: "docker ps"}, volumeThere, {prefix: "docker run", err: &CommandError{VM: "vm1", ExitStatus: 125, Stderr: "no such image"}}},
			"", []string{"ps", "volume ls", "image", "run"}, "docker vm1: run main-node1: ssh vm1"},
		// The image is pulled when the VM lacks it, before anything stops.
		{"missing_image_is_pulled_first", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", "0000")}, volumeThere, noSuchImage},
			Replaced, []string{"ps", "volume ls", "image", "pull", "stop", "rm", "run"}, ""},
		// A tag that cannot be pulled stops nothing.
		{"unpullable_image_stops_nothing", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", "0000")}, volumeThere, noSuchImage,
			{prefix: "docker pull", err: &CommandError{VM: "vm1", ExitStatus: 1, Stderr: "manifest for pgaf/postgres:15-2.0 not found"}}},
			"", []string{"ps", "volume ls", "image", "pull"}, "image pgaf/postgres:15-2.0 is not on vm1 and cannot be pulled; main-node1 was left as it was"},
		{"image_inspect_failure_stops_nothing", []answer{{prefix: "docker ps", out: psLine("main-node1", "running", "0000")}, volumeThere,
			{prefix: "docker image inspect", err: &CommandError{VM: "vm1", ExitStatus: 255, Stderr: "connection reset"}}},
			"", []string{"ps", "volume ls", "image"}, "image-inspect pgaf/postgres:15-2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptRunner{answers: tt.answers}
			d := NewDocker(r)
			var hooked []string
			d.OnMutation = func(vm, op string) { hooked = append(hooked, vm+":"+op) }
			got, err := d.EnsureContainerResult(t.Context(), spec)
			if tt.wantErr != "" {
				var de *DockerError
				if !errors.As(err, &de) || de.VM != "vm1" || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want a *DockerError containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("EnsureContainerResult: %v", err)
			}
			if got != tt.want {
				t.Errorf("result = %q, want %q", got, tt.want)
			}
			if d := cmp.Diff(tt.wantVerbs, r.verbs()); d != "" {
				t.Errorf("docker calls (-want +got):\n%s", d)
			}
			// Every mutating call was counted and reported, reads were not.
			mut := 0
			for _, v := range r.verbs() {
				if v == "run" || v == "start" || v == "stop" || v == "rm" || v == "pull" {
					mut++
				}
			}
			if d.MutationCount() != mut || len(hooked) != mut {
				t.Errorf("counted %d mutations, hook saw %v; want %d", d.MutationCount(), hooked, mut)
			}
		})
	}
}

func TestEnsureContainerExactCommands(t *testing.T) {
	spec := testSpec()
	r := &scriptRunner{answers: []answer{
		{prefix: "docker ps", out: psLine("main-node1", "running", "0000")},
		{prefix: "docker volume ls", out: "main-node1-data\n"},
	}}
	d := NewDocker(r)
	d.StopTimeout = 90 * time.Second
	if err := d.EnsureContainer(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"docker", "ps", "-a", "--no-trunc", "--filter", "name=^/main-node1$", "--format", "{{.Names}}\t{{.ID}}\t{{.State}}\t{{.Label \"pgaf.spec-hash\"}}"},
		{"docker", "volume", "ls", "-q", "--filter", "name=^main-node1-data$"},
		{"docker", "image", "inspect", "--format", "{{.Id}}", "pgaf/postgres:15-2.0"},
		{"docker", "stop", "--time", "90", "main-node1"},
		{"docker", "rm", "main-node1"},
		RunArgs(spec),
	}
	if d := cmp.Diff(want, r.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{OpStop: 1, OpRemove: 1, OpRun: 1}, d.Mutations()); d != "" {
		t.Errorf("Mutations (-want +got):\n%s", d)
	}
}

func TestDockerIdempotentOps(t *testing.T) {
	tests := []struct {
		name  string
		ps    string // docker ps answer
		vols  string // docker volume ls answer
		op    func(d *Docker) error
		calls [][]string
	}{
		{"ensure_volume_absent_creates_with_sorted_labels", "", "", func(d *Docker) error {
			return d.EnsureVolume(t.Context(), "vm1", "v1", map[string]string{"pgaf.vm": "vm1", "pgaf.cluster": "main"})
		}, [][]string{
			{"docker", "volume", "ls", "-q", "--filter", "name=^v1$"},
			{"docker", "volume", "create", "--label", "pgaf.cluster=main", "--label", "pgaf.vm=vm1", "v1"},
		}},
		{"ensure_volume_present_does_nothing", "", "v1\n", func(d *Docker) error {
			return d.EnsureVolume(t.Context(), "vm1", "v1", map[string]string{"pgaf.vm": "vm1"})
		}, [][]string{{"docker", "volume", "ls", "-q", "--filter", "name=^v1$"}}},
		{"remove_volume_absent_does_nothing", "", "v10\n", func(d *Docker) error {
			return d.RemoveVolume(t.Context(), "vm1", "v1")
		}, [][]string{{"docker", "volume", "ls", "-q", "--filter", "name=^v1$"}}},
		{"remove_volume_present", "", "v1\n", func(d *Docker) error {
			return d.RemoveVolume(t.Context(), "vm1", "v1")
		}, [][]string{{"docker", "volume", "ls", "-q", "--filter", "name=^v1$"}, {"docker", "volume", "rm", "v1"}}},
		{"stop_running", psLine("c1", "running", "h"), "", func(d *Docker) error {
			return d.StopContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil, {"docker", "stop", "--time", "60", "c1"}}},
		{"stop_exited_does_nothing", psLine("c1", "exited", "h"), "", func(d *Docker) error {
			return d.StopContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil}},
		{"stop_absent_does_nothing", "", "", func(d *Docker) error {
			return d.StopContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil}},
		{"start_exited", psLine("c1", "exited", "h"), "", func(d *Docker) error {
			return d.StartContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil, {"docker", "start", "c1"}}},
		{"start_running_does_nothing", psLine("c1", "running", "h"), "", func(d *Docker) error {
			return d.StartContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil}},
		{"remove_running_stops_first", psLine("c1", "running", "h"), "", func(d *Docker) error {
			return d.RemoveContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil, {"docker", "stop", "--time", "60", "c1"}, {"docker", "rm", "c1"}}},
		{"remove_absent_does_nothing", "", "", func(d *Docker) error {
			return d.RemoveContainer(t.Context(), "vm1", "c1")
		}, [][]string{nil}},
		{"fence_running_no_restart_stop_rename", psLine("c1", "running", "h"), "", func(d *Docker) error {
			return d.FenceContainer(t.Context(), "vm1", "c1", "c1-fenced-0123")
		}, [][]string{nil, {"docker", "update", "--restart=no", "c1"}, {"docker", "stop", "--time", "60", "c1"}, {"docker", "rename", "c1", "c1-fenced-0123"}}},
		{"fence_exited_is_not_stopped", psLine("c1", "exited", "h"), "", func(d *Docker) error {
			return d.FenceContainer(t.Context(), "vm1", "c1", "c1-fenced-0123")
		}, [][]string{nil, {"docker", "update", "--restart=no", "c1"}, {"docker", "rename", "c1", "c1-fenced-0123"}}},
		{"fence_done_does_nothing", psLine("c1-fenced-0123", "exited", "h"), "", func(d *Docker) error {
			return d.FenceContainer(t.Context(), "vm1", "c1", "c1-fenced-0123")
		}, [][]string{nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &scriptRunner{answers: []answer{{prefix: "docker ps", out: tt.ps}, {prefix: "docker volume ls", out: tt.vols}}}
			d := NewDocker(r)
			if err := tt.op(d); err != nil {
				t.Fatal(err)
			}
			// nil stands for the docker ps lookup, checked elsewhere.
			got := make([][]string, len(r.calls))
			for i, c := range r.calls {
				if c[1] != "ps" {
					got[i] = c
				}
			}
			if d := cmp.Diff(tt.calls, got); d != "" {
				t.Errorf("calls (-want +got):\n%s", d)
			}
			want := 0 // a mutation for each call that is not a lookup
			for _, c := range tt.calls {
				if c != nil && !(len(c) > 2 && c[1] == "volume" && c[2] == "ls") {
					want++
				}
			}
			if d.MutationCount() != want {
				t.Errorf("MutationCount = %d, want %d", d.MutationCount(), want)
			}
		})
	}
}

func TestDockerStartMissingContainer(t *testing.T) {
	d := NewDocker(&scriptRunner{})
	err := d.StartContainer(t.Context(), "vm1", "c1")
	if !errors.Is(err, ErrNoSuchContainer) || !strings.Contains(err.Error(), "vm1") {
		t.Errorf("err = %v, want ErrNoSuchContainer naming vm1", err)
	}
}

func TestDockerLogsAndExecCommands(t *testing.T) {
	r := &scriptRunner{}
	d := NewDocker(r)
	if _, err := d.Logs(t.Context(), "vm1", "c1", 50); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(t.Context(), "vm1", "c1", []string{"pg_autoctl", "show", "state"}); err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"sh", "-c", `exec docker logs --tail "$1" "$2" 2>&1`, "sh", "50", "c1"},
		{"docker", "exec", "--user", "postgres", "c1", "pg_autoctl", "show", "state"},
	}
	if d := cmp.Diff(want, r.calls); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]int{OpExec: 1}, d.Mutations()); d != "" {
		t.Errorf("Mutations (-want +got):\n%s", d)
	}
	if _, err := d.ExecInput(t.Context(), "vm1", "c1", []string{"psql"}, strings.NewReader("select 1")); err == nil {
		t.Errorf("ExecInput on a runner without stdin support succeeded")
	}
}

// --- against this machine's real Docker engine, through a real sshd ---

// dockerOrSkip skips when there is no usable Docker engine (fails under CI).
func dockerOrSkip(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker unusable and CI is set: %v", err)
		}
		t.Skipf("no usable Docker engine (%v): skipping the real Docker test", err)
	}
}

// tinyImage builds a 3 MB image from this machine's own sh, sleep and cat
// (docker import of a root filesystem: no registry involved) and removes
// it in t.Cleanup. It does not depend on images another test may remove.
func tinyImage(t *testing.T, name string) {
	t.Helper()
	script := `set -e
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
for f in /bin/sh /bin/sleep /bin/cat; do
  cp -L --parents "$f" "$root"
  for l in $(ldd "$f" | grep -o '/[^ ]*'); do cp -L --parents "$l" "$root"; done
done
mkdir -p "$root/tmp" "$root/etc" "$root/var/lib/postgres"
printf 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgres:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/sh\n' > "$root/etc/passwd"
tar -C "$root" -c . | docker import - "$1" >/dev/null
`
	if out, err := exec.Command("sh", "-c", script, "sh", name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("docker", "rmi", name).CombinedOutput(); err != nil {
			t.Errorf("remove image %s: %v\n%s", name, err, out)
		}
	})
}

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pgaf-test-" + hex.EncodeToString(b)
}

func TestDockerAgainstRealEngine(t *testing.T) {
	dockerOrSkip(t)
	s := startSSHD(t)
	name := randomName(t)
	vm := name + "-vm" // the pgaf.vm label: unique, so the observer sees only ours
	image := name + "/tiny:latest"
	tinyImage(t, image)
	ex := s.Executor(t, vm, nil)
	d := NewDocker(ex)
	d.StopTimeout = 5 * time.Second
	var hooked []string
	var hookMu sync.Mutex
	d.OnMutation = func(v, op string) {
		hookMu.Lock()
		defer hookMu.Unlock()
		hooked = append(hooked, v+":"+op)
	}
	ctx := testCtx(t, 3*time.Minute)

	spec := reconcile.ContainerSpec{
		Name: name, VM: vm, Image: image, Network: "none", User: "65534", Restart: "unless-stopped",
		Volume: name + "-data", Mount: "/var/lib/postgres", Tmpfs: []string{"/tmp"},
		Env: map[string]string{"PGDATA": "/var/lib/postgres/pgaf", "ODD": "it's $(not run) `at all` *"},
		Labels: map[string]string{
			observe.LabelManaged: "true", observe.LabelVM: vm, observe.LabelCluster: name,
			observe.LabelNode: "node1", observe.LabelRole: observe.RoleNode,
		},
		// PID 1 ignores SIGTERM unless it traps it: exit at once on stop.
		Command: []string{"sh", "-c", `trap 'exit 0' TERM; echo "started $0"; echo "FATAL:  database system identifier differs between the primary and standby"; sleep 3600 & wait`, "v1"},
	}
	// Whatever happens, leave nothing behind; report what cleanup could not do.
	t.Cleanup(func() {
		for _, argv := range [][]string{
			{"docker", "rm", "-f", name},
			{"docker", "volume", "rm", "-f", spec.Volume},
		} {
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("cleanup %v: %v\n%s", argv, err, out)
			}
		}
	})

	// Volume: created once, then left alone.
	if err := d.EnsureVolume(ctx, vm, spec.Volume, VolumeLabels(spec)); err != nil {
		t.Fatalf("EnsureVolume: %v", err)
	}
	if err := d.EnsureVolume(ctx, vm, spec.Volume, VolumeLabels(spec)); err != nil {
		t.Fatalf("EnsureVolume again: %v", err)
	}
	if got := d.Mutations(); got[OpVolumeCreate] != 1 {
		t.Fatalf("volume creates = %d, want 1", got[OpVolumeCreate])
	}

	ensure := func(want EnsureResult) {
		t.Helper()
		got, err := d.EnsureContainerResult(ctx, spec)
		if err != nil {
			t.Fatalf("EnsureContainerResult: %v", err)
		}
		if got != want {
			t.Fatalf("EnsureContainerResult = %q, want %q", got, want)
		}
	}
	state := func() ContainerInfo {
		t.Helper()
		info, ok, err := d.Container(ctx, vm, name)
		if err != nil || !ok {
			t.Fatalf("Container: ok=%v err=%v", ok, err)
		}
		return info
	}

	ensure(Created)
	first := state()
	if first.State != "running" || first.SpecHash != spec.Hash() {
		t.Fatalf("after create: %+v, want running with hash %s", first, spec.Hash())
	}

	// Converged: a second ensure reads and mutates nothing.
	before := d.MutationCount()
	ensure(Unchanged)
	if n := d.MutationCount() - before; n != 0 {
		t.Errorf("a converged EnsureContainer made %d mutating docker calls, want 0", n)
	}
	if state().ID != first.ID {
		t.Errorf("a converged EnsureContainer replaced the container")
	}

	// The environment survived quoting, and exec runs as postgres.
	out, err := d.Exec(ctx, vm, name, []string{"sh", "-c", `printf '%s|' "$ODD"; while read -r k v; do [ "$k" = Uid: ] && echo "$v"; done </proc/self/status; true`})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if want := "it's $(not run) `at all` *|999\t999\t999\t999\n"; string(out) != want {
		t.Errorf("exec printed %q, want %q", out, want)
	}

	// The observer sees it, in one round trip.
	var obs observe.VM
	var took []time.Duration
	for range 3 {
		start := time.Now()
		obs = observe.ObserveVM(ctx, ex, vm)
		took = append(took, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("ObserveVM over a warm connection took %v", took)
	if !obs.Reached || len(obs.Containers) != 1 || len(obs.Volumes) != 1 {
		t.Fatalf("ObserveVM = %+v, want one container and one volume", obs)
	}
	c := obs.Containers[0]
	if c.Name != name || c.State != "running" || c.SpecHash != spec.Hash() || c.Image != image || c.Node != "node1" || c.Role != observe.RoleNode {
		t.Errorf("observed container = %+v", c)
	}
	if len(c.LogEvidence) != 1 || !strings.Contains(c.LogEvidence[0], "database system identifier differs") {
		t.Errorf("LogEvidence = %q, want the identifier line", c.LogEvidence)
	}
	if obs.Volumes[0].Name != spec.Volume || obs.Volumes[0].Node != "node1" || obs.Volumes[0].Labels[observe.LabelVM] != vm {
		t.Errorf("observed volume = %+v", obs.Volumes[0])
	}

	// Stopped with the right hash: started again, same container.
	if err := d.StopContainer(ctx, vm, name); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if st := state().State; st != "exited" {
		t.Fatalf("after stop: %s", st)
	}
	ensure(Started)
	if info := state(); info.State != "running" || info.ID != first.ID {
		t.Errorf("after start: %+v, want the same container running", info)
	}

	// A changed spec replaces it.
	spec.Command[len(spec.Command)-1] = "v2"
	ensure(Replaced)
	second := state()
	if second.ID == first.ID || second.SpecHash != spec.Hash() || second.State != "running" {
		t.Errorf("after replace: %+v (first id %s), want a new running container with hash %s", second, first.ID, spec.Hash())
	}
	logs, err := d.Logs(ctx, vm, name, 5)
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if !strings.Contains(string(logs), "started v2") {
		t.Errorf("logs = %q, want the new container's first line", logs)
	}
	ensure(Unchanged)

	// Removal, twice: the second is a no-op.
	for range 2 {
		if err := d.RemoveContainer(ctx, vm, name); err != nil {
			t.Fatalf("RemoveContainer: %v", err)
		}
		if err := d.RemoveVolume(ctx, vm, spec.Volume); err != nil {
			t.Fatalf("RemoveVolume: %v", err)
		}
	}
	obs = observe.ObserveVM(ctx, ex, vm)
	if !obs.Reached || len(obs.Containers) != 0 || len(obs.Volumes) != 0 {
		t.Errorf("after removal ObserveVM = %+v, want nothing", obs)
	}

	want := map[string]int{OpVolumeCreate: 1, OpRun: 2, OpStop: 3, OpStart: 1, OpRemove: 2, OpExec: 1, OpVolumeRemove: 1}
	if d := cmp.Diff(want, d.Mutations()); d != "" {
		t.Errorf("Mutations (-want +got):\n%s", d)
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	if len(hooked) != d.MutationCount() || !strings.HasPrefix(hooked[0], vm+":") {
		t.Errorf("hook saw %v, want %d calls for %s", hooked, d.MutationCount(), vm)
	}
	if ex.Dials() != 1 {
		t.Errorf("Dials = %d, want 1 for the whole test", ex.Dials())
	}
}
