package observe

import (
	"regexp/syntax"
	"strings"
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

// Each alternative of the pattern contains one of the words that let a
// line through to it: a new alternative without one would never match.
func TestEvidenceWordsCoverThePattern(t *testing.T) {
	re, err := syntax.Parse(LogEvidencePattern, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	if re.Op != syntax.OpAlternate {
		t.Fatalf("pattern is not an alternation: %v", re.Op)
	}
	for _, alt := range re.Sub {
		s := strings.ToLower(alt.String())
		found := false
		for _, w := range evidenceWords {
			found = found || strings.Contains(strings.ReplaceAll(s, `\`, ""), w)
		}
		if !found {
			t.Errorf("alternative %s contains none of %q", alt, evidenceWords)
		}
	}
}

// BenchmarkMatchEvidence is one node's log tail (LogEvidenceTail lines of
// a keeper's usual output, one of them evidence) put through the pattern.
func BenchmarkMatchEvidence(b *testing.B) {
	var log strings.Builder
	for i := range LogEvidenceTail {
		if i == LogEvidenceTail/2 {
			log.WriteString("16:30:17 25 ERROR Failed to initialize standby for lack of a primary node, see above for details\n")
			continue
		}
		log.WriteString(`16:30:15 25 INFO  FSM transition from "wait_standby" to "catchingup": The primary is now ready to accept a standby` + "\n")
	}
	body := []byte(log.String())
	for b.Loop() {
		if len(matchEvidence(body)) != 1 {
			b.Fatal("the evidence line was not found")
		}
	}
}
