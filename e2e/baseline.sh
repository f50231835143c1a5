#!/usr/bin/env bash
# The manual bring-up from the operators' runbook, timed: with pg_autoctl
# over SSH on the lab's VMs, create the monitor on vm3:5432, then a node on
# vm1:5432, vm2:5432 and vm3:5433, until the monitor shows one primary and
# two secondaries. It is the baseline the reconciler's own bring-up is
# compared against. Needs `make lab-up`.
#
# Usage: e2e/baseline.sh            (removes an earlier "baseline" cluster first)
# Env:   CLUSTER (baseline), IMAGE (from .lab/topology.json), TIMEOUT (300 s)
# Last line on stdout: "baseline: 1 primary + 2 secondaries in <seconds> s"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab}
CLUSTER=${CLUSTER:-baseline}
TIMEOUT=${TIMEOUT:-300}
[ -f "$LAB_DIR/topology.json" ] || { echo "baseline: no lab; run make lab-up" >&2; exit 1; }
IMAGE=${IMAGE:-$(sed -n 's/^  "image": "\(.*\)",$/\1/p' "$LAB_DIR/topology.json")}
SUBNET=$(sed -n 's/^  "subnet": "\(.*\)",$/\1/p' "$LAB_DIR/topology.json")
SSH=(ssh -F "$LAB_DIR/ssh_config")

addr() { awk -v vm="$1" '$1 == "Host" { h = $2 } $1 == "HostName" && h == vm { print $2 }' "$LAB_DIR/ssh_config"; }
MONITOR_VM=vm3
MONITOR_HOST=$(addr $MONITOR_VM)
MONITOR_URI="postgres://autoctl_node@$MONITOR_HOST:5432/pg_auto_failover?sslmode=prefer"

now() { echo $(($(date +%s%N) / 1000000)); } # milliseconds
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
elapsed() { secs $(($(now) - T0)); }
log() { printf 'baseline: %s\n' "$*" >&2; }

# start_member VM MEMBER ROLE CMD...: what an operator types on the VM, as
# in the runbook: a labelled volume, then the container.
start_member() {
	local vm=$1 member=$2 role=$3
	shift 3
	local name=$CLUSTER-$member vol=$CLUSTER-$member-data
	local labels="--label pgaf.managed=true --label pgaf.vm=$vm --label pgaf.cluster=$CLUSTER --label pgaf.node=$member --label pgaf.role=$role"
	# shellcheck disable=SC2029
	"${SSH[@]}" "$vm" "docker volume create $labels $vol >/dev/null &&
		docker run -d --name $name $labels \
		--network container:pgaf-lab-$vm --user postgres --restart unless-stopped \
		--tmpfs /tmp -v $vol:/var/lib/postgres \
		-e PGDATA=/var/lib/postgres/pgaf \
		-e XDG_CONFIG_HOME=/var/lib/postgres/config \
		-e XDG_DATA_HOME=/var/lib/postgres/share \
		-e XDG_RUNTIME_DIR=/tmp/pgaf-run \
		-e PGAF_CLIENT_NETWORKS=$SUBNET \
		$IMAGE $*" >/dev/null
	log "$(elapsed) s: started $name on $vm"
}

start_node() {
	local vm=$1 node=$2 port=$3
	start_member "$vm" "$node" node pg_autoctl create postgres \
		--pgdata /var/lib/postgres/pgaf \
		--monitor "'$MONITOR_URI'" \
		--hostname "$(addr "$vm")" --pgport "$port" --name "$node" \
		--formation default --dbname postgres \
		--auth trust --no-ssl --run
}

# states prints "name reported assigned" for every node of the formation.
states() {
	psql -X -At -F ' ' "$MONITOR_URI" -c \
		"SELECT nodename, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid" 2>/dev/null
}

# wait_for DESCRIPTION AWK-CONDITION: poll the monitor until the condition
# over "name reported assigned" lines holds.
wait_for() {
	local what=$1 cond=$2 deadline out
	deadline=$(($(now) + TIMEOUT * 1000))
	while :; do
		out=$(states || true)
		if [ -n "$out" ] && printf '%s\n' "$out" | awk "$cond" >/dev/null; then
			return 0
		fi
		if [ "$(now)" -gt "$deadline" ]; then
			log "timed out waiting for $what; monitor says:"
			printf '%s\n' "$out" >&2
			exit 1
		fi
		sleep 0.5
	done
}

# Start from empty VMs: remove an earlier run of this cluster, and refuse to
# share the VMs' ports with another cluster.
"$ROOT/lab/lab.sh" clean "$CLUSTER"
others=$(docker ps --filter label=pgaf.managed=true --format '{{.Names}} {{.Label "pgaf.cluster"}}' |
	awk -v c="$CLUSTER" '$2 != c { print $1 }')
if [ -n "$others" ]; then
	log "the VMs are not empty; other clusters' containers run: $(echo $others)"
	log "remove them first (lab/lab.sh clean <cluster>)"
	exit 1
fi

T0=$(now)
start_member $MONITOR_VM monitor monitor pg_autoctl create monitor \
	--pgdata /var/lib/postgres/pgaf --hostname "$MONITOR_HOST" --pgport 5432 \
	--auth trust --no-ssl --run
deadline=$(($(now) + TIMEOUT * 1000))
until psql -X -At "$MONITOR_URI" -c 'SELECT 1 FROM pgautofailover.formation LIMIT 1' >/dev/null 2>&1; do
	[ "$(now)" -le "$deadline" ] || { log "monitor did not answer"; exit 1; }
	sleep 0.2
done
log "$(elapsed) s: monitor answers"

# Fast failover for the lab, as in .lab/desired.yaml (milliseconds).
gucs="health_check_period=1000 health_check_timeout=1000 health_check_max_retries=1
	health_check_retry_delay=500 node_considered_unhealthy_timeout=5000"
sql=""
for g in $gucs; do
	sql="$sql -c 'ALTER SYSTEM SET pgautofailover.${g%%=*} = ${g#*=}'"
done
# shellcheck disable=SC2029
"${SSH[@]}" $MONITOR_VM "docker exec $CLUSTER-monitor psql -X -q -v ON_ERROR_STOP=1 -d pg_auto_failover $sql -c 'SELECT pg_reload_conf()'" >/dev/null

start_node vm1 node1 5432
wait_for "node1 primary" '$1 == "node1" && $2 == "single" && $3 == "single" { ok = 1 } END { exit !ok }'
log "$(elapsed) s: node1 is single"
start_node vm2 node2 5432
wait_for "node2 secondary" '$1 == "node2" && $2 == "secondary" && $3 == "secondary" { ok = 1 } END { exit !ok }'
log "$(elapsed) s: node2 is secondary"
start_node vm3 node3 5433
wait_for "1 primary + 2 secondaries" '
	$2 == "primary" && $3 == "primary" { p++ }
	$2 == "secondary" && $3 == "secondary" { s++ }
	END { exit !(p == 1 && s == 2 && NR == 3) }'
T1=$(now)
states >&2
echo "baseline: 1 primary + 2 secondaries in $(secs $((T1 - T0))) s"
