package desired

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// nameRE is the rule for VM, cluster, node and formation names. Container
// and volume names are built as CLUSTER-MEMBER[-data], so names are safe in
// Docker names, in labels, in pg_auto_failover node and formation names and
// in SQL and shell arguments without quoting: a lowercase letter, then
// lowercase letters, digits and '-', not ending with '-', 1 to 31
// characters.
var nameRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,29}[a-z0-9])?$`)

const nameRule = "must start with a lowercase letter, contain only lowercase letters, digits and '-', not end with '-', and be at most 31 characters"

// sshUserRE admits the usual Unix account names and nothing an ssh command
// line could take for an option.
var sshUserRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}$`)

// containerNameRE is Docker's rule for container names.
var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// hostLabelRE is one label of an RFC 1123 host name.
var hostLabelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// imageRE is a Docker image reference, after the grammar of
// distribution/reference: [host[:port]/]path[:tag][@digest].
var imageRE = regexp.MustCompile(`^` +
	`(?:((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?)/)?` +
	`([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)` +
	`(?::([a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}))?` +
	`(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$`)

// gucNameRE is a PostgreSQL parameter name: an identifier, or a
// custom "prefix.name".
var gucNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// PgAutoFailoverVersion is the pg_auto_failover release the tables and
// timing constants of this file were read from and measured against, the
// one the image installs (image/postgres): monitorGUCs, managedParameters,
// keeperSettings and the keeper's partition timing (KeeperFirstCheckMS and
// the rest). A new pg_auto_failover release means reading them again.
const PgAutoFailoverVersion = "2.0"

// monitorGUC is one pgautofailover.* setting of the monitor, with the range
// the monitor accepts (src/monitor/pg_auto_failover.c of
// PgAutoFailoverVersion).
type monitorGUC struct {
	isBool  bool
	min     int64
	max     int64
	meaning string
}

const intMax = 1<<31 - 1

var monitorGUCs = map[string]monitorGUC{
	"enable_version_checks":             {isBool: true},
	"enable_health_checks":              {isBool: true},
	"health_check_period":               {min: 1, max: intMax, meaning: "milliseconds"},
	"health_check_timeout":              {min: 1, max: intMax, meaning: "milliseconds"},
	"health_check_max_retries":          {min: 1, max: 100, meaning: "retries"},
	"health_check_retry_delay":          {min: 1, max: intMax, meaning: "milliseconds"},
	"enable_sync_wal_log_threshold":     {min: 1, max: intMax, meaning: "bytes"},
	"promote_wal_log_threshold":         {min: 1, max: intMax, meaning: "bytes"},
	"primary_demote_timeout":            {min: 1, max: intMax, meaning: "milliseconds"},
	"node_considered_unhealthy_timeout": {min: 1, max: intMax, meaning: "milliseconds"},
	"startup_grace_period":              {min: 1, max: intMax, meaning: "milliseconds"},
}

// managedParameters are PostgreSQL parameters that pg_autoctl sets itself
// (src/bin/pg_autoctl/primary_standby.c and pgctl.c, PgAutoFailoverVersion)
// or that this reconciler derives from other fields. Setting them with
// ALTER SYSTEM would override pg_autoctl and break replication or failover.
var managedParameters = map[string]string{
	"port":                      "pg_autoctl sets it from the node's port",
	"listen_addresses":          "pg_autoctl sets it so the node listens on its VM's address",
	"data_directory":            "the data directory is fixed by the container layout",
	"config_file":               "the configuration files are managed by pg_autoctl",
	"hba_file":                  "pg_hba.conf is managed by pg_autoctl (use client_networks to admit applications)",
	"ident_file":                "the configuration files are managed by pg_autoctl",
	"primary_conninfo":          "pg_autoctl sets it when it sets up replication",
	"primary_slot_name":         "pg_autoctl sets it when it sets up replication",
	"standby_mode":              "pg_autoctl sets it when it sets up replication",
	"recovery_target":           "pg_autoctl sets the recovery targets itself",
	"recovery_target_action":    "pg_autoctl sets the recovery targets itself",
	"recovery_target_inclusive": "pg_autoctl sets the recovery targets itself",
	"recovery_target_lsn":       "pg_autoctl sets the recovery targets itself",
	"recovery_target_name":      "pg_autoctl sets the recovery targets itself",
	"recovery_target_time":      "pg_autoctl sets the recovery targets itself",
	"recovery_target_timeline":  "pg_autoctl sets the recovery targets itself",
	"recovery_target_xid":       "pg_autoctl sets the recovery targets itself",
	"synchronous_standby_names": "the monitor computes it from number_sync_standbys and each node's replication_quorum",
	"hot_standby":               "pg_autoctl needs it on so standbys serve reads and report their state",
	"wal_log_hints":             "pg_autoctl needs it on so pg_rewind can bring an old primary back",
	"wal_level":                 "pg_autoctl sets it to replica for streaming replication (only logical is accepted here)",
	"ssl":                       "use the cluster's ssl option",
	"ssl_cert_file":             "use the cluster's ssl option",
	"ssl_key_file":              "use the cluster's ssl option",
	"ssl_ca_file":               "use the cluster's ssl option",
	"ssl_crl_file":              "use the cluster's ssl option",
}

// validate checks the defaulted state in l.st. It skips values that failed
// to decode (l.bad): their problem is already reported.
func (l *loader) validate() {
	vms := l.validateVMs()
	pl := &placements{l: l, vms: vms, listeners: map[string]placement{}, containers: map[string]placement{}}
	clusters := map[string]int{}
	for i := range l.st.Clusters {
		l.validateCluster(i, clusters, pl)
	}
	// An empty state is refused only when nothing else is wrong: with other
	// problems it is more likely unfinished, or derived from them.
	if len(l.st.Clusters) == 0 && len(l.errs) == 0 {
		l.errorf(pos{File: l.firstFile}, "no clusters: a desired state must define at least one cluster (an empty state would ask to remove everything)")
	}
}

// validateVMs checks every VM and returns the index of each VM by name.
func (l *loader) validateVMs() map[string]int {
	vmByName := map[string]int{}
	addrs := map[string]string{}
	for i := range l.st.VMs {
		vm := &l.st.VMs[i]
		p := fmt.Sprintf("vms/%d", i)
		if l.checkName(vm.Name, p+"/name", "vm") {
			if j, dup := vmByName[vm.Name]; dup {
				l.errorf(l.posOf(p+"/name"), "vm %q is defined twice (first at %s)", vm.Name, l.where(fmt.Sprintf("vms/%d/name", j)))
			} else {
				vmByName[vm.Name] = i
			}
		}
		if l.required(vm.Address, p+"/address", "address", "vm") {
			if msg := checkAddress(vm.Address); msg != "" {
				l.errorf(l.posOf(p+"/address"), "address: %s", msg)
			} else if other, dup := addrs[canonAddress(vm.Address)]; dup {
				l.errorf(l.posOf(p+"/address"), "address: %s is also the address of vm %q", vm.Address, other)
			} else {
				addrs[canonAddress(vm.Address)] = vm.Name
			}
		}
		if l.required(vm.SSH.User, p+"/ssh/user", "user", "ssh") && !sshUserRE.MatchString(vm.SSH.User) {
			l.errorf(l.posOf(p+"/ssh/user"), "user: %q is not a valid account name", vm.SSH.User)
		}
		if fp := vm.SSH.HostKeyFingerprint; fp != "" && !l.bad[p+"/ssh/host_key_fingerprint"] {
			if b, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(fp, "SHA256:")); !strings.HasPrefix(fp, "SHA256:") || err != nil || len(b) != 32 {
				l.errorf(l.posOf(p+"/ssh/host_key_fingerprint"), "host_key_fingerprint: expected \"SHA256:\" and 43 base64 characters, as ssh-keygen -lf prints, got %q", fp)
			}
		}
		if dn := vm.DockerNetwork; !l.bad[p+"/docker_network"] && dn != "host" {
			name, ok := strings.CutPrefix(dn, "container:")
			if !ok || !containerNameRE.MatchString(name) {
				l.errorf(l.posOf(p+"/docker_network"), "docker_network: expected \"host\" or \"container:NAME\", got %q", dn)
			}
		}
	}
	return vmByName
}

// placements finds two PostgreSQL instances (monitors and nodes of all
// clusters) on one VM:port, and two containers with one name: container
// names must be unique on a Docker engine, and the lab shares one engine
// between its VMs.
type placements struct {
	l          *loader
	vms        map[string]int
	listeners  map[string]placement // "vm:port"
	containers map[string]placement // container name
}

// placement is the first claim on a port or a container name.
type placement struct{ what, path string }

// listen claims port on vm for what (a monitor or node).
func (pl *placements) listen(vm string, port int, what, vmPath, portPath string) {
	l := pl.l
	i, known := pl.vms[vm]
	if !known || l.bad[portPath] || l.bad[vmPath] {
		return
	}
	if port == l.st.VMs[i].SSH.Port {
		l.errorf(l.posOf(portPath), "%s: port %d on vm %q is the VM's SSH port", what, port, vm)
		return
	}
	k := vm + ":" + strconv.Itoa(port)
	if first, dup := pl.listeners[k]; dup {
		l.errorf(l.posOf(portPath), "%s: port %d on vm %q is already used by %s (at %s)", what, port, vm, first.what, l.where(first.path))
		return
	}
	pl.listeners[k] = placement{what, portPath}
}

// container claims the container name of a cluster member.
func (pl *placements) container(cluster, member, what, path string) {
	l := pl.l
	name := cluster + "-" + member
	if first, dup := pl.containers[name]; dup {
		l.errorf(l.posOf(path), "%s: its container name %q is also that of %s (at %s)", what, name, first.what, l.where(first.path))
		return
	}
	pl.containers[name] = placement{what, path}
}

// validateCluster checks cluster i; clusters maps the names seen so far to
// their index.
func (l *loader) validateCluster(i int, clusters map[string]int, pl *placements) {
	c := &l.st.Clusters[i]
	p := fmt.Sprintf("clusters/%d", i)
	nameOK := l.checkName(c.Name, p+"/name", "cluster")
	if nameOK {
		if j, dup := clusters[c.Name]; dup {
			l.errorf(l.posOf(p+"/name"), "cluster %q is defined twice (first at %s)", c.Name, l.where(fmt.Sprintf("clusters/%d/name", j)))
			nameOK = false
		} else {
			clusters[c.Name] = i
		}
	}
	label := fmt.Sprintf("cluster %q", c.Name)
	if !l.bad[p+"/formation"] && !nameRE.MatchString(c.Formation) {
		l.errorf(l.posOf(p+"/formation"), "formation: %q %s", c.Formation, nameRule)
	}
	if l.required(c.Image, p+"/image", "image", "cluster") {
		l.checkImage(c.Image, p+"/image", "image")
	}
	if c.Monitor.Image != c.Image && !l.bad[p+"/monitor/image"] {
		l.checkImage(c.Monitor.Image, p+"/monitor/image", "image")
	}
	l.checkPGName(c.Database, p+"/database", "database")
	l.checkPGName(c.User, p+"/user", "user")
	l.oneOf(c.Auth, p+"/auth", "auth", "trust", "scram-sha-256")
	l.oneOf(c.SSL, p+"/ssl", "ssl", "off", "self-signed")
	l.oneOf(c.RemovedNodeData, p+"/removed_node_data", "removed_node_data", "keep", "delete")
	if l.oneOf(c.Diverged.Policy, p+"/diverged_nodes/policy", "policy", "manual", "auto") &&
		c.Diverged.Policy == "auto" && !l.bad[p+"/diverged_nodes/grace_period"] &&
		c.Diverged.GracePeriod.Duration < minAutoGracePeriod {
		l.errorf(l.posOf(p+"/diverged_nodes/grace_period"),
			"grace_period: %s is too short for policy auto: a node may take minutes to rewind or re-clone by itself; use at least %s",
			c.Diverged.GracePeriod, minAutoGracePeriod)
	}

	if l.required(c.Monitor.VM, p+"/monitor/vm", "vm", "monitor") {
		l.knownVM(pl.vms, c.Monitor.VM, p+"/monitor/vm")
	}
	pl.listen(c.Monitor.VM, c.Monitor.Port, "the monitor of "+label, p+"/monitor/vm", p+"/monitor/port")
	if nameOK {
		pl.container(c.Name, "monitor", "the monitor of "+label, p+"/monitor")
	}

	if !l.bad[p+"/nodes"] && len(c.Nodes) < 2 {
		l.errorf(l.posOf(p+"/nodes"), "%s has %d node(s): a cluster needs at least 2 nodes, a primary and a standby", label, len(c.Nodes))
	}
	nodeByName := map[string]int{}
	quorum := 0
	for j := range c.Nodes {
		n := &c.Nodes[j]
		np := fmt.Sprintf("%s/nodes/%d", p, j)
		if l.checkName(n.Name, np+"/name", "node") {
			if n.Name == "monitor" {
				l.errorf(l.posOf(np+"/name"), "name: %q is reserved for the cluster's monitor", n.Name)
			} else if k, dup := nodeByName[n.Name]; dup {
				l.errorf(l.posOf(np+"/name"), "node %q is defined twice in %s (first at %s)", n.Name, label, l.where(fmt.Sprintf("%s/nodes/%d/name", p, k)))
			} else {
				nodeByName[n.Name] = j
				if nameOK {
					pl.container(c.Name, n.Name, fmt.Sprintf("node %q of %s", n.Name, label), np+"/name")
				}
			}
		}
		if l.required(n.VM, np+"/vm", "vm", "node") {
			l.knownVM(pl.vms, n.VM, np+"/vm")
		}
		pl.listen(n.VM, n.Port, fmt.Sprintf("node %q of %s", n.Name, label), np+"/vm", np+"/port")
		if (n.CandidatePriority < 0 || n.CandidatePriority > MaxCandidatePriority) && !l.bad[np+"/candidate_priority"] {
			l.errorf(l.posOf(np+"/candidate_priority"), "candidate_priority: %d is out of range 0..%d", n.CandidatePriority, MaxCandidatePriority)
		}
		if n.ReplicationQuorum == nil || *n.ReplicationQuorum {
			quorum++
		}
		if len(n.Rebuild) > 128 || strings.ContainsFunc(n.Rebuild, isControl) {
			l.errorf(l.posOf(np+"/rebuild"), "rebuild: must be at most 128 characters without control characters")
		}
	}
	// pg_auto_failover (FormationNumSyncStandbyIsValid) requires, for
	// number_sync_standbys N > 0, N+1 standbys in the replication quorum
	// besides the primary. Any quorum node may be primary, so N+2 quorum
	// nodes are needed.
	if ns := c.NumberSyncStandbys; ns > 0 && !l.bad[p+"/number_sync_standbys"] && !l.bad[p+"/nodes"] && ns+2 > quorum {
		l.errorf(l.posOf(p+"/number_sync_standbys"),
			"number_sync_standbys: %d needs at least %d nodes with replication_quorum true (%d standbys besides the primary), %s has %d",
			ns, ns+2, ns+1, label, quorum)
	}

	for j, cidr := range c.ClientNetworks {
		cp := fmt.Sprintf("%s/client_networks/%d", p, j)
		if msg := checkCIDR(cidr); msg != "" {
			l.errorf(l.posOf(cp), "client_networks: %s", msg)
		} else if k := slices.Index(c.ClientNetworks, cidr); k < j {
			l.errorf(l.posOf(cp), "client_networks: %s is listed twice", cidr)
		}
	}
	l.checkMonitorSettings(c.MonitorSettings, p+"/monitor_settings")
	l.checkKeeperSettings(c.KeeperSettings, p+"/keeper_settings")
	l.checkDemoteTimeout(c, p)
	l.checkParameters(c.PostgreSQLParameters, p+"/postgresql_parameters")
	if len(c.Monitor.Recreate) > 128 || strings.ContainsFunc(c.Monitor.Recreate, isControl) {
		l.errorf(l.posOf(p+"/monitor/recreate"), "recreate: must be at most 128 characters without control characters")
	}
}

// keeperSettings are the pg_autoctl.cfg settings of a keeper that
// keeper_settings may set: the timeouts (src/bin/pg_autoctl/keeper_config.c,
// PgAutoFailoverVersion), each an integer number of seconds (or retries).
// pg_autoctl reloads them without a restart (keeper_config_accept_new).
var keeperSettings = map[string]struct{ min, max int64 }{
	"timeout.network_partition_timeout":              {1, 3600},
	"timeout.prepare_promotion_catchup":              {1, 3600},
	"timeout.prepare_promotion_walreceiver":          {1, 3600},
	"timeout.postgresql_restart_failure_timeout":     {1, 3600},
	"timeout.postgresql_restart_failure_max_retries": {1, 100},
}

// DefaultNetworkPartitionTimeout is pg_autoctl's default
// timeout.network_partition_timeout, in seconds.
const DefaultNetworkPartitionTimeout = 20

// DefaultPrimaryDemoteTimeout is the monitor's default
// pgautofailover.primary_demote_timeout, in milliseconds.
const DefaultPrimaryDemoteTimeout = 30000

func (l *loader) checkKeeperSettings(m map[string]string, path string) {
	for _, k := range sortedKeys(m) {
		kp, vp := l.posOf(path+"/"+k+"#key"), l.posOf(path+"/"+k)
		r, ok := keeperSettings[k]
		if !ok {
			names := sortedKeys(keeperSettings)
			if s := closest(k, names); s != "" {
				l.errorf(kp, "keeper_settings: unknown setting %q; did you mean %q?", k, s)
			} else {
				l.errorf(kp, "keeper_settings: unknown setting %q (known: %s)", k, strings.Join(names, ", "))
			}
			continue
		}
		v := m[k]
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v || n < r.min || n > r.max {
			l.errorf(vp, "keeper_settings.%s: expected an integer in %d..%d, got %q", k, r.min, r.max, v)
		}
	}
}

// DefaultNodeConsideredUnhealthyTimeout is the monitor's default
// pgautofailover.node_considered_unhealthy_timeout, in milliseconds.
const DefaultNodeConsideredUnhealthyTimeout = 20000

// DefaultWalSenderTimeout is the wal_sender_timeout pg_autoctl sets on
// every node (primary_standby.c), in milliseconds.
const DefaultWalSenderTimeout = 30000

// DefaultWalReceiverStatusInterval is PostgreSQL's default
// wal_receiver_status_interval, in milliseconds.
const DefaultWalReceiverStatusInterval = 10000

// How pg_autoctl 2.0's keeper behaves on a primary cut off from the monitor
// and its standbys by a partition that drops packets (README, "Failover
// timing"; measured with e2e/bench/partition.sh). Its loop first times out
// connecting to the monitor (a notification connection, retried once, and
// node_active's own: about 1.1 s each behind a dropped SYN) before it runs
// its network partition check; it then checks once a loop.
const (
	// KeeperFirstCheckMS bounds the time from the cut to the keeper's first
	// partition check: about 5 s on a quiet machine, 7.5 s seen on a
	// loaded one.
	KeeperFirstCheckMS = 8000
	// KeeperCheckPeriodMS bounds the time between two partition checks
	// while the monitor does not answer (4.5 to 5 s seen).
	KeeperCheckPeriodMS = 6000
	// PostgresStopMS bounds the time from the keeper's decision to demote
	// to PostgreSQL no longer taking writes (a fast shutdown).
	PostgresStopMS = 3000
	// MonitorReportSlackMS: the monitor counts unhealthy from the node's
	// last report, which the keeper sends about every second.
	MonitorReportSlackMS = 1000
)

// checkDemoteTimeout refuses failover timing that could promote a standby
// while a partitioned primary still accepts writes. pg_autoctl 2.0's keeper
// demotes a primary cut off from the monitor and its standbys only once
// its network partition check has seen a standby in pg_stat_replication at
// least once (its state's last_secondary_contact is 0 until then, and 0
// means "never partitioned"), and then only network_partition_timeout after
// the last check that saw one. A dead standby connection stays in
// pg_stat_replication until wal_sender_timeout after the standby's last
// reply, and the standby replies at least every wal_receiver_status_interval
// (or when the primary asks, at half wal_sender_timeout). So:
//
//   - the standby must still be listed at the keeper's first check, which
//     comes up to KeeperFirstCheckMS after the cut: wal_sender_timeout -
//     min(wal_receiver_status_interval, wal_sender_timeout/2) must cover it.
//     Otherwise the primary never demotes itself (seen on the lab: "Network
//     is healthy" for a whole 60 s partition);
//   - it demotes at the latest wal_sender_timeout, network_partition_timeout
//     and KeeperCheckPeriodMS after the cut, and stops taking writes
//     PostgresStopMS later; the monitor promotes a standby no sooner than
//     node_considered_unhealthy_timeout - MonitorReportSlackMS +
//     primary_demote_timeout after it. The first must not exceed the second.
func (l *loader) checkDemoteTimeout(c *Cluster, p string) {
	type part struct {
		ms   int64
		path string
	}
	get := func(m map[string]string, key, path string, def, unit int64) (part, bool) {
		v, ok := m[key]
		if !ok {
			return part{ms: def}, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return part{}, false // reported by the setting's own check
		}
		return part{ms: n * unit, path: path + "/" + key}, true
	}
	param := func(name string, def int64) (part, bool) {
		v, ok := c.PostgreSQLParameters[name]
		if !ok {
			return part{ms: def}, true
		}
		ms, good := pgDurationMS(v)
		if !good {
			return part{}, false // reported by checkParameters, or not a duration we read
		}
		return part{ms: ms, path: p + "/postgresql_parameters/" + name}, true
	}
	unhealthy, ok1 := get(c.MonitorSettings, "node_considered_unhealthy_timeout", p+"/monitor_settings", DefaultNodeConsideredUnhealthyTimeout, 1)
	demote, ok2 := get(c.MonitorSettings, "primary_demote_timeout", p+"/monitor_settings", DefaultPrimaryDemoteTimeout, 1)
	partition, ok3 := get(c.KeeperSettings, "timeout.network_partition_timeout", p+"/keeper_settings", DefaultNetworkPartitionTimeout, 1000)
	sender, ok4 := param("wal_sender_timeout", DefaultWalSenderTimeout)
	status, ok5 := param("wal_receiver_status_interval", DefaultWalReceiverStatusInterval)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return
	}
	first := func(xs ...part) string {
		for _, x := range xs {
			if x.path != "" {
				return x.path
			}
		}
		return ""
	}
	reply := min(status.ms, sender.ms/2)
	if status.ms == 0 { // 0 disables the standby's own status messages
		reply = sender.ms / 2
	}
	if listed := sender.ms - reply; listed < KeeperFirstCheckMS {
		if at := first(sender, status); at != "" {
			l.errorf(l.posOf(at), "wal_sender_timeout - min(wal_receiver_status_interval, wal_sender_timeout/2) (%d ms) must be at least %d ms: "+
				"a partitioned primary's keeper demotes it only if its first network partition check, which comes up to %d ms after the cut, "+
				"still finds a standby connected; a dead standby connection may be dropped %d ms after the cut, and the primary would then "+
				"never demote itself (raise wal_sender_timeout, or lower wal_receiver_status_interval on the standbys)",
				listed, KeeperFirstCheckMS, KeeperFirstCheckMS, listed)
		}
		return
	}
	demotedBy := sender.ms + partition.ms + KeeperCheckPeriodMS + PostgresStopMS
	promotedAfter := unhealthy.ms - MonitorReportSlackMS + demote.ms
	if promotedAfter >= demotedBy {
		return
	}
	at := first(demote, unhealthy, partition, sender)
	if at == "" {
		return
	}
	l.errorf(l.posOf(at), "node_considered_unhealthy_timeout + primary_demote_timeout - %d ms (%d ms) must be at least wal_sender_timeout + the keepers' "+
		"timeout.network_partition_timeout + %d ms (%d ms): otherwise a standby may be promoted while a partitioned primary still accepts writes "+
		"(it counts a standby as present until wal_sender_timeout drops it, then waits network_partition_timeout, checks every %d ms and stops in %d ms)",
		MonitorReportSlackMS, promotedAfter, KeeperCheckPeriodMS+PostgresStopMS, demotedBy, KeeperCheckPeriodMS, PostgresStopMS)
}

// pgDurationMS reads a PostgreSQL time value in milliseconds: a bare
// number (milliseconds, wal_sender_timeout's unit) or a number with ms, s,
// min, h or d.
func pgDurationMS(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, false
	}
	unit := map[string]int64{"": 1, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}
	u, ok := unit[strings.TrimSpace(v[i:])]
	if !ok {
		return 0, false
	}
	return n * u, true
}

// minAutoGracePeriod is the shortest grace period allowed with the auto
// policy: pg_auto_failover repairs an old primary by itself (pg_rewind, then
// pg_basebackup), and that must be given time before a wipe.
const minAutoGracePeriod = time.Minute

// where prints the recorded place of path as FILE:LINE:COL.
func (l *loader) where(path string) string {
	p := l.posOf(path)
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// required reports an empty required field at its parent, unless the value
// was there but bad. It says whether the value is present.
func (l *loader) required(v, path, key, what string) bool {
	if l.isBad(path) {
		return false
	}
	if v == "" {
		l.errorf(l.posOf(path), "%s: %s is required", what, key)
		return false
	}
	return true
}

func (l *loader) checkName(v, path, what string) bool {
	if !l.required(v, path, "name", what) {
		return false
	}
	if !nameRE.MatchString(v) {
		l.errorf(l.posOf(path), "name: %q %s", v, nameRule)
		return false
	}
	return true
}

func (l *loader) oneOf(v, path, key string, allowed ...string) bool {
	if l.bad[path] {
		return false
	}
	if !slices.Contains(allowed, v) {
		l.errorf(l.posOf(path), "%s: expected %s, got %q", key, orList(allowed), v)
		return false
	}
	return true
}

func orList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 2 {
		return q[0] + " or " + q[1]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (l *loader) knownVM(vms map[string]int, name, path string) {
	if _, ok := vms[name]; ok || l.incomplete {
		return
	}
	names := make([]string, 0, len(vms))
	for n := range vms {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		l.errorf(l.posOf(path), "vm: %q is not defined (no vms are defined)", name)
		return
	}
	l.errorf(l.posOf(path), "vm: %q is not defined (defined: %s)", name, strings.Join(names, ", "))
}

func (l *loader) checkImage(img, path, key string) {
	m := imageRE.FindStringSubmatch(img)
	switch {
	case len(img) > 255 || m == nil:
		l.errorf(l.posOf(path), "%s: %q is not a valid image reference (such as registry.example:5000/pgaf/postgres:15-2.0)", key, img)
	case m[3] == "" && m[4] == "":
		l.errorf(l.posOf(path), "%s: %q has no tag: pin a version (such as %s:15-2.0), so that an upgrade is a commit", key, img, img)
	}
}

// checkPGName checks a database or role name: PostgreSQL truncates
// identifiers at 63 bytes, and the name goes into connection strings.
func (l *loader) checkPGName(v, path, key string) {
	if l.bad[path] {
		return
	}
	if len(v) > 63 || strings.ContainsFunc(v, isControl) {
		l.errorf(l.posOf(path), "%s: %q must be at most 63 bytes without control characters", key, v)
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkAddress accepts an IP address or an RFC 1123 host name, and returns
// what is wrong otherwise.
func checkAddress(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil {
		if ip.Zone() != "" {
			return fmt.Sprintf("%q: IPv6 zones are not supported", a)
		}
		if ip.IsUnspecified() {
			return fmt.Sprintf("%q is the unspecified address; give the VM's own address", a)
		}
		return ""
	}
	if len(a) > 253 {
		return "a host name is at most 253 characters"
	}
	labels := strings.Split(a, ".")
	for _, lb := range labels {
		if !hostLabelRE.MatchString(lb) {
			return fmt.Sprintf("%q is neither an IP address nor a valid host name (RFC 1123)", a)
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		// An all-numeric last label is a mistyped IP address, not a name.
		return fmt.Sprintf("%q is not a valid IP address", a)
	}
	return ""
}

// canonAddress makes equal addresses compare equal (::1 and 0:0::1, or
// host names in any case).
func canonAddress(a string) string {
	if ip, err := netip.ParseAddr(a); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(a)
}

func checkCIDR(s string) string {
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		if _, ipErr := netip.ParseAddr(s); ipErr == nil {
			return fmt.Sprintf("%q has no prefix length: write %s/32 for one IPv4 host or %s/128 for one IPv6 host", s, s, s)
		}
		return fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/24", s)
	}
	if pf.Addr().Zone() != "" {
		return fmt.Sprintf("%q: IPv6 zones are not supported", s)
	}
	if m := pf.Masked(); m != pf {
		return fmt.Sprintf("%q has host bits set: did you mean %s?", s, m)
	}
	return ""
}

func (l *loader) checkMonitorSettings(m map[string]string, path string) {
	for _, k := range sortedKeys(m) {
		kp, vp := l.posOf(path+"/"+k+"#key"), l.posOf(path+"/"+k)
		if rest, ok := strings.CutPrefix(k, "pgautofailover."); ok {
			l.errorf(kp, "monitor_settings: write %q without the pgautofailover. prefix", rest)
			continue
		}
		g, ok := monitorGUCs[k]
		if !ok {
			names := sortedKeys(monitorGUCs)
			if s := closest(k, names); s != "" {
				l.errorf(kp, "monitor_settings: unknown setting %q; did you mean %q?", k, s)
			} else {
				l.errorf(kp, "monitor_settings: unknown setting %q (known: %s)", k, strings.Join(names, ", "))
			}
			continue
		}
		v := m[k]
		if g.isBool {
			if !slices.Contains([]string{"on", "off", "true", "false"}, v) {
				l.errorf(vp, "monitor_settings.%s: expected on or off, got %q", k, v)
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != v || n < g.min || n > g.max {
			l.errorf(vp, "monitor_settings.%s: expected an integer number of %s in %d..%d, got %q", k, g.meaning, g.min, g.max, v)
		}
	}
}

func (l *loader) checkParameters(m map[string]string, path string) {
	for _, k := range sortedKeys(m) {
		kp, vp := l.posOf(path+"/"+k+"#key"), l.posOf(path+"/"+k)
		v := m[k]
		switch {
		case !gucNameRE.MatchString(k):
			l.errorf(kp, "postgresql_parameters: %q is not a parameter name (lowercase letters, digits, '_', and one '.' for an extension's parameters)", k)
		case strings.HasPrefix(k, "pgautofailover."):
			l.errorf(kp, "postgresql_parameters: %q is a monitor setting: put it under monitor_settings without the prefix", k)
		case k == "wal_level" && v == "logical":
			// logical includes everything replica gives pg_autoctl.
		case managedParameters[k] != "":
			l.errorf(kp, "postgresql_parameters: %s cannot be set here: %s", k, managedParameters[k])
		case strings.ContainsFunc(v, isControl) || len(v) > 4096:
			l.errorf(vp, "postgresql_parameters.%s: the value must be at most 4096 bytes without control characters", k)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
