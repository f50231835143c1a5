// Package postgres holds the tests of the pgaf/postgres image's entrypoint
// (the image itself is built by lab/lab.sh from the Dockerfile here).
package postgres

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// stubAutoctl is a pg_autoctl that keeps pg_autoctl.monitor in a file and
// records every config set.
const stubAutoctl = `#!/bin/sh
case "$1 $2" in
"config get") cat "$STUB/monitor" ;;
"config set") printf '%s' "$6" >"$STUB/monitor"; echo "$5" >>"$STUB/sets" ;;
*) exit 2 ;;
esac
`

// The entrypoint gives an existing node the command's --monitor URI only
// when it names the same monitor with other connection parameters.
func TestEntrypointMonitorParameters(t *testing.T) {
	const (
		old   = "postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?sslmode=prefer"
		tuned = "postgres://autoctl_node@10.0.0.3:5432/pg_auto_failover?keepalives_idle=1&keepalives_interval=1&sslmode=prefer&tcp_user_timeout=1000"
		moved = "postgres://autoctl_node@10.0.0.9:5432/pg_auto_failover?keepalives_idle=1&keepalives_interval=1&sslmode=prefer&tcp_user_timeout=1000"
	)
	cases := []struct {
		name      string
		config    bool   // the node's pg_autoctl.cfg exists
		have      string // its pg_autoctl.monitor
		command   string // the command's --monitor
		want      string
		wantNoSet bool
	}{
		{"same_monitor_new_parameters", true, old, tuned, tuned, false},
		{"already_as_in_the_command", true, tuned, tuned, tuned, true},
		{"another_monitor_left_alone", true, old, moved, old, true},
		{"new_node_left_to_pg_autoctl", false, "", tuned, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			stub := filepath.Join(dir, "stub")
			pgdata := filepath.Join(dir, "pgaf")
			config := filepath.Join(dir, "config")
			for _, d := range []string{bin, stub} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(bin, "pg_autoctl"), []byte(stubAutoctl), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(stub, "monitor"), []byte(tc.have), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.config {
				cfg := filepath.Join(config, "pg_autoctl"+pgdata, "pg_autoctl.cfg")
				if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cfg, []byte("[pg_autoctl]\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("sh", "pgaf-entrypoint", "true", "create", "postgres", "--monitor", tc.command, "--run")
			cmd.Env = []string{
				"PATH=" + bin + ":/usr/bin:/bin", "STUB=" + stub, "PGDATA=" + pgdata,
				"XDG_CONFIG_HOME=" + config, "XDG_DATA_HOME=" + filepath.Join(dir, "share"),
				"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("entrypoint: %v\n%s", err, out)
			}
			got, err := os.ReadFile(filepath.Join(stub, "monitor"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.config && string(got) != tc.want {
				t.Errorf("pg_autoctl.monitor = %q, want %q\n%s", got, tc.want, out)
			}
			sets, _ := os.ReadFile(filepath.Join(stub, "sets"))
			if tc.wantNoSet && len(sets) > 0 {
				t.Errorf("config set called (%s), want no call\n%s", strings.TrimSpace(string(sets)), out)
			}
			if !tc.wantNoSet && strings.TrimSpace(string(sets)) != "pg_autoctl.monitor" {
				t.Errorf("config set calls %q, want one of pg_autoctl.monitor\n%s", sets, out)
			}
		})
	}
}
