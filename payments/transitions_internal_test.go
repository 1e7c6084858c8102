package payments

import (
	"slices"
	"testing"
)

// TestTransitionTableIsWellFormed checks the shape of the one table that
// CanTransition and Final read: only known statuses, no self-loops or
// duplicates (staying put is not a transition), nothing leads back into
// pending (it is only ever the first status), and a final status has no
// entry at all.
func TestTransitionTableIsWellFormed(t *testing.T) {
	t.Parallel()
	for from, tos := range transitions {
		if !slices.Contains(Statuses, from) {
			t.Errorf("transitions has unknown status %q as a key", from)
		}
		if len(tos) == 0 {
			t.Errorf("%s has an empty entry; a final status must be absent", from)
		}
		seen := map[Status]bool{}
		for _, to := range tos {
			switch {
			case !slices.Contains(Statuses, to):
				t.Errorf("%s → unknown status %q", from, to)
			case to == from:
				t.Errorf("%s → itself", from)
			case to == StatusPending:
				t.Errorf("%s → pending: pending is only the first status", from)
			case seen[to]:
				t.Errorf("%s → %s listed twice", from, to)
			}
			seen[to] = true
		}
	}
	for _, s := range []Status{StatusSucceeded, StatusFailed, StatusCanceled} {
		if _, ok := transitions[s]; ok {
			t.Errorf("final status %s has an entry in transitions", s)
		}
	}
}
