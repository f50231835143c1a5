package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pgaf-gitops/reconciler/desired"
	"github.com/pgaf-gitops/reconciler/observe"
)

// Paths inside every PostgreSQL container. The volume is mounted on DataMount, never on
// PGDATA itself: pg_autoctl deletes and recreates PGDATA when it initialises
// a standby.
const (
	DataMount = "/var/lib/postgres"
	PGDATA    = DataMount + "/pgaf"
	// pg_autoctl's config and state live in the volume too, or a re-created
	// container registers the node again and the monitor refuses it.
	XDGConfigHome = DataMount + "/config"
	XDGDataHome   = DataMount + "/share"
	// The pid file lives on tmpfs, or a restarted container finds a stale
	// pid file naming PID 1 and exits with "already running".
	RuntimeDir = "/tmp/pgaf-run"
	// ContainerUser is the non-root user of the image; pg_autoctl refuses root.
	ContainerUser = "postgres"
)

// ContainerSpec is everything `docker run` needs for one monitor or node.
// Its Hash is stored as a label; a container whose label differs from the
// desired spec's hash is replaced.
type ContainerSpec struct {
	Name    string            `json:"name"`
	VM      string            `json:"vm"`
	Image   string            `json:"image"`
	Network string            `json:"network"`
	User    string            `json:"user"`
	Restart string            `json:"restart"`
	Volume  string            `json:"volume"`
	Mount   string            `json:"mount"`
	Tmpfs   []string          `json:"tmpfs"`
	Env     map[string]string `json:"env"`
	Labels  map[string]string `json:"labels"`
	Command []string          `json:"command"`
}

// Hash is a short, stable digest of the spec, excluding the hash label
// itself and the rebuild token (a new token re-creates the volume anyway).
// Every field is written length-prefixed, maps in key order, so no two
// different specs share an encoding.
func (s ContainerSpec) Hash() string {
	buf := make([]byte, 0, 1024)
	str := func(v string) {
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	list := func(vs []string) {
		str(strconv.Itoa(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	dict := func(m map[string]string, skip ...string) {
		keys := SortedKeys(m)
		keys = slices.DeleteFunc(keys, func(k string) bool { return slices.Contains(skip, k) })
		str(strconv.Itoa(len(keys)))
		for _, k := range keys {
			str(k)
			str(m[k])
		}
	}
	str("pgaf-spec-v1")
	for _, v := range []string{s.Name, s.VM, s.Image, s.Network, s.User, s.Restart, s.Volume, s.Mount} {
		str(v)
	}
	list(s.Tmpfs)
	dict(s.Env)
	dict(s.Labels, observe.LabelSpecHash, observe.LabelRebuild)
	list(s.Command)
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

// VolumeName is the volume of a cluster member ("monitor" or a node name).
func VolumeName(cluster, member string) string { return cluster + "-" + member + "-data" }

// MonitorVolumeName is the volume of a cluster's monitor. Each
// monitor.recreate token names a volume of its own, so a new monitor never
// starts on the data of an earlier one (a monitor moved away and back to
// a VM finds the volume it left there, which a fenced container holds).
// A token that is a plain name is used as it is; another is shortened to
// its digest.
func MonitorVolumeName(c *desired.Cluster) string {
	tok := c.Monitor.Recreate
	if tok == "" {
		return VolumeName(c.Name, "monitor")
	}
	if !plainToken.MatchString(tok) {
		sum := sha256.Sum256([]byte(tok))
		tok = hex.EncodeToString(sum[:4])
	}
	return c.Name + "-monitor-" + tok + "-data"
}

var plainToken = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$`)

// FencedName is the name a fenced monitor container is renamed to: it
// keeps its data and labels, and no plan starts or replaces it again.
func FencedName(c *desired.Cluster, ct *observe.Container) string {
	id := ct.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return ContainerName(c.Name, "monitor") + fencedInfix + id
}

const fencedInfix = "-fenced-"

// Fenced reports whether ct is a fenced monitor (FencedName).
func Fenced(ct *observe.Container) bool {
	return strings.HasPrefix(ct.Name, ContainerName(ct.Cluster, "monitor")+fencedInfix)
}

// ContainerName is the container of a cluster member.
func ContainerName(cluster, member string) string { return cluster + "-" + member }

// monitorTCP are the libpq TCP settings of the keepers' connections to
// the monitor: a keep-alive probe after 1 s of silence, and the connection
// dropped once sent data or a probe has gone unanswered for 1 s. Without
// them a keeper whose monitor connection dies mid-query (a partition while
// it sends LISTEN on the connection it keeps after a state notification)
// blocks in libpq until the network returns: it never runs its network
// partition check, so a partitioned primary never demotes itself. Seen on
// the lab, 1 partition in 10: the old primary's keeper logged nothing for
// the 20 s of the cut, and its PostgreSQL accepted writes for 8 s after
// the cut healed, beside the new primary. A probe or a packet
// unacknowledged for a second is an outage on the networks this runs on;
// a false alarm costs one failed monitor call, retried the next second.
var monitorTCP = [][2]string{{"keepalives_idle", "1"}, {"keepalives_interval", "1"}, {"tcp_user_timeout", "1000"}}

// MonitorURI is the connection string nodes use to reach the monitor.
func MonitorURI(st *desired.State, c *desired.Cluster) string {
	vm := findVM(st, c.Monitor.VM)
	host := ""
	if vm != nil {
		host = vm.Address
	}
	q := url.Values{}
	q.Set("sslmode", c.SSLMode())
	for _, kv := range monitorTCP {
		q.Set(kv[0], kv[1])
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("autoctl_node"),
		Host:     net.JoinHostPort(host, strconv.Itoa(c.Monitor.Port)),
		Path:     "/pg_auto_failover",
		RawQuery: q.Encode(),
	}
	return u.String()
}

func findVM(st *desired.State, name string) *desired.VM {
	for i := range st.VMs {
		if st.VMs[i].Name == name {
			return &st.VMs[i]
		}
	}
	return nil
}

func baseSpec(st *desired.State, c *desired.Cluster, member, role, vmName, image string) ContainerSpec {
	vm := findVM(st, vmName)
	network := "host"
	if vm != nil && vm.DockerNetwork != "" {
		network = vm.DockerNetwork
	}
	return ContainerSpec{
		Name:    ContainerName(c.Name, member),
		VM:      vmName,
		Image:   image,
		Network: network,
		User:    ContainerUser,
		Restart: "unless-stopped",
		Volume:  VolumeName(c.Name, member),
		Mount:   DataMount,
		Tmpfs:   []string{"/tmp"},
		Env: map[string]string{
			"PGDATA":          PGDATA,
			"XDG_CONFIG_HOME": XDGConfigHome,
			"XDG_DATA_HOME":   XDGDataHome,
			"XDG_RUNTIME_DIR": RuntimeDir,
		},
		Labels: map[string]string{
			observe.LabelManaged: "true",
			observe.LabelVM:      vmName,
			observe.LabelCluster: c.Name,
			observe.LabelNode:    member,
			observe.LabelRole:    role,
		},
	}
}

func authArgs(c *desired.Cluster) []string {
	args := []string{"--auth", c.Auth}
	if c.SSL == "self-signed" {
		args = append(args, "--ssl-self-signed")
	} else {
		args = append(args, "--no-ssl")
	}
	return args
}

// MonitorSpec is the container spec of a cluster's monitor.
func MonitorSpec(st *desired.State, c *desired.Cluster) ContainerSpec {
	img := c.Monitor.Image
	if img == "" {
		img = c.Image
	}
	s := baseSpec(st, c, "monitor", observe.RoleMonitor, c.Monitor.VM, img)
	s.Volume = MonitorVolumeName(c)
	host := ""
	if vm := findVM(st, c.Monitor.VM); vm != nil {
		host = vm.Address
	}
	s.Command = append([]string{"pg_autoctl", "create", "monitor",
		"--pgdata", PGDATA,
		"--hostname", host,
		"--pgport", strconv.Itoa(c.Monitor.Port),
	}, authArgs(c)...)
	s.Command = append(s.Command, "--run")
	if c.Monitor.Recreate != "" {
		s.Labels[observe.LabelRebuild] = c.Monitor.Recreate // kept on the new volume: once per token
	}
	s.Labels[observe.LabelSpecHash] = s.Hash()
	return s
}

// NodeSpec is the container spec of one node. Candidate priority and
// replication quorum are not in it: they are set through the monitor, so
// changing them never restarts a container.
func NodeSpec(st *desired.State, c *desired.Cluster, n *desired.Node) ContainerSpec {
	s := baseSpec(st, c, n.Name, observe.RoleNode, n.VM, c.Image)
	host := ""
	if vm := findVM(st, n.VM); vm != nil {
		host = vm.Address
	}
	s.Command = append([]string{"pg_autoctl", "create", "postgres",
		"--pgdata", PGDATA,
		"--monitor", MonitorURI(st, c),
		"--hostname", host,
		"--pgport", strconv.Itoa(n.Port),
		"--name", n.Name,
		"--formation", c.Formation,
		"--dbname", c.Database,
	}, authArgs(c)...)
	s.Command = append(s.Command, "--run")
	if len(c.ClientNetworks) > 0 {
		// The image's entrypoint admits these networks in pg_hba.conf (the
		// rules pg_autoctl writes admit only the cluster's nodes).
		s.Env["PGAF_CLIENT_NETWORKS"] = strings.Join(c.ClientNetworks, ",")
		s.Env["PGAF_CLIENT_AUTH"] = c.Auth
	}
	if len(c.KeeperSettings) > 0 {
		// The image's entrypoint applies these with pg_autoctl config set.
		kv := make([]string, 0, len(c.KeeperSettings))
		for _, k := range SortedKeys(c.KeeperSettings) {
			kv = append(kv, k+"="+c.KeeperSettings[k])
		}
		s.Env["PGAF_KEEPER_SETTINGS"] = strings.Join(kv, " ")
	}
	if n.Rebuild != "" {
		s.Labels[observe.LabelRebuild] = n.Rebuild
	}
	s.Labels[observe.LabelSpecHash] = s.Hash()
	return s
}

// SortedKeys returns m's keys in order.
func SortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// restartParameters are PostgreSQL 15's parameters of context postmaster
// (select name from pg_settings where context = 'postmaster'): a new value
// takes effect only after the server restarts. A live observation carries
// each server's own list (observe.Postgres.RestartOnly), which the plan
// uses; this one stands in only for an observation without it (a recorded
// fixture). The restart itself is decided by what each server reports
// (pg_settings.pending_restart).
var restartParameters = []string{
	"archive_mode", "autovacuum_freeze_max_age", "autovacuum_max_workers", "autovacuum_multixact_freeze_max_age",
	"bonjour", "bonjour_name", "cluster_name", "config_file", "data_directory", "data_sync_retry",
	"dynamic_shared_memory_type", "event_source", "external_pid_file", "hba_file", "hot_standby",
	"huge_page_size", "huge_pages", "ident_file", "ignore_invalid_pages", "jit_provider", "listen_addresses",
	"logging_collector", "max_connections", "max_files_per_process", "max_locks_per_transaction",
	"max_logical_replication_workers", "max_pred_locks_per_transaction", "max_prepared_transactions",
	"max_replication_slots", "max_wal_senders", "max_worker_processes", "min_dynamic_shared_memory",
	"old_snapshot_threshold", "pg_stat_statements.max", "port", "recovery_target", "recovery_target_action",
	"recovery_target_inclusive", "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
	"recovery_target_timeline", "recovery_target_xid", "shared_buffers", "shared_memory_type",
	"shared_preload_libraries", "superuser_reserved_connections", "track_activity_query_size",
	"track_commit_timestamp", "unix_socket_directories", "unix_socket_group", "unix_socket_permissions",
	"wal_buffers", "wal_decode_buffer_size", "wal_level", "wal_log_hints",
}

// needsRestart reports whether parameter name takes effect only after pg
// restarts: by the server's own list when it reported one, by PostgreSQL
// 15's otherwise.
func needsRestart(pg *observe.Postgres, name string) bool {
	list := restartParameters
	if pg != nil && len(pg.RestartOnly) > 0 {
		list = pg.RestartOnly
	}
	return slices.Contains(list, strings.ToLower(name))
}
