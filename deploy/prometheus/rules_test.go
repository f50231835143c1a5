// Package prometheus holds the alerting rules shipped for the reconciler's
// metrics; its test checks them with Prometheus's own promtool.
package prometheus

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// Every query of the Grafana dashboard (deploy/grafana/pgaf.json) is valid
// PromQL: promtool checks each as a recording rule, with the dashboard's
// $cluster variable replaced by a regular expression.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	exprs := dashboardQueries(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(strings.ReplaceAll(e, "$cluster", ".*"))
		fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// dashboardQueries returns the expression of every panel target.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../grafana/pgaf.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("pgaf.json: %v", err)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	if len(out) == 0 {
		t.Fatal("pgaf.json has no queries")
	}
	return out
}
