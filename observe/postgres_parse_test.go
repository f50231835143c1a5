package observe

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The bodies are what the VM script printed for real lab nodes (psql's
// JSON of PostgresQuery, then the exit status).
func TestParsePostgres(t *testing.T) {
	start := time.Date(2026, 11, 26, 2, 0, 22, 746392000, time.UTC)
	cases := []struct {
		name string
		body string
		want *Postgres
	}{
		{"pending_restart", `|{"start" : "2026-11-26T02:00:22.746392+00:00", "params" : { "synchronous_standby_names" : "", "work_mem" : "8MB", "max_connections" : "150" }, "pending" : ["max_connections"]}
|rc 0
`, &Postgres{StartTime: start, Parameters: map[string]string{"synchronous_standby_names": "", "work_mem": "8MB", "max_connections": "150"}, PendingRestart: []string{"max_connections"}}},
		{"nothing_set", `|{"start" : "2026-11-26T02:00:22.746392+00:00", "params" : {}, "pending" : []}
|rc 0
`, &Postgres{StartTime: start}},
		{"not_running", `|postgres is not running (no postmaster.pid)
|rc 3
`, &Postgres{Error: "psql exit status 3: postgres is not running (no postmaster.pid)"}},
		{"no_status", ``, &Postgres{Error: "psql exit status : no output"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, parsePostgres([]byte(tc.body))); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
