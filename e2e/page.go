//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The status page as a person sees it: headless Chromium (Debian's
// chromium) renders it to a PNG kept under .lab/artefacts.

// chromium finds Debian's chromium, or skips the test (fails it when CI is
// set: make host-tools installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found and CI is set: install Debian's chromium (make host-tools)")
	}
	t.Skip("chromium not found: install Debian's chromium (make host-tools) to screenshot the status page")
	return ""
}

// screenshot renders url to dir/name.png, letting the page's script run
// for a few seconds first, and returns the file's path.
func screenshot(t *testing.T, ctx context.Context, bin, dir, url, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "chromium-profile"),
		"--window-size=1400,2400", "--virtual-time-budget=3000", "--screenshot="+path, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium screenshot of %s: %v\n%s", url, err, out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v\n%s", err, out)
	}
	// A blank 1400x2400 page compresses to a few kB; a page with text does not.
	if st.Size() < 20_000 {
		t.Errorf("screenshot %s is %d bytes: a blank page?", path, st.Size())
	}
	t.Logf("screenshot: %s (%d kB)", path, st.Size()/1024)
	return path
}

// scrape is one read of the cluster metrics the no-primary alert uses.
type scrape struct {
	at        time.Time
	monitorUp float64
	primaries float64 // -1 when the series is absent
}

// alertNoPrimary is the expression of PgafNoPrimary (deploy/prometheus/
// alerts.yaml) on one scrape.
func (s scrape) alertNoPrimary() bool { return s.monitorUp == 1 && s.primaries == 0 }

func (s scrape) String() string {
	return s.at.Format("15:04:05.0") + " up=" + strconv.FormatFloat(s.monitorUp, 'f', -1, 64) +
		" primaries=" + strconv.FormatFloat(s.primaries, 'f', -1, 64)
}

// clusterScrape reads pgaf_monitor_up and pgaf_cluster_primaries of one
// cluster from /metrics.
func (in *instance) clusterScrape(ctx context.Context, cluster string) (scrape, error) {
	_, body, err := in.get(ctx, "/metrics")
	if err != nil {
		return scrape{}, err
	}
	s := scrape{at: time.Now(), monitorUp: -1, primaries: -1}
	label := `{cluster="` + cluster + `"} `
	for _, line := range strings.Split(body, "\n") {
		for name, v := range map[string]*float64{"pgaf_monitor_up": &s.monitorUp, "pgaf_cluster_primaries": &s.primaries} {
			if rest, ok := strings.CutPrefix(line, name+label); ok {
				*v, _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
			}
		}
	}
	return s, nil
}

// page reads the status page as served (it shows everything without
// script).
func (in *instance) page(t *testing.T, ctx context.Context) string {
	t.Helper()
	code, body, err := in.get(ctx, "/")
	if err != nil || code != 200 {
		t.Fatalf("%s /: %d %v", in.name, code, err)
	}
	return body
}

// checkRulesOnScrapes runs the shipped alerting rules over the series
// scraped from the lab (one sample a second) with `promtool test rules`:
// PgafNoPrimary fires only if the scraped no-primary window reached its
// one minute, PgafMoreThanOnePrimary never. The test file is kept beside
// the screenshots.
func checkRulesOnScrapes(t *testing.T, dir string, samples []scrape) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found and CI is set (make host-tools)")
		}
		t.Log("promtool not found: the rules are not run on the scraped series")
		return
	}
	rules, err := filepath.Abs("../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	val := func(v float64) string {
		if v < 0 {
			return "_"
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	var prim, up []string
	start, end := -1, -1 // the longest run of scrapes with the expression true
	for i, sc := range samples {
		prim, up = append(prim, val(sc.primaries)), append(up, val(sc.monitorUp))
		if sc.alertNoPrimary() {
			if start < 0 || (end >= 0 && end != i-1) {
				start = i
			}
			end = i
		}
	}
	if start < 0 {
		t.Fatal("no scrape with the no-primary expression true")
	}
	fires := end-start >= 60
	exp := "[]"
	if fires {
		exp = `
          - exp_labels: {severity: critical, cluster: gitops}
            exp_annotations:
              summary: "Cluster gitops has no primary"
              description: "The monitor of gitops answers but no node is assigned and reports a writable state: applications cannot write. See ` + "`reconciler status`" + ` and the monitor's events."`
	}
	test := fmt.Sprintf(`# Series scraped from the lab's gitops cluster through a power cut of its primary.
rule_files: [%q]
evaluation_interval: 1s
tests:
  - interval: 1s
    input_series:
      - series: 'pgaf_cluster_primaries{cluster="gitops"}'
        values: '%s'
      - series: 'pgaf_monitor_up{cluster="gitops"}'
        values: '%s'
    alert_rule_test:
      - eval_time: %ds
        alertname: PgafNoPrimary
        exp_alerts: %s
      - eval_time: %ds
        alertname: PgafNoPrimary
        exp_alerts: []
`, rules, strings.Join(prim, " "), strings.Join(up, " "), end, exp, len(samples)-1)
	for i := range samples {
		test += fmt.Sprintf("      - eval_time: %ds\n        alertname: PgafMoreThanOnePrimary\n        exp_alerts: []\n", i)
	}
	path := filepath.Join(dir, "alerts_on_lab_scrapes_test.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules %s: %v\n%s", path, err, out)
	} else {
		t.Logf("promtool test rules on %d scrapes: the no-primary expression held %d s, PgafNoPrimary fired: %v", len(samples), end-start+1, fires)
	}
}
