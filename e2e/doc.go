// Package e2e holds the end-to-end suite and the lab's fault switches. The
// tests build the real reconciler binary and drive it against the lab: VMs
// that are containers running sshd, reached only over SSH with strict
// host-key checking, and real pg_auto_failover. They carry the build tag
// e2e: go test -tags e2e ./e2e/
package e2e
