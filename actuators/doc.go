// Package actuators executes plan actions, idempotently: commands on VMs
// over SSH (strict host-key checking), Docker through its CLI on each VM, and
// the pg_auto_failover monitor's functions over SQL.
package actuators
