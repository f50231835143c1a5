#!/bin/sh
# capture.sh [IMAGE] records what this machine's Docker engine answers the
# observer for a VM "vmcap", into engine/vmcap/ (replayed by the observer's
# unit tests): a running node container whose log has fatal lines, on
# stdout and stderr (six timeline errors and a pg_rewind failure) and a
# harmless pg_rewind line; a never-started monitor container; their two
# volumes; a container and a volume of another VM, which the engine must
# leave out. Needs docker and curl; removes what it created.
#   cd observe/testdata && sh capture.sh
set -eu
img=${1:-pgaf/postgres:15-2.0}
sock=/var/run/docker.sock
out=engine/vmcap
api() {
	path=$1
	shift
	curl -fsS -G --unix-socket "$sock" "$@" "http://docker$path"
}
cleanup() {
	docker rm -f pgaf-cap-node1 pgaf-cap-monitor pgaf-other-node1 >/dev/null 2>&1 || true
	docker volume rm pgaf-cap-node1-data pgaf-cap-monitor-data pgaf-other-node1-data >/dev/null 2>&1 || true
}
cleanup
trap cleanup EXIT

labels() { # VM NODE ROLE
	echo "--label pgaf.managed=true --label pgaf.vm=$1 --label pgaf.cluster=pgaf-cap --label pgaf.node=$2 --label pgaf.role=$3"
}
# shellcheck disable=SC2046
{
	docker volume create $(labels vmcap node1 node | sed 's/ --label pgaf.role=node//') --label pgaf.rebuild=tok1 pgaf-cap-node1-data
	docker volume create $(labels vmcap monitor monitor | sed 's/ --label pgaf.role=monitor//') pgaf-cap-monitor-data
	docker volume create $(labels vmother node1 node | sed 's/ --label pgaf.role=node//') pgaf-other-node1-data
	docker run -d --name pgaf-cap-node1 --network none --entrypoint sh \
		$(labels vmcap node1 node) --label pgaf.spec-hash=0123456789abcdef --label pgaf.rebuild=tok1 \
		-v pgaf-cap-node1-data:/var/lib/postgres "$img" -c '
			for i in 1 2 3 4 5 6; do echo "FATAL:  requested timeline $i is not a child of this server'"'"'s history" >&2; done
			echo "INFO  Running pg_rewind to rewind local data directory from node 2 \"node2\" (pgautofailover)"
			echo "pg_autoctl: pg_rewind failed, trying pg_basebackup"
			echo "captured"
			exec sleep infinity' sh --pgport 6543
	docker create --name pgaf-cap-monitor --network none \
		$(labels vmcap monitor monitor) --label pgaf.spec-hash=fedcba9876543210 \
		-v pgaf-cap-monitor-data:/var/lib/postgres "$img" pg_autoctl --help
	docker run -d --name pgaf-other-node1 --network none --entrypoint sleep $(labels vmother node1 node) "$img" infinity
} >/dev/null
i=0
until docker logs pgaf-cap-node1 2>&1 | grep -q captured; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "capture: the node container did not log" >&2; exit 1; }
	sleep 0.1
done

rm -rf "$out"
mkdir -p "$out/containers"
filter='{"label":["pgaf.vm=vmcap"]}'
api /containers/json --data-urlencode all=1 --data-urlencode "filters=$filter" >"$out/containers/json"
api /volumes --data-urlencode "filters=$filter" >"$out/volumes"
for id in $(docker ps -aq --no-trunc --filter label=pgaf.vm=vmcap); do
	mkdir -p "$out/containers/$id"
	api "/containers/$id/json" >"$out/containers/$id/json"
	api "/containers/$id/logs" --data-urlencode stdout=1 --data-urlencode stderr=1 --data-urlencode tail=200 >"$out/containers/$id/logs"
done
echo "capture: wrote $out"
