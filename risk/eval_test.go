package risk

import (
	"testing"

	"github.com/google/uuid"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	review := Rule{ID: uuid.New(), Kind: KindVelocity, Action: ActionReview}
	block := Rule{ID: uuid.New(), Kind: KindImpossibleTravel, Action: ActionBlock}
	closedReview := Rule{ID: uuid.New(), Kind: KindVelocity, Action: ActionReview, FailClosed: true}
	c := Check{Rules: []Rule{review, block, closedReview}}
	for _, tt := range []struct {
		name    string
		matched []bool
		rule    uuid.UUID
		block   bool
		open    int
	}{
		{"nothing matched", []bool{false, false, false}, uuid.Nil, false, 0},
		{"a review", []bool{true, false, false}, review.ID, false, 0},
		{"a block wins over a review", []bool{true, true, true}, block.ID, true, 0},
		{"the oldest review", []bool{false, false, true}, closedReview.ID, false, 0},
		{"redis down: fail closed applies, the others fail open", nil, closedReview.ID, false, 2},
	} {
		v, open := Decide(c, tt.matched)
		switch {
		case tt.rule == uuid.Nil && v != nil:
			t.Errorf("%s: verdict %+v, want none", tt.name, v)
		case tt.rule != uuid.Nil && (v == nil || v.Rule != tt.rule || v.Block != tt.block):
			t.Errorf("%s: verdict %+v, want rule %s block %v", tt.name, v, tt.rule, tt.block)
		}
		if open != tt.open {
			t.Errorf("%s: %d failed open, want %d", tt.name, open, tt.open)
		}
	}
}

func TestNewCheckKeysShareTheTenantSlot(t *testing.T) {
	t.Parallel()
	tenant := uuid.New()
	rules := []Rule{
		{ID: uuid.New(), Kind: KindVelocity, Action: ActionBlock, Precision: 5, MaxPayments: 3, WindowSeconds: 60},
		{ID: uuid.New(), Kind: KindImpossibleTravel, Action: ActionReview, SpeedKmh: 900},
	}
	p := Payment{TenantID: tenant, Lat: 52.52, Lon: 13.405, Customer: "cus_1", Member: "m"}
	c := NewCheck("x:", rules, p)
	if len(c.Keys) != 2 || len(c.Args) != 3+4*2+2 {
		t.Fatalf("keys %v args %v", c.Keys, c.Args)
	}
	for _, k := range c.Keys {
		if want := "x:risk:{" + tenant.String() + "}:"; len(k) < len(want) || k[:len(want)] != want {
			t.Errorf("key %s is not in the tenant's slot", k)
		}
	}
	if c.Keys[0][len(c.Keys[0])-5:] != "u33dc" {
		t.Errorf("velocity key %s: want the precision-5 cell u33dc", c.Keys[0])
	}
	// Without a customer only the velocity rule applies.
	if got := Applicable(rules, Payment{TenantID: tenant, Lat: 1, Lon: 1}); len(got) != 1 || got[0].Kind != KindVelocity {
		t.Errorf("applicable without customer: %v", got)
	}
}
