package observe

import (
	"testing"
)

// TestLogEvidencePattern matches the pattern, as the observer does, over
// lines seen on the lab and lines that must not match.
func TestLogEvidencePattern(t *testing.T) {
	match := []string{
		`ERROR pg_rewind failed, see above for details`,
		`FATAL:  REQUESTED TIMELINE 2 IS NOT A CHILD OF THIS SERVER'S HISTORY`, // any case
		`FATAL:  requested timeline 2 is not a child of this server's history`,
		`FATAL:  database system identifier differs between the primary and standby`,
		`ERROR Failed to transition: does not know how to reach state "secondary"`,
		`pg_rewind: error: could not find common ancestor of the source and target cluster's timelines`,
	}
	noMatch := []string{
		`INFO  Running pg_rewind to rewind local data directory from node 2 "node2" (pgautofailover)`,
		`INFO  /usr/lib/postgresql/15/bin/pg_rewind --target-pgdata /var/lib/postgres/pgaf --source-server "application_name=pgautofailover_standby_1 host=172.30.77.12"`,
		`INFO  FSM transition from "catchingup" to "secondary": Convinced the monitor that I'm up and running`,
	}
	grep := func(line string) bool {
		got := matchEvidence([]byte("INFO  unrelated\n" + line + "\n"))
		return len(got) == 1 && got[0] == line
	}
	for _, l := range match {
		if !grep(l) {
			t.Errorf("not matched: %s", l)
		}
	}
	for _, l := range noMatch {
		if grep(l) {
			t.Errorf("matched, but it is no evidence: %s", l)
		}
	}
}
