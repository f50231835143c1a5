// Package observe records what really runs: every VM's containers and
// volumes (read from its Docker engine's API) and its nodes' PostgreSQL
// servers, both through connections forwarded over SSH, and every
// cluster's monitor (read over SQL). An Observation is plain data with a documented, stable JSON
// encoding (see SchemaVersion); the planner reads nothing else.
//
// An unreachable VM or monitor is recorded in the observation, never
// returned as an error that aborts a reconcile cycle.
package observe
