#!/usr/bin/env bash
# The lab: "VMs" that are containers running sshd and the docker CLI on a
# private Docker network, the images they run, and the fault switches.
# This script is the one implementation; make targets and e2e/lab.go call it.
#
# Usage: lab/lab.sh <command> [args]
#   host-tools             install debootstrap, ssh client, psql where missing
#   base                   make sure debian:bookworm-slim exists (debootstrap + import)
#   images                 base + the VM image + the PostgreSQL image (PG_TAG)
#   image                  base + the PostgreSQL image only (PG_TAG)
#   up                     build what is missing, start the VMs, write .lab/
#   down | reset           remove every container, volume and network the lab made
#                          or that carries pgaf.* labels, and .lab/'s generated files
#   clean CLUSTER          remove the containers and volumes of one cluster (pgaf.cluster)
#   status                 the VMs and the containers on them
#   ssh VM [CMD...]        ssh to a VM with the lab's client config
#   power-off VM           kill the VM and every container of that VM at once
#   power-on VM            start the VM, then its containers that dockerd would restart
#   disconnect VM          cut the VM off the lab network
#   reconnect VM           put it back, with the same address
#   partition VM           drop (iptables DROP, no answer) every packet between
#                          the VM and the other VMs; the machine itself (the
#                          network's gateway, where tests and applications run)
#                          still reaches it, as an application on its side would
#   heal VM                remove that partition
#   rekey VM               give the VM a new sshd host key (known_hosts is NOT updated)
#   trust VM               write the VM's current host key into known_hosts
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab}
NETWORK=${LAB_NETWORK:-pgaf-lab}
SUBNET=${LAB_SUBNET:-172.30.77.0/24}
NET_PREFIX=${SUBNET%.*}
VMS=(vm1 vm2 vm3 vm4)
BASE_IMAGE=debian:bookworm-slim
VM_IMAGE=${VM_IMAGE:-pgaf/lab-vm}
PG_REPO=${PG_REPO:-pgaf/postgres}
PG_TAG=${PG_TAG:-15-2.0}
PG_IMAGE=$PG_REPO:$PG_TAG
# The tag written into topology.json and desired.yaml (the reference layout).
REF_IMAGE=$PG_REPO:15-2.0
SSH_USER=ops
export DOCKER_BUILDKIT=0

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

vm_index() {
	local i
	for i in "${!VMS[@]}"; do
		if [ "${VMS[$i]}" = "$1" ]; then echo $((i + 1)); return 0; fi
	done
	die "unknown VM '$1' (want one of ${VMS[*]})"
}
vm_container() { vm_index "$1" >/dev/null; echo "pgaf-lab-$1"; }
vm_address() { echo "$NET_PREFIX.$((10 + $(vm_index "$1")))"; }

# ---------------------------------------------------------------- host tools

APT_UPDATED=0
apt_install() {
	if [ "$APT_UPDATED" = 0 ]; then
		as_root apt-get update -qq
		APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

cmd_host_tools() {
	local missing=()
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v ssh >/dev/null || missing+=(openssh-client)
	command -v ssh-keygen >/dev/null || missing+=(openssh-client)
	command -v psql >/dev/null || missing+=(postgresql-client)
	# partition/heal: iptables in a VM's network namespace, entered with nsenter.
	command -v iptables >/dev/null || missing+=(iptables)
	command -v nsenter >/dev/null || missing+=(util-linux)
	# The unit tests run a real sshd and a real pg_auto_failover monitor on
	# loopback (actuators, observe, internal/pgaftest).
	[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
	command -v pg_autoctl >/dev/null || missing+=(postgresql-15 postgresql-15-auto-failover pg-auto-failover-cli)
	# deploy/prometheus: the alerting rules are checked with promtool.
	command -v promtool >/dev/null || missing+=(prometheus)
	# e2e: the status page is screenshotted by headless Chromium.
	command -v chromium >/dev/null || missing+=(chromium fonts-dejavu-core)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing host tools: ${missing[*]}"
		apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
	fi
}

# ---------------------------------------------------------------- base image

# apt_mirror prints the URI this machine's apt uses for Debian's main suite,
# read from its apt sources (deb822 .sources files or sources.list).
apt_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '
			function flush() { if (uri != "" && main) { print uri; found = 1; exit } uri = ""; main = 0 }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") main = 1 }
			END { if (!found) flush() }
		' "$f")
		if [ -n "$uri" ]; then echo "$uri"; return 0; fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" { u = $2; if (u ~ /^\[/) u = $3; for (i = 3; i <= NF; i++) if ($i == "bookworm") { print u; exit } }' "$f")
		if [ -n "$uri" ]; then echo "$uri"; return 0; fi
	done
	return 1
}

cmd_base() {
	if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
		return 0
	fi
	log "$BASE_IMAGE is absent; trying to pull it"
	if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
		return 0
	fi
	log "pull failed; building $BASE_IMAGE with debootstrap"
	local t0=$SECONDS
	cmd_host_tools
	local mirror rootfs
	mirror=$(apt_mirror) || die "cannot find the Debian mirror in the apt sources"
	rootfs=$(mktemp -d /var/tmp/pgaf-lab-rootfs.XXXXXX)
	# shellcheck disable=SC2064
	trap "as_root rm -rf '$rootfs'" EXIT
	as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null \
		|| die "debootstrap failed (see $rootfs/debootstrap/debootstrap.log)"
	# The image uses the same apt sources as this machine.
	as_root rm -f "$rootfs/etc/apt/sources.list"
	local f
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
		[ -f "$f" ] || continue
		as_root install -D -m 0644 "$f" "$rootfs$f"
	done
	# Keep the image slim, as the official one does.
	as_root sh -c "cat >'$rootfs/etc/apt/apt.conf.d/docker-clean'" <<-'EOF'
		DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
		Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
	EOF
	as_root sh -c "printf 'APT::Install-Recommends \"false\";\n' >'$rootfs/etc/apt/apt.conf.d/docker-no-recommends'"
	as_root sh -c "rm -rf '$rootfs'/var/cache/apt/archives/*.deb '$rootfs'/var/lib/apt/lists/* '$rootfs'/tmp/* '$rootfs'/var/log/*.log"
	as_root tar -C "$rootfs" --numeric-owner -c . \
		| docker import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
	as_root rm -rf "$rootfs"
	trap - EXIT
	log "imported $BASE_IMAGE ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- images

# docker_build TAG DIR [ARGS...]: build, retrying with the host's network when
# the default bridge cannot reach the mirror.
docker_build() {
	local tag=$1 dir=$2
	shift 2
	local out t0=$SECONDS
	if ! out=$(docker build -q -t "$tag" "$@" "$dir" 2>&1); then
		log "build of $tag on the default bridge failed; retrying with --network host"
		printf '%s\n' "$out" | tail -n 5 >&2
		docker build -q --network host -t "$tag" "$@" "$dir" >/dev/null
	fi
	log "built $tag ($((SECONDS - t0)) s)"
}

cmd_image() {
	cmd_base
	log "building $PG_IMAGE"
	docker_build "$PG_IMAGE" "$ROOT/image/postgres" --build-arg "PGAF_IMAGE_TAG=$PG_TAG"
}

cmd_images() {
	cmd_base
	log "building $VM_IMAGE"
	docker_build "$VM_IMAGE" "$ROOT/image/vm"
	cmd_image
}

# ---------------------------------------------------------------- the VMs

ensure_key() {
	mkdir -p "$LAB_DIR/state"
	if [ ! -f "$LAB_DIR/id_ed25519" ]; then
		ssh-keygen -q -t ed25519 -N '' -C pgaf-lab -f "$LAB_DIR/id_ed25519"
	fi
	chmod 0600 "$LAB_DIR/id_ed25519"
}

ensure_network() {
	if docker network inspect "$NETWORK" >/dev/null 2>&1; then
		return 0
	fi
	log "creating network $NETWORK ($SUBNET)"
	docker network create --driver bridge --subnet "$SUBNET" \
		--label pgaf.lab=true "$NETWORK" >/dev/null
}

container_state() {
	local s
	if s=$(docker container inspect -f '{{.State.Status}}' "$1" 2>/dev/null) && [ -n "$s" ]; then
		echo "$s"
	else
		echo absent
	fi
}

is_connected() {
	docker container inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$1" 2>/dev/null \
		| tr ' ' '\n' | grep -qx "$NETWORK"
}

ensure_vm() {
	local vm=$1 name addr state
	name=$(vm_container "$vm")
	addr=$(vm_address "$vm")
	state=$(container_state "$name")
	case $state in
	absent)
		log "creating $name ($addr)"
		docker run -d --name "$name" --hostname "$vm" \
			--network "$NETWORK" --ip "$addr" \
			--label pgaf.lab=true --label "pgaf.lab.vm=$vm" \
			-v /var/run/docker.sock:/var/run/docker.sock \
			-e "LAB_AUTHORIZED_KEY=$(cat "$LAB_DIR/id_ed25519.pub")" \
			"$VM_IMAGE" >/dev/null
		;;
	running) ;;
	*)
		cmd_power_on "$vm"
		;;
	esac
	if ! is_connected "$name"; then
		cmd_reconnect "$vm"
	fi
}

# host_key VM prints the VM's current ed25519 host key ("type base64"),
# read through Docker, not over the network.
host_key() {
	local name i
	name=$(vm_container "$1")
	for i in $(seq 1 100); do
		if docker exec "$name" cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null | awk '{print $1, $2}'; then
			return 0
		fi
		sleep 0.1
	done
	die "no host key in $name"
}

# trust VM: replace the VM's line in known_hosts with its current key.
cmd_trust() {
	local vm=$1 addr key kh=$LAB_DIR/known_hosts
	addr=$(vm_address "$vm")
	key=$(host_key "$vm")
	touch "$kh"
	{
		grep -v "^$addr " "$kh" || true
		echo "$addr $key"
	} >"$kh.tmp"
	mv "$kh.tmp" "$kh"
}

write_ssh_config() {
	local vm f=$LAB_DIR/ssh_config
	{
		echo "# Written by lab/lab.sh: ssh -F $f vm1 docker ps"
		for vm in "${VMS[@]}"; do
			cat <<-EOF
				Host $vm
				  HostName $(vm_address "$vm")
				  Port 22
				  User $SSH_USER
				  IdentityFile $LAB_DIR/id_ed25519
				  IdentitiesOnly yes
				  UserKnownHostsFile $LAB_DIR/known_hosts
				  GlobalKnownHostsFile /dev/null
				  StrictHostKeyChecking yes
				  HostKeyAlgorithms ssh-ed25519
				  BatchMode yes
				  ConnectTimeout 5
				  LogLevel ERROR

			EOF
		done
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

write_topology() {
	local vm sep="" f=$LAB_DIR/topology.json
	{
		printf '{\n  "network": "%s",\n  "subnet": "%s",\n  "image": "%s",\n' "$NETWORK" "$SUBNET" "$REF_IMAGE"
		printf '  "ssh_key": "%s",\n  "known_hosts": "%s",\n  "ssh_config": "%s",\n' \
			"$LAB_DIR/id_ed25519" "$LAB_DIR/known_hosts" "$LAB_DIR/ssh_config"
		printf '  "desired": "%s",\n  "lab_script": "%s",\n  "vms": [' "$LAB_DIR/desired.yaml" "$ROOT/lab/lab.sh"
		for vm in "${VMS[@]}"; do
			printf '%s\n    {"name": "%s", "container": "%s", "address": "%s", "ssh_port": 22, "user": "%s"}' \
				"$sep" "$vm" "$(vm_container "$vm")" "$(vm_address "$vm")" "$SSH_USER"
			sep=","
		done
		printf '\n  ]\n}\n'
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

write_desired() {
	local vm f=$LAB_DIR/desired.yaml
	{
		cat <<-EOF
			# The lab's reference layout, written by lab/lab.sh (desired-state schema).
			vms:
		EOF
		for vm in vm1 vm2 vm3; do
			cat <<-EOF
				  - name: $vm
				    address: $(vm_address "$vm")
				    ssh: {user: $SSH_USER, port: 22}
				    docker_network: "container:$(vm_container "$vm")"
			EOF
		done
		cat <<-EOF
			clusters:
			  - name: main
			    formation: default
			    image: $REF_IMAGE
			    monitor: {vm: vm3, port: 5432}
			    nodes:
			      - {name: node1, vm: vm1, port: 5432}
			      - {name: node2, vm: vm2, port: 5432}
			      - {name: node3, vm: vm3, port: 5433}
			    number_sync_standbys: 1
			    auth: trust
			    ssl: "off"
			    client_networks: ["$SUBNET"]
			    # Failover timing: the fastest the lab runs safely (README, "Failover
			    # timing"; monitor: milliseconds, keepers: seconds). A primary
			    # partitioned from the monitor and its standbys demotes itself
			    # only if its keeper's first partition check (up to ~8 s after
			    # the cut) still finds a standby connection: standbys reply
			    # every second and a dead connection is dropped 9 s after the
			    # last reply. It then demotes network_partition_timeout after
			    # the last check that found one (checks ~5 s apart) and stops;
			    # the monitor promotes no sooner than unhealthy - 1 s + demote
			    # after the cut, which validate makes cover all of that (19 s).
			    # About 22 s of writes per failover; defaults: about 55 s.
			    monitor_settings:
			      health_check_period: "1000"
			      health_check_timeout: "1000"
			      health_check_max_retries: "1"
			      health_check_retry_delay: "500"
			      node_considered_unhealthy_timeout: "3000"
			      primary_demote_timeout: "17000"
			    keeper_settings:
			      timeout.network_partition_timeout: "1"
			    postgresql_parameters:
			      wal_sender_timeout: "9s"
			      wal_receiver_status_interval: "1s"
			      # A rejoining old primary is often re-cloned (pg_autoctl's
			      # pg_rewind refuses a PGDATA its postgres service has just
			      # started), and pg_autoctl's pg_basebackup asks for a spread
			      # checkpoint: up to checkpoint_timeout x 0.9 of waiting, 4.5
			      # minutes at the default 5min. The lab's data is small.
			      checkpoint_timeout: "1min"
		EOF
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

wait_ssh() {
	local vm=$1 deadline=$((SECONDS + 60))
	until ssh -F "$LAB_DIR/ssh_config" "$vm" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			ssh -F "$LAB_DIR/ssh_config" "$vm" docker version >&2 || true
			die "$vm: ssh with docker did not answer within 60 s"
		fi
		sleep 0.2
	done
}

cmd_up() {
	cmd_host_tools
	cmd_images
	ensure_key
	ensure_network
	local vm
	for vm in "${VMS[@]}"; do ensure_vm "$vm"; done
	: >"$LAB_DIR/known_hosts.new"
	for vm in "${VMS[@]}"; do
		echo "$(vm_address "$vm") $(host_key "$vm")" >>"$LAB_DIR/known_hosts.new"
	done
	mv "$LAB_DIR/known_hosts.new" "$LAB_DIR/known_hosts"
	write_ssh_config
	for vm in "${VMS[@]}"; do wait_ssh "$vm"; done
	write_topology
	write_desired
	log "up: ${VMS[*]} on $NETWORK; try: ssh -F $LAB_DIR/ssh_config vm1 docker ps"
}

# ---------------------------------------------------------------- reset

# has_pgaf_label reads "ID labels" lines and prints the IDs whose labels
# include a pgaf.* key.
has_pgaf_label() { awk '{ id = $1; $1 = ""; if ($0 ~ /(^|[ ,])pgaf\./) print id }'; }

cmd_reset() {
	local ids
	ids=$(docker ps -a --no-trunc --format '{{.ID}} {{.Labels}}' | has_pgaf_label)
	if [ -n "$ids" ]; then
		log "removing containers: $(echo $ids | wc -w)"
		# shellcheck disable=SC2086
		docker rm -f -v $ids >/dev/null
	fi
	ids=$(docker volume ls --format '{{.Name}} {{.Labels}}' | has_pgaf_label)
	if [ -n "$ids" ]; then
		log "removing volumes: $(echo $ids | wc -w)"
		# shellcheck disable=SC2086
		docker volume rm $ids >/dev/null
	fi
	ids=$(docker network ls --no-trunc --format '{{.ID}} {{.Labels}}' | has_pgaf_label)
	if [ -n "$ids" ]; then
		log "removing networks: $(echo $ids | wc -w)"
		# shellcheck disable=SC2086
		docker network rm $ids >/dev/null
	fi
	rm -rf "$LAB_DIR/state" "$LAB_DIR/known_hosts" "$LAB_DIR/ssh_config" \
		"$LAB_DIR/topology.json" "$LAB_DIR/desired.yaml"
}

cmd_clean() {
	local cluster=${1:?usage: clean CLUSTER} ids
	ids=$(docker ps -aq --no-trunc --filter "label=pgaf.cluster=$cluster")
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker rm -f -v $ids >/dev/null
	ids=$(docker volume ls -q --filter "label=pgaf.cluster=$cluster")
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker volume rm $ids >/dev/null
}

# ---------------------------------------------------------------- faults

# vm_members VM [docker ps flags]: the containers of a VM, not the VM itself.
vm_members() {
	local vm=$1
	shift
	{
		docker ps -q --no-trunc "$@" --filter "label=pgaf.vm=$vm"
		docker ps -q --no-trunc "$@" --filter "label=pgaf.lab.vm=$vm"
	} | sort -u | grep -vx "$(docker container inspect -f '{{.Id}}' "$(vm_container "$vm")" 2>/dev/null || echo none)" || true
}

cmd_power_off() {
	local vm=${1:?usage: power-off VM} name members
	name=$(vm_container "$vm")
	members=$(vm_members "$vm")
	mkdir -p "$LAB_DIR/state"
	# Remember what ran, as dockerd's own state would across a power cut.
	printf '%s\n' $members >"$LAB_DIR/state/$vm.running"
	local targets=$members
	[ "$(container_state "$name")" = running ] && targets="$name $targets"
	if [ -n "${targets// /}" ]; then
		# shellcheck disable=SC2086
		docker kill $targets >/dev/null
	fi
	log "$vm powered off ($(echo $members | wc -w) containers)"
}

cmd_power_on() {
	local vm=${1:?usage: power-on VM} name id policy started=0 ran=""
	name=$(vm_container "$vm")
	[ "$(container_state "$name")" = running ] || docker start "$name" >/dev/null
	[ -f "$LAB_DIR/state/$vm.running" ] && ran=$(cat "$LAB_DIR/state/$vm.running")
	for id in $(vm_members "$vm" -a --filter status=exited --filter status=created); do
		policy=$(docker container inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$id")
		# dockerd at boot restarts "always" containers, and "unless-stopped"
		# ones that were running when the power went (not stopped by hand).
		case $policy in
		always) ;;
		unless-stopped) printf '%s\n' $ran | grep -qx "$id" || continue ;;
		*) continue ;;
		esac
		docker start "$id" >/dev/null && started=$((started + 1))
	done
	rm -f "$LAB_DIR/state/$vm.running"
	log "$vm powered on ($started containers started)"
}

cmd_disconnect() {
	local vm=${1:?usage: disconnect VM} name
	name=$(vm_container "$vm")
	if is_connected "$name"; then
		docker network disconnect "$NETWORK" "$name"
	fi
	log "$vm disconnected"
}

cmd_reconnect() {
	local vm=${1:?usage: reconnect VM} name
	name=$(vm_container "$vm")
	if ! is_connected "$name"; then
		docker network connect --ip "$(vm_address "$vm")" "$NETWORK" "$name"
	fi
	log "$vm reconnected"
}

# The partition's rules live in their own chain in the VM's network
# namespace (entered from the machine with nsenter: the VM is not privileged),
# so heal removes exactly what partition added. Packets are dropped, never
# refused: peers see what a dead switch shows them, timeouts.
PARTITION_CHAIN=PGAF-PARTITION

vm_netns() {
	local pid
	pid=$(docker inspect -f '{{.State.Pid}}' "$(vm_container "$1")" 2>/dev/null) || die "$1 is not running"
	[ "$pid" -gt 0 ] 2>/dev/null || die "$1 is not running"
	echo "$pid"
}

vm_iptables() {
	local pid=$1
	shift
	as_root nsenter -t "$pid" -n iptables -w "$@"
}

cmd_partition() {
	local vm=${1:?usage: partition VM} pid gw
	pid=$(vm_netns "$vm")
	gw=$(docker network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' "$NETWORK")
	[ -n "$gw" ] || gw=$NET_PREFIX.1
	vm_iptables "$pid" -N "$PARTITION_CHAIN" 2>/dev/null || vm_iptables "$pid" -F "$PARTITION_CHAIN"
	vm_iptables "$pid" -A "$PARTITION_CHAIN" -s "$gw" -j RETURN
	vm_iptables "$pid" -A "$PARTITION_CHAIN" -d "$gw" -j RETURN
	vm_iptables "$pid" -A "$PARTITION_CHAIN" -s "$SUBNET" -j DROP
	vm_iptables "$pid" -A "$PARTITION_CHAIN" -d "$SUBNET" -j DROP
	local chain
	for chain in INPUT OUTPUT; do
		vm_iptables "$pid" -C "$chain" -j "$PARTITION_CHAIN" 2>/dev/null ||
			vm_iptables "$pid" -I "$chain" 1 -j "$PARTITION_CHAIN"
	done
	log "$vm partitioned from the other VMs (the machine, $gw, still reaches it)"
}

cmd_heal() {
	local vm=${1:?usage: heal VM} pid chain
	pid=$(vm_netns "$vm")
	for chain in INPUT OUTPUT; do
		while vm_iptables "$pid" -C "$chain" -j "$PARTITION_CHAIN" 2>/dev/null; do
			vm_iptables "$pid" -D "$chain" -j "$PARTITION_CHAIN"
		done
	done
	if vm_iptables "$pid" -L "$PARTITION_CHAIN" -n >/dev/null 2>&1; then
		vm_iptables "$pid" -F "$PARTITION_CHAIN"
		vm_iptables "$pid" -X "$PARTITION_CHAIN"
	fi
	log "$vm healed"
}

is_partitioned() {
	local pid
	pid=$(docker inspect -f '{{.State.Pid}}' "$(vm_container "$1")" 2>/dev/null) || return 1
	[ "$pid" -gt 0 ] 2>/dev/null || return 1
	as_root nsenter -t "$pid" -n iptables -w -C INPUT -j "$PARTITION_CHAIN" 2>/dev/null
}

cmd_rekey() {
	local vm=${1:?usage: rekey VM} name
	name=$(vm_container "$vm")
	docker exec "$name" sh -c 'rm -f /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub &&
		ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key && kill -HUP 1'
	# sshd re-executes itself on SIGHUP: wait until it serves the new key.
	local key addr deadline=$((SECONDS + 30))
	key=$(host_key "$vm" | awk '{print $2}')
	addr=$(vm_address "$vm")
	until ssh-keyscan -T 2 -t ed25519 "$addr" 2>/dev/null | grep -qF "$key"; do
		[ $SECONDS -lt $deadline ] || die "$vm: sshd does not serve its new host key"
		sleep 0.1
	done
	log "$vm has a new host key (known_hosts unchanged; lab.sh trust $vm to accept it)"
}

cmd_status() {
	local vm name
	for vm in "${VMS[@]}"; do
		name=$(vm_container "$vm")
		printf '%-4s %-14s %-14s %s%s\n' "$vm" "$(vm_address "$vm")" "$(container_state "$name")" \
			"$(is_connected "$name" && echo connected || echo disconnected)" \
			"$(is_partitioned "$vm" && echo ', partitioned')"
		docker ps -a --filter "label=pgaf.vm=$vm" --format '       {{.Names}}\t{{.Status}}\t{{.Image}}'
	done
}

cmd_ssh() {
	local vm=${1:?usage: ssh VM [CMD...]}
	shift
	vm_index "$vm" >/dev/null
	exec ssh -F "$LAB_DIR/ssh_config" "$vm" "$@"
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	host-tools) cmd_host_tools ;;
	base) cmd_base ;;
	image) cmd_image ;;
	images) cmd_images ;;
	up) cmd_up ;;
	down | reset) cmd_reset ;;
	clean) cmd_clean "$@" ;;
	status) cmd_status ;;
	ssh) cmd_ssh "$@" ;;
	power-off) cmd_power_off "$@" ;;
	power-on) cmd_power_on "$@" ;;
	disconnect) cmd_disconnect "$@" ;;
	reconnect) cmd_reconnect "$@" ;;
	partition) cmd_partition "$@" ;;
	heal) cmd_heal "$@" ;;
	rekey) cmd_rekey "$@" ;;
	trust) cmd_trust "$@" ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
}

main "$@"
