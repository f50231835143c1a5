// Package reconcile turns a desired state and an observation into a plan:
// an ordered list of typed actions, each with its target, the reason for
// people, and whether it disrupts or destroys.
//
// Plan is pure and deterministic: no context, no clock, no logging, no
// randomness. Time enters as the observation's Time. The same input gives
// a byte-identical plan. The container specs that actions carry are derived
// here too, from the desired state alone, so that the planner and the
// actuators agree on what "the container as desired" is.
//
// Explain plans one cluster the same way, tracing every guard the planner
// evaluates, and returns what concerns one node: `reconciler explain`.
package reconcile
