#!/usr/bin/env bash
# Bring-up from empty VMs to converged: the operators' manual procedure
# (e2e/baseline.sh) and `reconciler apply`, side by side in one run, RUNS
# times each, alternating. Prints both medians and the ratio
# reconciler / manual (the goal is at most 1.2). Needs `make lab-up`; it
# removes the clusters "baseline" and "main" of the lab.
#
# Usage: e2e/bench/bringup.sh [RUNS]   (default 3)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab}
RUNS=${1:-3}
export PATH=/usr/local/go/bin:$PATH
cd "$ROOT"
# One user of the lab at a time: the e2e test binaries take the same lock.
exec 9>"${TMPDIR:-/tmp}/pgaf-lab-e2e.lock"
flock 9
BIN=$(mktemp -d)/reconciler
go build -o "$BIN" ./cmd/reconciler
CFG=$(mktemp)
cat >"$CFG" <<CFGEOF
desired: $LAB_DIR/desired.yaml
ssh: {private_keys: [$LAB_DIR/id_ed25519], known_hosts: [$LAB_DIR/known_hosts]}
log: {format: json, level: warn}
CFGEOF
now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
manual=() reconciler=()
for i in $(seq 1 "$RUNS"); do
	lab/lab.sh clean baseline >/dev/null 2>&1
	lab/lab.sh clean main >/dev/null 2>&1
	t0=$(now)
	e2e/baseline.sh >/dev/null
	t1=$(now)
	manual+=("$(( (t1 - t0) / 1000000 ))")
	lab/lab.sh clean baseline >/dev/null 2>&1
	t0=$(now)
	"$BIN" apply --config "$CFG" >/dev/null
	t1=$(now)
	reconciler+=("$(( (t1 - t0) / 1000000 ))")
	[ "$i" = "$RUNS" ] || lab/lab.sh clean main >/dev/null 2>&1
	echo "run $i: manual ${manual[-1]} ms, reconciler ${reconciler[-1]} ms"
done
m=$(printf '%s\n' "${manual[@]}" | median)
r=$(printf '%s\n' "${reconciler[@]}" | median)
echo "the last run's cluster main is left up: measure a warm observation with"
echo "  go test -tags e2e -run XXX -bench ObserveLab -benchtime 20x ./e2e/"
echo "median over $RUNS runs: manual ${m} ms, reconciler ${r} ms, ratio $(awk -v r="$r" -v m="$m" 'BEGIN { printf "%.2f", r / m }')"
