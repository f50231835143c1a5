#!/usr/bin/env bash
# Failover figures on the lab (not CI): RUNS power cuts of the primary's VM
# with the lab's tuned settings and with pg_auto_failover's defaults, under
# a write load (pgbench with 16 clients and the acknowledged-write recorder,
# both through `reconciler dsn` as printed). Per run and per setting (median
# and worst): the write-unavailability window the writer sees, where the
# seconds went from the monitor's event timestamps (unhealthy, election,
# demote timer, promotion, first acknowledged write), the time to full
# redundancy after the VM returns (power-on + `reconciler apply`); once,
# the re-clone time of a secondary (rebuild token + apply). It runs
# TestFailoverBench of e2e/failover_bench_test.go; the cluster "main" is
# removed at the end.
#
# Usage: e2e/bench/failover.sh [RUNS] [SETTINGS...]   (default 10, tuned default)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-10}
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
