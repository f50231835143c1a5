#!/usr/bin/env bash
# Commit-to-first-action latency of `reconciler run` on the lab, with the
# webhook and with polling (5 s interval, 10% jitter), over N commits
# (GITOPS_BENCH_COMMITS, default 10), and the service's peak RSS.
#
# It runs the measuring subtest of e2e/gitops_test.go alone: the test brings
# up its own cluster "gitops" (vm3:6432, vm1:6432, vm2:6432, vm3:6433), then
# for each commit records the time between making the commit and the
# service's first "executing" log line carrying that commit. The cluster is
# removed at the end. Needs the lab up (make lab-up) and no other e2e test
# running.
set -euo pipefail
cd "$(dirname "$0")/../.."
if pgrep -af 'go test.*e2e' >/dev/null; then
	echo "another e2e test is running:" >&2
	pgrep -af 'go test.*e2e' >&2
	exit 1
fi
go test -tags e2e -count=1 -timeout 30m -v \
	-run 'TestGitOpsRunOnLab/measure_commit_to_first_action' ./e2e/ 2>&1 |
	tee "${TMPDIR:-/tmp}/commit_latency.log" |
	grep -E 'commit-to-first-action|peak RSS|bring-up|--- (PASS|FAIL)|^(ok|FAIL)'
