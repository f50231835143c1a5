package actuators

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// Mutating docker operations, as reported to Docker.OnMutation and counted
// by Docker.Mutations. Reads (ps, inspect, logs) are not mutations.
const (
	OpVolumeCreate = "volume-create"
	OpVolumeRemove = "volume-rm"
	OpRun          = "run"
	OpStart        = "start"
	OpStop         = "stop"
	OpRemove       = "rm"
	OpPull         = "pull"
	OpUpdate       = "update"
	OpRename       = "rename"
	// OpExec is counted as a mutation because what runs inside may change
	// state (pg_autoctl commands, ALTER SYSTEM).
	OpExec = "exec"
)

// ErrNoSuchContainer is wrapped by the driver's errors when a container
// that must exist does not.
var ErrNoSuchContainer = errors.New("no such container")

// EnsureResult says what EnsureContainerResult did.
type EnsureResult string

// Results of EnsureContainerResult.
const (
	Unchanged EnsureResult = "unchanged" // running (or restarting) with the desired spec hash
	Created   EnsureResult = "created"   // it was absent: run
	Started   EnsureResult = "started"   // right hash but stopped: start
	Replaced  EnsureResult = "replaced"  // another hash: stop, rm, run
)

// InputRunner is a Runner that can also feed a command's standard input
// (SSHExecutor is one).
type InputRunner interface {
	observe.Runner
	RunInput(ctx context.Context, vm string, argv []string, stdin io.Reader) ([]byte, error)
}

// Docker drives the docker CLI on VMs through a Runner: idempotent
// operations that look before they act. Every mutating command is counted
// and reported to OnMutation before it runs, so that a converged cycle can
// be shown to have changed nothing. Safe for concurrent use (set the
// fields before first use).
type Docker struct {
	r observe.Runner
	// StopTimeout is the grace `docker stop` gives a container before it
	// kills it (default 60s: PostgreSQL shuts down cleanly).
	StopTimeout time.Duration
	// OnMutation, when set, is called with the VM and the op (OpRun, ...)
	// before each mutating docker command.
	OnMutation func(vm, op string)

	mu     sync.Mutex
	counts map[string]int
}

// NewDocker returns a driver that runs docker through r.
func NewDocker(r observe.Runner) *Docker {
	return &Docker{r: r, StopTimeout: 60 * time.Second, counts: map[string]int{}}
}

// Mutations returns how many mutating docker commands ran (or were
// attempted), by op.
func (d *Docker) Mutations() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.counts)
}

// MutationCount returns the total of Mutations.
func (d *Docker) MutationCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.counts {
		n += c
	}
	return n
}

// count records a mutation and reports it to OnMutation.
func (d *Docker) count(vm, op string) {
	d.mu.Lock()
	d.counts[op]++
	hook := d.OnMutation
	d.mu.Unlock()
	if hook != nil {
		hook(vm, op)
	}
}

func (d *Docker) mutate(ctx context.Context, vm, op, object string, argv []string) ([]byte, error) {
	d.count(vm, op)
	out, err := d.r.Run(ctx, vm, argv)
	if err != nil {
		return out, &DockerError{VM: vm, Op: op, Object: object, Err: err}
	}
	return out, nil
}

func (d *Docker) stopSeconds() string {
	t := d.StopTimeout
	if t <= 0 {
		t = 60 * time.Second
	}
	return strconv.Itoa(int((t + time.Second - 1) / time.Second))
}

// ContainerInfo is what the driver reads about one container.
type ContainerInfo struct {
	Name     string
	ID       string
	State    string // created, running, restarting, paused, exited, dead, removing
	SpecHash string // the pgaf.spec-hash label
}

// Container looks a container up by exact name; ok is false when it does
// not exist.
func (d *Docker) Container(ctx context.Context, vm, name string) (info ContainerInfo, ok bool, err error) {
	out, err := d.r.Run(ctx, vm, []string{"docker", "ps", "-a", "--no-trunc",
		"--filter", "name=^/" + name + "$",
		"--format", `{{.Names}}	{{.ID}}	{{.State}}	{{.Label "` + observe.LabelSpecHash + `"}}`})
	if err != nil {
		return info, false, &DockerError{VM: vm, Op: "ps", Object: name, Err: err}
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 4 && f[0] == name { // the filter is a regex: check exactly
			return ContainerInfo{Name: f[0], ID: f[1], State: f[2], SpecHash: f[3]}, true, nil
		}
	}
	return info, false, nil
}

// VolumeExists reports whether a volume of exactly that name exists.
func (d *Docker) VolumeExists(ctx context.Context, vm, name string) (bool, error) {
	out, err := d.r.Run(ctx, vm, []string{"docker", "volume", "ls", "-q", "--filter", "name=^" + name + "$"})
	if err != nil {
		return false, &DockerError{VM: vm, Op: "volume-ls", Object: name, Err: err}
	}
	return slices.Contains(strings.Split(string(out), "\n"), name), nil
}

// EnsureVolume creates the volume with labels if it does not exist. An
// existing volume is left alone whatever its labels (volumes hold data:
// replacing one is the planner's decision, through RemoveVolume).
func (d *Docker) EnsureVolume(ctx context.Context, vm, name string, labels map[string]string) error {
	ok, err := d.VolumeExists(ctx, vm, name)
	if err != nil || ok {
		return err
	}
	argv := []string{"docker", "volume", "create"}
	for _, k := range reconcile.SortedKeys(labels) {
		argv = append(argv, "--label", k+"="+labels[k])
	}
	argv = append(argv, name)
	_, err = d.mutate(ctx, vm, OpVolumeCreate, name, argv)
	return err
}

// VolumeLabels are the labels of a spec's volume: managed, VM, cluster,
// node and rebuild token (not the role or the spec hash: the volume
// outlives containers).
func VolumeLabels(spec reconcile.ContainerSpec) map[string]string {
	m := map[string]string{}
	for _, k := range []string{observe.LabelManaged, observe.LabelVM, observe.LabelCluster, observe.LabelNode, observe.LabelRebuild} {
		if v, ok := spec.Labels[k]; ok {
			m[k] = v
		}
	}
	return m
}

// RunArgs is the `docker run` command of a spec. The spec-hash label is
// always spec.Hash(), whatever spec.Labels says.
func RunArgs(spec reconcile.ContainerSpec) []string {
	argv := []string{"docker", "run", "--detach", "--name", spec.Name}
	if spec.Network != "" {
		argv = append(argv, "--network", spec.Network)
	}
	if spec.User != "" {
		argv = append(argv, "--user", spec.User)
	}
	if spec.Restart != "" {
		argv = append(argv, "--restart", spec.Restart)
	}
	if spec.Volume != "" {
		argv = append(argv, "--mount", "type=volume,src="+spec.Volume+",dst="+spec.Mount)
	}
	for _, t := range spec.Tmpfs {
		argv = append(argv, "--tmpfs", t)
	}
	for _, k := range reconcile.SortedKeys(spec.Env) {
		argv = append(argv, "--env", k+"="+spec.Env[k])
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[observe.LabelSpecHash] = spec.Hash()
	for _, k := range reconcile.SortedKeys(labels) {
		argv = append(argv, "--label", k+"="+labels[k])
	}
	argv = append(argv, spec.Image)
	return append(argv, spec.Command...)
}

// EnsureContainer makes the spec's container run; see EnsureContainerResult.
func (d *Docker) EnsureContainer(ctx context.Context, spec reconcile.ContainerSpec) error {
	_, err := d.EnsureContainerResult(ctx, spec)
	return err
}

// EnsureContainerResult makes the spec's container run, and says what it did:
//   - absent: docker run (its volume must exist: see EnsureVolume; docker
//     would otherwise create an unlabelled one);
//   - its pgaf.spec-hash label equals spec.Hash(): left alone if running,
//     restarting or paused, started if created or exited;
//   - another hash (or dead): stopped with StopTimeout's grace, removed, run.
//
// Before anything is stopped or run, the spec's image must be on the VM
// (docker image inspect) or be pulled there: a tag that does not exist or
// cannot be pulled fails the step with the container still running as it
// was, never a node left without one mid-upgrade.
//
// Only the hash label decides a replacement, never a comparison of
// docker inspect output. A converged container costs one read and no
// mutation.
func (d *Docker) EnsureContainerResult(ctx context.Context, spec reconcile.ContainerSpec) (EnsureResult, error) {
	vm, name := spec.VM, spec.Name
	want := spec.Hash()
	info, ok, err := d.Container(ctx, vm, name)
	if err != nil {
		return "", err
	}
	if ok && info.SpecHash == want && info.State != "dead" && info.State != "removing" {
		switch info.State {
		case "running", "restarting", "paused":
			return Unchanged, nil
		default: // created, exited
			if _, err := d.mutate(ctx, vm, OpStart, name, []string{"docker", "start", name}); err != nil {
				return "", err
			}
			return Started, nil
		}
	}
	if spec.Volume != "" {
		exists, err := d.VolumeExists(ctx, vm, spec.Volume)
		if err != nil {
			return "", err
		}
		if !exists {
			return "", &DockerError{VM: vm, Op: OpRun, Object: name, Err: fmt.Errorf("volume %s does not exist (ensure it first)", spec.Volume)}
		}
	}
	if err := d.ensureImage(ctx, vm, name, spec.Image); err != nil {
		return "", err
	}
	result := Created
	if ok {
		result = Replaced
		if err := d.stopAndRemove(ctx, vm, info); err != nil {
			return "", err
		}
	}
	if _, err := d.mutate(ctx, vm, OpRun, name, RunArgs(spec)); err != nil {
		return "", err
	}
	return result, nil
}

// ensureImage makes image present on vm: left alone when docker image
// inspect finds it, pulled otherwise. The error names the image and says
// that nothing was stopped.
func (d *Docker) ensureImage(ctx context.Context, vm, container, image string) error {
	if _, err := d.r.Run(ctx, vm, []string{"docker", "image", "inspect", "--format", "{{.Id}}", image}); err == nil {
		return nil
	} else if !isNoSuchImage(err) {
		return &DockerError{VM: vm, Op: "image-inspect", Object: image, Err: err}
	}
	if _, err := d.mutate(ctx, vm, OpPull, image, []string{"docker", "pull", "--quiet", image}); err != nil {
		return &DockerError{VM: vm, Op: OpPull, Object: image, Err: fmt.Errorf("image %s is not on %s and cannot be pulled; %s was left as it was: %w", image, vm, container, errors.Unwrap(err))}
	}
	return nil
}

// isNoSuchImage reports whether err is docker image inspect's answer for an
// image the engine does not hold (exit status 1, "No such image").
func isNoSuchImage(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && ce.ExitStatus == 1 && strings.Contains(strings.ToLower(ce.Stderr), "no such image")
}

func (d *Docker) stopAndRemove(ctx context.Context, vm string, info ContainerInfo) error {
	if info.State == "running" || info.State == "restarting" || info.State == "paused" {
		if _, err := d.mutate(ctx, vm, OpStop, info.Name, []string{"docker", "stop", "--time", d.stopSeconds(), info.Name}); err != nil {
			return err
		}
	}
	_, err := d.mutate(ctx, vm, OpRemove, info.Name, []string{"docker", "rm", info.Name})
	return err
}

// StartContainer starts a stopped container; a running one is left alone.
// A missing one is an error wrapping ErrNoSuchContainer.
func (d *Docker) StartContainer(ctx context.Context, vm, name string) error {
	info, ok, err := d.Container(ctx, vm, name)
	if err != nil {
		return err
	}
	if !ok {
		return &DockerError{VM: vm, Op: OpStart, Object: name, Err: ErrNoSuchContainer}
	}
	if info.State == "running" || info.State == "restarting" {
		return nil
	}
	_, err = d.mutate(ctx, vm, OpStart, name, []string{"docker", "start", name})
	return err
}

// StopContainer stops a running container with StopTimeout's grace; a
// stopped or missing one is left alone.
func (d *Docker) StopContainer(ctx context.Context, vm, name string) error {
	info, ok, err := d.Container(ctx, vm, name)
	if err != nil || !ok {
		return err
	}
	if info.State != "running" && info.State != "restarting" && info.State != "paused" {
		return nil
	}
	_, err = d.mutate(ctx, vm, OpStop, name, []string{"docker", "stop", "--time", d.stopSeconds(), name})
	return err
}

// FenceContainer fences a container for good, keeping it and its volume:
// its restart policy set to no (neither dockerd nor a VM's reboot starts it
// again), stopped with StopTimeout's grace, and renamed to fenced (so that
// nothing that acts by its name finds it). A container already renamed is
// left alone; one missing under both names is an error wrapping
// ErrNoSuchContainer.
func (d *Docker) FenceContainer(ctx context.Context, vm, name, fenced string) error {
	info, ok, err := d.Container(ctx, vm, name)
	if err != nil {
		return err
	}
	if !ok {
		if _, done, err := d.Container(ctx, vm, fenced); err != nil || done {
			return err
		}
		return &DockerError{VM: vm, Op: OpRename, Object: name, Err: ErrNoSuchContainer}
	}
	if _, err := d.mutate(ctx, vm, OpUpdate, name, []string{"docker", "update", "--restart=no", name}); err != nil {
		return err
	}
	if info.State == "running" || info.State == "restarting" || info.State == "paused" {
		if _, err := d.mutate(ctx, vm, OpStop, name, []string{"docker", "stop", "--time", d.stopSeconds(), name}); err != nil {
			return err
		}
	}
	_, err = d.mutate(ctx, vm, OpRename, name, []string{"docker", "rename", name, fenced})
	return err
}

// RemoveContainer stops (with grace) and removes a container, keeping its
// volume. A missing container is left alone.
func (d *Docker) RemoveContainer(ctx context.Context, vm, name string) error {
	info, ok, err := d.Container(ctx, vm, name)
	if err != nil || !ok {
		return err
	}
	return d.stopAndRemove(ctx, vm, info)
}

// RemoveVolume removes a volume and its data. A missing volume is left
// alone; a volume still used by a container is an error.
func (d *Docker) RemoveVolume(ctx context.Context, vm, name string) error {
	ok, err := d.VolumeExists(ctx, vm, name)
	if err != nil || !ok {
		return err
	}
	_, err = d.mutate(ctx, vm, OpVolumeRemove, name, []string{"docker", "volume", "rm", name})
	return err
}

// Logs returns the last n lines of a container's log, stdout and stderr
// interleaved as docker logs writes them.
func (d *Docker) Logs(ctx context.Context, vm, name string, n int) ([]byte, error) {
	out, err := d.r.Run(ctx, vm, []string{"sh", "-c", `exec docker logs --tail "$1" "$2" 2>&1`, "sh", strconv.Itoa(n), name})
	if err != nil {
		return nil, &DockerError{VM: vm, Op: "logs", Object: name, Err: err}
	}
	return out, nil
}

// Exec runs argv inside a running container as the postgres user and
// returns its standard output.
func (d *Docker) Exec(ctx context.Context, vm, name string, argv []string) ([]byte, error) {
	return d.mutate(ctx, vm, OpExec, name, append([]string{"docker", "exec", "--user", reconcile.ContainerUser, name}, argv...))
}

// ExecInput is Exec with stdin as the command's standard input. The
// driver's Runner must implement InputRunner.
func (d *Docker) ExecInput(ctx context.Context, vm, name string, argv []string, stdin io.Reader) ([]byte, error) {
	ir, ok := d.r.(InputRunner)
	if !ok {
		return nil, &DockerError{VM: vm, Op: OpExec, Object: name, Err: errors.New("the runner cannot pass standard input")}
	}
	d.count(vm, OpExec)
	out, err := ir.RunInput(ctx, vm, append([]string{"docker", "exec", "--interactive", "--user", reconcile.ContainerUser, name}, argv...), stdin)
	if err != nil {
		return out, &DockerError{VM: vm, Op: OpExec, Object: name, Err: err}
	}
	return out, nil
}
