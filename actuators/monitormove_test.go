package actuators

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgaf-gitops/reconciler/observe"
	"github.com/pgaf-gitops/reconciler/reconcile"
)

// The monitor move scripts run against a stand-in pg_autoctl that keeps
// pg_autoctl.monitor in a file and logs its calls, and a pgrep that finds
// no other pg_autoctl: what each does, given the monitor the keeper
// follows, and that running one twice changes nothing.
func TestMonitorMoveCommand(t *testing.T) {
	const uri = "postgres://autoctl_node@10.0.0.14:5432/pg_auto_failover?sslmode=prefer"
	tests := []struct {
		name      string
		kind      reconcile.Kind
		following string
		wantCalls []string // pg_autoctl calls other than config get
		wantAfter string   // the monitor followed after
		wantToken string   // the recorded token ("" when none)
		wantErr   string
		// busy is how many times pgrep finds another pg_autoctl enable
		// or disable first (one a killed apply left running).
		busy int
	}{
		{"disable a keeper that follows the old monitor", reconcile.DisableMonitor, "postgres://autoctl_node@10.0.0.13:5432/pg_auto_failover",
			[]string{"disable monitor --force --pgdata /d"}, observe.KeeperMonitorDisabled, "", "", 0},
		{"disable again does nothing", reconcile.DisableMonitor, observe.KeeperMonitorDisabled, nil, observe.KeeperMonitorDisabled, "", "", 0},
		{"enable a disabled keeper and record the token", reconcile.EnableMonitor, observe.KeeperMonitorDisabled,
			[]string{"enable monitor --pgdata /d " + uri}, uri, "tok-1", "", 0},
		{"enable again only records the token", reconcile.EnableMonitor, uri, nil, uri, "tok-1", "", 0},
		{"enable refuses a keeper that still follows another monitor", reconcile.EnableMonitor, "postgres://autoctl_node@10.0.0.13:5432/pg_auto_failover",
			nil, "postgres://autoctl_node@10.0.0.13:5432/pg_auto_failover", "", "disable it first", 0},
		{"enable waits for an enable left running, then finds it done", reconcile.EnableMonitor, observe.KeeperMonitorDisabled,
			nil, uri, "tok-1", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			cfg := filepath.Join(dir, "cfg")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			fake := `#!/bin/sh
state="$FAKE_DIR/monitor"
case "$1 $2" in
"config get") cat "$state" ;;
"disable monitor") echo "disable $*" | cut -d' ' -f2- >>"$FAKE_DIR/calls"; echo PG_AUTOCTL_DISABLED >"$state" ;;
"enable monitor") echo "$*" >>"$FAKE_DIR/calls"; eval "last=\${$#}"; echo "$last" >"$state" ;;
*) echo "unexpected: $*" >&2; exit 2 ;;
esac
`
			// The running enable completes while the script waits: pgrep's
			// last "found" moves the keeper to the new monitor.
			pgrep := `#!/bin/sh
n=$(cat "$FAKE_DIR/busy")
[ "$n" -gt 0 ] || exit 1
echo $((n - 1)) >"$FAKE_DIR/busy"
[ "$n" -gt 1 ] || echo "$FAKE_URI" >"$FAKE_DIR/monitor"
exit 0
`
			if err := os.WriteFile(filepath.Join(dir, "busy"), []byte(strconv.Itoa(tt.busy)), 0o644); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"pg_autoctl": fake, "pgrep": pgrep} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(cfg, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "monitor"), []byte(tt.following+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			argv := MonitorMoveCommand(tt.kind, uri, "tok-1")
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "PGDATA=/d", "XDG_CONFIG_HOME="+cfg, "FAKE_DIR="+dir, "FAKE_URI="+uri)
			out, err := cmd.CombinedOutput()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(string(out), tt.wantErr) {
					t.Errorf("err %v, output %q; want an error saying %q", err, out, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
			if got := strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(calls)), "\n", " | ")); strings.Join(got, " ") != strings.Join(strings.Fields(strings.Join(tt.wantCalls, " | ")), " ") {
				t.Errorf("pg_autoctl calls %q, want %q", calls, tt.wantCalls)
			}
			after, _ := os.ReadFile(filepath.Join(dir, "monitor"))
			if got := strings.TrimSpace(string(after)); got != tt.wantAfter {
				t.Errorf("follows %q after, want %q", got, tt.wantAfter)
			}
			tok, _ := os.ReadFile(filepath.Join(cfg, observe.KeeperRecreateFile))
			if got := strings.TrimSpace(string(tok)); got != tt.wantToken {
				t.Errorf("recorded token %q, want %q", got, tt.wantToken)
			}
		})
	}
}
