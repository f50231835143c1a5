// Package observe records what really runs: every VM's containers and
// volumes (read over SSH from Docker) and every cluster's monitor (read
// over SQL). An Observation is plain data with a documented, stable JSON
// encoding (see SchemaVersion); the planner reads nothing else.
//
// An unreachable VM or monitor is recorded in the observation, never
// returned as an error that aborts a reconcile cycle.
package observe
