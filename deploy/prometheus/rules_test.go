// Package prometheus holds the alerting rules shipped for the reconciler's
// metrics; its test checks them with Prometheus's own promtool.
package prometheus

import (
	"os"
	"os/exec"
	"testing"
)

// promtool finds promtool, or skips the test (fails it when CI is set).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool not found and CI is set: install Debian's prometheus package (make host-tools)")
	}
	t.Skip("promtool not found: install Debian's prometheus package (make host-tools) to check the alerting rules")
	return ""
}

// The rules parse, and each fires (and stays quiet) on the sample series
// of alerts_test.yaml as that file expects.
func TestAlertingRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
