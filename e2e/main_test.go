//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMain serialises e2e test binaries on one machine: they share one lab
// (the same VMs, the same ports, one Docker engine), so a second `go test -tags e2e` waits for
// the first to finish instead of fighting over it.
func TestMain(m *testing.M) {
	// The lock lives outside .lab/, which a lab reset deletes: container
	// names are global to the Docker engine, so one lab per machine.
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "pgaf-lab-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: another e2e run holds %s; waiting for it\n", f.Name())
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: lock:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	f.Close() // releases the lock
	os.Exit(code)
}
