package actuators

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPostgresParametersCommand(t *testing.T) {
	argv, err := PostgresParametersCommand(map[string]string{"work_mem": "8MB", "search_path": `"$user", it's`, "pg_stat_statements.max": "5000"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sh", "-c", psqlLocal, "sh",
		"-c", "ALTER SYSTEM SET pg_stat_statements.max = '5000'",
		"-c", `ALTER SYSTEM SET search_path = '"$user", it''s'`,
		"-c", "ALTER SYSTEM SET work_mem = '8MB'",
		"-c", "SELECT pg_reload_conf()"}
	if d := cmp.Diff(want, argv); d != "" {
		t.Errorf("argv (-want +got):\n%s", d)
	}
	for _, bad := range []string{"work_mem; DROP TABLE x", "a = 1", "", "1abc", "a.b.c"} {
		if _, err := PostgresParametersCommand(map[string]string{bad: "1"}); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}
