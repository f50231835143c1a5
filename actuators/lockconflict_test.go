package actuators

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestLockConflict: only the errors the server raises to break a lock
// conflict are run again, also when wrapped; every other error is final.
func TestLockConflict(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40P01", Message: "deadlock detected"}, true},
		{&pgconn.PgError{Code: "40001", Message: "could not serialize access"}, true},
		{fmt.Errorf("start-maintenance: %w", &pgconn.PgError{Code: "40P01"}), true},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key"}, false},
		{&pgconn.PgError{Code: "P0001", Message: "node is not in a state to be put to maintenance"}, false},
		{errors.New("deadlock detected"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := lockConflict(c.err); got != c.want {
			t.Errorf("lockConflict(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
