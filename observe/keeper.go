package observe

// What a node's pg_autoctl keeps in its volume, read through the Docker
// engine's archive API (the files docker cp copies), so that nothing
// starts in the container: the monitor its config names, and its state
// file. While a cluster's monitor is replaced, these are the only record
// of which monitor each node follows and what it last was.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"
)

// KeeperMonitorDisabled is what pg_autoctl.cfg's pg_autoctl.monitor holds
// after `pg_autoctl disable monitor` (pg_auto_failover's
// PG_AUTOCTL_MONITOR_DISABLED).
const KeeperMonitorDisabled = "PG_AUTOCTL_DISABLED"

// KeeperRecreateFile is the file, in a node's $XDG_CONFIG_HOME, where the
// reconciler records the monitor.recreate token of the monitor it moved
// the node to.
const KeeperRecreateFile = "pgaf-monitor-recreate"

// Keeper is a node's pg_autoctl as its files show it.
type Keeper struct {
	// Error says what could not be read ("" when both files were).
	Error string `json:"error,omitempty"`
	// Monitor is pg_autoctl.monitor of pg_autoctl.cfg: the monitor URI the
	// keeper follows, or KeeperMonitorDisabled.
	Monitor string `json:"monitor,omitempty"`
	// NodeID, CurrentRole and AssignedRole are from pg_autoctl.state: the
	// node id the last monitor issued, the state the keeper is in, and the
	// state that monitor last assigned (pg_auto_failover's state names).
	NodeID       int64  `json:"node_id,omitempty"`
	CurrentRole  string `json:"current_role,omitempty"`
	AssignedRole string `json:"assigned_role,omitempty"`
	// Recreate is the monitor.recreate token of the monitor the reconciler
	// last moved the node to (KeeperRecreateFile; "" when never moved).
	Recreate string `json:"recreate,omitempty"`
}

// MonitorDisabled reports whether the keeper follows no monitor.
func (k *Keeper) MonitorDisabled() bool { return k.Monitor == KeeperMonitorDisabled }

// keeperPaths are pg_autoctl's config and state files for a container's
// environment, $XDG_CONFIG_HOME/pg_autoctl$PGDATA/pg_autoctl.cfg and
// $XDG_DATA_HOME/pg_autoctl$PGDATA/pg_autoctl.state, and the reconciler's
// $XDG_CONFIG_HOME/KeeperRecreateFile. ok is false when the environment
// names no PGDATA.
func keeperPaths(env []string) (cfg, state, recreate string, ok bool) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, found := strings.Cut(kv, "="); found {
			vars[k] = v
		}
	}
	pgdata := vars["PGDATA"]
	if pgdata == "" {
		return "", "", "", false
	}
	home := vars["HOME"]
	if home == "" {
		home = "/var/lib/postgresql"
	}
	cfgHome, dataHome := vars["XDG_CONFIG_HOME"], vars["XDG_DATA_HOME"]
	if cfgHome == "" {
		cfgHome = home + "/.config"
	}
	if dataHome == "" {
		dataHome = home + "/.local/share"
	}
	return cfgHome + "/pg_autoctl" + pgdata + "/pg_autoctl.cfg", dataHome + "/pg_autoctl" + pgdata + "/pg_autoctl.state", cfgHome + "/" + KeeperRecreateFile, true
}

// readKeepers fills Keeper for the node containers whose monitor does not
// know them: every node of a cluster whose monitor was not reached, and
// each node its monitor does not list. Those are the nodes a monitor's
// replacement moves; the others report to the monitor that answers. The
// engine's archive API costs about 0.1 s a file on the lab, too much for
// every node of every observation. Each VM's reads share one engine
// session; VMs and containers are read in parallel, bounded by timeout.
func readKeepers(ctx context.Context, d Dialer, obs *Observation, timeout time.Duration) {
	listed := map[string]map[string]bool{} // by cluster: the node names its monitor lists; nil when not reached
	for _, c := range obs.Clusters {
		if !c.Monitor.Reached {
			continue
		}
		listed[c.Name] = map[string]bool{}
		for _, n := range c.Monitor.Nodes {
			listed[c.Name][n.Name] = true
		}
	}
	var wg sync.WaitGroup
	for i := range obs.VMs {
		vm := &obs.VMs[i]
		var want []*Container
		for j := range vm.Containers {
			if ct := &vm.Containers[j]; ct.Role == RoleNode && ct.ID != "" {
				if names, ok := listed[ct.Cluster]; !ok || !names[ct.Node] {
					want = append(want, ct)
				}
			}
		}
		if !vm.Reached || len(want) == 0 {
			continue
		}
		wg.Go(func() {
			vctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			e := newEngine(d, vm.Name)
			defer e.close()
			var cw sync.WaitGroup
			for _, ct := range want {
				cw.Go(func() {
					_ = guard(func() error {
						var ic inspectContainer
						if err := e.getJSON(vctx, "/containers/"+url.PathEscape(ct.ID)+"/json", nil, &ic); err != nil {
							ct.Keeper = &Keeper{Error: err.Error()}
							return nil
						}
						ct.Keeper = e.keeper(vctx, ct.ID, ic.Config.Env)
						return nil
					})
				})
			}
			cw.Wait()
		})
	}
	wg.Wait()
}

// keeper reads a node container's pg_autoctl files. A node that has not
// written them yet (a container still initialising) gives nil.
func (e *engine) keeper(ctx context.Context, id string, env []string) *Keeper {
	cfgPath, statePath, recreatePath, ok := keeperPaths(env)
	if !ok {
		return nil
	}
	k := &Keeper{}
	var errs []string
	cfg, err := e.file(ctx, id, cfgPath)
	switch {
	case errors.Is(err, errNotFound):
		return nil
	case err != nil:
		errs = append(errs, err.Error())
	default:
		k.Monitor = iniValue(cfg, "pg_autoctl", "monitor")
	}
	if st, err := e.file(ctx, id, statePath); err == nil {
		if err := k.parseState(st); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", statePath, err))
		}
	} else if !errors.Is(err, errNotFound) {
		errs = append(errs, err.Error())
	}
	if tok, err := e.file(ctx, id, recreatePath); err == nil {
		k.Recreate = strings.TrimSuffix(string(tok), "\n")
	} else if !errors.Is(err, errNotFound) {
		errs = append(errs, err.Error())
	}
	k.Error = strings.Join(errs, "; ")
	return k
}

// file returns one regular file of a container (GET
// /containers/{id}/archive, a tar stream holding it).
func (e *engine) file(ctx context.Context, id, path string) ([]byte, error) {
	body, err := e.get(ctx, "/containers/"+url.PathEscape(id)+"/archive", url.Values{"path": {path}})
	if err != nil {
		return nil, err
	}
	return untarOne(body)
}

// untarOne returns the first regular file of a tar stream.
func untarOne(b []byte) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("archive holds no regular file")
		}
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

// iniValue returns key of section in pg_autoctl's INI format ("" when
// absent).
func iniValue(b []byte, section, key string) string {
	in := false
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			in = line[1:len(line)-1] == section
			continue
		}
		if k, v, ok := strings.Cut(line, "="); in && ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// keeperStates are pg_auto_failover's NodeState values, in the order of
// its enum (state.h), by value.
var keeperStates = []string{"unknown", "init", "single", "primary", "wait_primary", "wait_standby", "demoted",
	"demote_timeout", "draining", "secondary", "catchingup", "prepare_promotion", "stop_replication",
	"maintenance", "join_primary", "apply_settings", "prepare_maintenance", "wait_maintenance",
	"report_lsn", "fast_forward", "join_secondary", "dropped"}

// Offsets in pg_autoctl.state, pg_auto_failover's KeeperStateData as a
// 64-bit little-endian build lays it out (its fields are never reordered:
// the file is read back by newer versions): int version, int pg_version,
// uint32 control version, uint32 catalog version, uint64 system
// identifier, int current_node_id, int current_group, enum assigned_role,
// (padding), uint64 nodes version, uint64 last monitor contact, enum
// current_role.
const (
	stateNodeID   = 24
	stateAssigned = 32
	stateCurrent  = 56
)

// parseState reads the node id and the roles of a pg_autoctl.state file.
func (k *Keeper) parseState(b []byte) error {
	if len(b) < stateCurrent+4 {
		return fmt.Errorf("%d bytes, too short for a keeper state", len(b))
	}
	role := func(off int) (string, error) {
		v := binary.LittleEndian.Uint32(b[off:])
		if int(v) >= len(keeperStates) {
			return "", fmt.Errorf("unknown node state %d at offset %d", v, off)
		}
		return keeperStates[v], nil
	}
	cur, err := role(stateCurrent)
	if err != nil {
		return err
	}
	asg, err := role(stateAssigned)
	if err != nil {
		return err
	}
	k.NodeID = int64(int32(binary.LittleEndian.Uint32(b[stateNodeID:])))
	k.CurrentRole, k.AssignedRole = cur, asg
	return nil
}
