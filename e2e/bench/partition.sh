#!/usr/bin/env bash
# Partition soak on the lab (not CI): RUNS cuts of the primary's VM off the
# network, 20 s each, healed and converged with `reconciler apply`, under a
# writer through `reconciler dsn` and a pg_is_in_recovery sampler of every
# node. Prints, per partition, the new primary and the samples in which two
# nodes accepted writes (the goal: none), then the totals. It runs
# TestPartitionSoak of e2e/partition_soak_test.go; the cluster "main" is
# removed at the end.
#
# Usage: e2e/bench/partition.sh [RUNS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-10}
# The e2e test binary takes the lab's lock (e2e/main_test.go).
E2E_PARTITION_RUNS=$RUNS go test -tags e2e -count=1 -timeout 90m -v -run 'TestPartitionSoak' ./e2e/ 2>&1 |
	tee "${TMPDIR:-/tmp}/partition_soak.log" |
	grep -E 'BENCH|two nodes|--- (PASS|FAIL)|^(ok|FAIL)'
