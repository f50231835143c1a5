#!/usr/bin/env bash
# Failover figures on the lab (not CI): RUNS power cuts of the primary's VM
# with pg_auto_failover's default timing and with the lab's tuned settings
# (monitor primary_demote_timeout 5 s, keepers' network_partition_timeout
# 3 s, ...). Per setting: the median write-unavailability window seen by a
# writer through `reconciler dsn`, the time to full redundancy after the VM
# returns (power-on + `reconciler apply`), and the re-clone time of a
# secondary (rebuild token + apply). It runs TestFailoverBench of
# e2e/failover_bench_test.go; the cluster "main" is removed at the end.
#
# Usage: e2e/bench/failover.sh [RUNS] [SETTINGS...]   (default 3, tuned default)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
shift || true
SETTINGS=("$@")
[ ${#SETTINGS[@]} -gt 0 ] || SETTINGS=(tuned default)
for s in "${SETTINGS[@]}"; do
	# The e2e test binary takes the lab's lock (e2e/main_test.go).
	E2E_FAILOVER_RUNS=$RUNS E2E_FAILOVER_SETTINGS=$s go test -tags e2e -count=1 -timeout 90m -v \
		-run 'TestFailoverBench' ./e2e/ 2>&1 |
		tee "${TMPDIR:-/tmp}/failover_bench_$s.log" |
		grep -E 'BENCH|--- (PASS|FAIL)|^(ok|FAIL)'
done
