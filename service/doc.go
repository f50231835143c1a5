// Package service is `reconciler run`, the continuous reconciler: fetch the
// desired state from its source, load and validate it, observe, plan and
// apply, on an interval with jitter and at once on a trigger (webhook,
// directory change, SIGHUP), with backoff on failures and a lock so that
// two instances never act on one cluster at once. It reports what it did on
// /status (JSON and a small page) and /metrics, and writes that record from
// a defer on every path. Errors are classified with errors.As: stalled
// (a person is needed: invalid or untrusted desired state), waiting (a
// dependency is not ready) and transient (backoff).
package service
