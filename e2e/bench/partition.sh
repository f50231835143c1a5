#!/usr/bin/env bash
# Partition soak on the lab (not CI): RUNS partitions in a row of the
# primary's VM from the other VMs (iptables DROP in its network namespace:
# timeouts, as behind a dead switch), 20 to 60 s each, healed and converged
# with `reconciler apply`, under a writer using `reconciler dsn` as printed
# and a sampler asking every node every 250 ms, over direct connections,
# whether it accepts writes. Prints, per partition, the keeper's first
# partition check, when the old primary stopped and the new one took
# writes (the margin between them), the samples with two writers (the
# goal: none), the write gap and the time to full redundancy; then the
# totals. It runs TestPartitionSoak of e2e/partition_soak_test.go; the
# cluster "main" is removed at the end.
#
# Usage: e2e/bench/partition.sh [RUNS] [MODE]   (default 20 iptables;
#        MODE disconnect cuts the VM off the network instead)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-20}
MODE=${2:-iptables}
# The e2e test binary takes the lab's lock (e2e/main_test.go).
E2E_PARTITION_RUNS=$RUNS E2E_PARTITION_MODE=$MODE go test -tags e2e -count=1 -timeout 90m -v -run 'TestPartitionSoak' ./e2e/ 2>&1 |
	tee "${TMPDIR:-/tmp}/partition_soak.log" |
	grep -E 'BENCH|two nodes|--- (PASS|FAIL)|^(ok|FAIL)'
