// Package desired reads, validates and defaults the desired state of the
// PostgreSQL clusters: the YAML files that operators commit to git.
//
// Loading is strict: unknown keys, wrong types and inconsistent references
// are all reported at once as FILE:LINE:COL: message. Nothing here does I/O
// beyond reading the files it is given.
//
// The rules, beyond the schema in types.go (examples/cluster.yaml shows
// every option):
//
//   - A directory's *.yaml and *.yml files (sorted by name, not recursive,
//     hidden files skipped) form one desired state: their vms and clusters
//     lists are concatenated. An empty file, or one with only comments,
//     contributes nothing; one file may hold only one YAML document.
//   - Aliases (*name) and merge keys (<<) are refused: values are written
//     out, and an alias bomb costs nothing.
//   - Unknown keys, duplicate keys, wrong types and empty strings are
//     errors (an empty rebuild or host_key_fingerprint means none); a null
//     value means "not set" (the default applies).
//   - VM, cluster, node and formation names start with a lowercase letter,
//     then lowercase letters, digits and '-', do not end with '-', and are
//     at most 31 characters, so they are safe in Docker container and
//     volume names (CLUSTER-NODE, CLUSTER-monitor) and in pg_auto_failover.
//     A node may not be called "monitor", and no two containers may end up
//     with the same name.
//   - At least one cluster; at least two nodes per cluster; no two
//     PostgreSQL instances (monitors and nodes of all clusters) on one
//     VM:port, nor one on the VM's SSH port.
//   - number_sync_standbys is 0, or N with at least N+2 nodes in the
//     replication quorum (pg_auto_failover wants N+1 quorum standbys
//     besides the primary, and any quorum node may be the primary).
//   - monitor_settings are the pgautofailover.* GUCs of pg_auto_failover
//     2.0, without the prefix, within the ranges the monitor accepts;
//     postgresql_parameters may not set what pg_autoctl manages itself
//     (port, listen_addresses, replication and recovery settings,
//     synchronous_standby_names, hot_standby, wal_log_hints, ssl files...).
//   - Images carry a tag or digest, so that an upgrade is a commit.
package desired
