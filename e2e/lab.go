//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Lab is the lab as lab/lab.sh wrote it to .lab/topology.json: the VMs, their
// addresses and the files an SSH client needs. Its methods are the fault
// switches; each one runs lab/lab.sh, the lab's one implementation.
type Lab struct {
	Network    string  `json:"network"`
	Subnet     string  `json:"subnet"`
	Image      string  `json:"image"` // the reference PostgreSQL image
	SSHKey     string  `json:"ssh_key"`
	KnownHosts string  `json:"known_hosts"`
	SSHConfig  string  `json:"ssh_config"`
	Desired    string  `json:"desired"`    // .lab/desired.yaml, the reference layout
	Script     string  `json:"lab_script"` // lab/lab.sh
	VMs        []LabVM `json:"vms"`
	// Dir is the directory topology.json was read from.
	Dir string `json:"-"`
}

// LabVM is one VM of the lab.
type LabVM struct {
	Name      string `json:"name"`
	Container string `json:"container"`
	Address   string `json:"address"`
	SSHPort   int    `json:"ssh_port"`
	User      string `json:"user"`
}

// LabError is a lab operation that failed, with what lab/lab.sh or ssh said.
type LabError struct {
	Op     string // "power-off", "ssh", ...
	VM     string // empty for lab-wide operations
	Output string
	Err    error
}

func (e *LabError) Error() string {
	what := "lab " + e.Op
	if e.VM != "" {
		what += " " + e.VM
	}
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("%s: %v", what, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", what, e.Err, out)
}

func (e *LabError) Unwrap() error { return e.Err }

// ErrNoLab means .lab/topology.json is missing: run `make lab-up`.
var ErrNoLab = errors.New("no lab: run make lab-up")

// LabDir finds the lab's directory: $PGAF_LAB_DIR, or .lab at the root of the
// module that holds the working directory.
func LabDir() (string, error) {
	if d := os.Getenv("PGAF_LAB_DIR"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("lab dir: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".lab"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("lab dir: no go.mod above the working directory")
		}
		dir = parent
	}
}

// LoadLab reads .lab/topology.json.
func LoadLab() (*Lab, error) {
	dir, err := LabDir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "topology.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load lab %s: %w", dir, ErrNoLab)
	}
	if err != nil {
		return nil, fmt.Errorf("load lab: %w", err)
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("load lab %s: %w", dir, err)
	}
	l.Dir = dir
	if l.Script == "" {
		l.Script = filepath.Join(filepath.Dir(dir), "lab", "lab.sh")
	}
	if len(l.VMs) == 0 {
		return nil, fmt.Errorf("load lab %s: topology lists no VMs", dir)
	}
	return &l, nil
}

// VM returns the VM called name.
func (l *Lab) VM(name string) (LabVM, error) {
	for _, vm := range l.VMs {
		if vm.Name == name {
			return vm, nil
		}
	}
	return LabVM{}, &LabError{Op: "vm", VM: name, Err: errors.New("no such VM")}
}

// VMByAddress returns the VM whose address is addr.
func (l *Lab) VMByAddress(addr string) (LabVM, error) {
	for _, vm := range l.VMs {
		if vm.Address == addr {
			return vm, nil
		}
	}
	return LabVM{}, &LabError{Op: "vm", VM: addr, Err: errors.New("no VM has this address")}
}

// script runs lab/lab.sh with args and returns its combined output.
func (l *Lab) script(ctx context.Context, op, vm string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, l.Script, args...)
	cmd.Env = append(os.Environ(), "LAB_DIR="+l.Dir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), &LabError{Op: op, VM: vm, Output: out.String(), Err: err}
	}
	return out.String(), nil
}

func (l *Lab) vmOp(ctx context.Context, op, vm string) error {
	if _, err := l.VM(vm); err != nil {
		return err
	}
	_, err := l.script(ctx, op, vm, op, vm)
	return err
}

// PowerOff kills the VM's container and every container of that VM at once,
// as a power cut would.
func (l *Lab) PowerOff(ctx context.Context, vm string) error { return l.vmOp(ctx, "power-off", vm) }

// PowerOn starts the VM again, then the containers that its Docker engine
// would restart at boot (restart policy always, or unless-stopped for those
// that were running at power-off).
func (l *Lab) PowerOn(ctx context.Context, vm string) error { return l.vmOp(ctx, "power-on", vm) }

// Disconnect cuts the VM off the lab network; its containers lose it too.
func (l *Lab) Disconnect(ctx context.Context, vm string) error {
	return l.vmOp(ctx, "disconnect", vm)
}

// Reconnect puts the VM back on the lab network with its own address.
func (l *Lab) Reconnect(ctx context.Context, vm string) error { return l.vmOp(ctx, "reconnect", vm) }

// Partition drops every packet between the VM and the other VMs (iptables
// DROP in its network namespace: peers see timeouts, as behind a dead
// switch); the machine, where tests and applications run, still reaches it.
func (l *Lab) Partition(ctx context.Context, vm string) error { return l.vmOp(ctx, "partition", vm) }

// Heal removes the VM's partition.
func (l *Lab) Heal(ctx context.Context, vm string) error { return l.vmOp(ctx, "heal", vm) }

// Rekey gives the VM a new sshd host key and leaves known_hosts alone, so
// clients with strict host-key checking must refuse it.
func (l *Lab) Rekey(ctx context.Context, vm string) error { return l.vmOp(ctx, "rekey", vm) }

// Trust writes the VM's current host key into the lab's known_hosts.
func (l *Lab) Trust(ctx context.Context, vm string) error { return l.vmOp(ctx, "trust", vm) }

// Clean removes the containers and volumes of one cluster (label
// pgaf.cluster), and nothing else: the VMs stay.
func (l *Lab) Clean(ctx context.Context, cluster string) error {
	if cluster == "" {
		return &LabError{Op: "clean", Err: errors.New("empty cluster name")}
	}
	_, err := l.script(ctx, "clean", "", "clean", cluster)
	return err
}

// Reset removes every container, volume and network the lab made or that
// carries a pgaf.* label, and the generated files under .lab/. Up builds
// the lab again.
func (l *Lab) Reset(ctx context.Context) error {
	_, err := l.script(ctx, "reset", "", "reset")
	return err
}

// Up brings the lab to its nominal state: images built, every VM running,
// connected, and reachable over SSH; .lab/ rewritten.
func (l *Lab) Up(ctx context.Context) error {
	_, err := l.script(ctx, "up", "", "up")
	return err
}

// Restore undoes every fault: each VM connected and powered on. Tests call
// it in cleanup.
func (l *Lab) Restore(ctx context.Context) error {
	var errs []error
	for _, vm := range l.VMs {
		if err := l.Reconnect(ctx, vm.Name); err != nil {
			errs = append(errs, err)
		}
		if err := l.PowerOn(ctx, vm.Name); err != nil {
			errs = append(errs, err)
		}
		if err := l.Heal(ctx, vm.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SSHCommand is `ssh -F .lab/ssh_config <vm> <remote command>`: the client
// config pins the lab's key and known_hosts with strict host-key checking.
// The remote command is one shell string, as ssh sends it.
func (l *Lab) SSHCommand(ctx context.Context, vm, remote string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", "-F", l.SSHConfig, vm, remote)
}

// SSH runs remote on vm over SSH and returns its stdout.
func (l *Lab) SSH(ctx context.Context, vm, remote string) (string, error) {
	if _, err := l.VM(vm); err != nil {
		return "", err
	}
	cmd := l.SSHCommand(ctx, vm, remote)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &LabError{Op: "ssh", VM: vm, Output: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}
