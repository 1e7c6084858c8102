package sharding

import (
	"testing"

	"github.com/google/uuid"

	"github.com/payments-api/payments/errcode"
)

func mapOf(shards ...*Shard) *Map {
	m := &Map{byName: map[string]*Shard{}}
	for _, s := range shards {
		m.shards = append(m.shards, s)
		m.byName[s.Name] = s
	}
	return m
}

func TestPlaceIsDeterministicAndRegional(t *testing.T) {
	t.Parallel()
	m := mapOf(&Shard{Name: "a", Region: "eu"}, &Shard{Name: "b", Region: "eu"}, &Shard{Name: "c", Region: "eu"}, &Shard{Name: "u", Region: "us"})
	counts := map[string]int{}
	for i := 0; i < 3000; i++ {
		id := uuid.New()
		s, err := m.Place(id, "eu")
		if err != nil {
			t.Fatal(err)
		}
		again, _ := m.Place(id, "eu")
		if again != s {
			t.Fatal("placement is not deterministic")
		}
		if s.Region != "eu" {
			t.Fatalf("placed in %s", s.Region)
		}
		counts[s.Name]++
	}
	for _, n := range []string{"a", "b", "c"} {
		// Each of three shards gets about a third; 800 is far below.
		if counts[n] < 800 {
			t.Fatalf("uneven placement %v", counts)
		}
	}
	if _, err := m.Place(uuid.New(), "mars"); !errcode.Is(err, errcode.CodeRegionUnavailable) {
		t.Fatalf("unknown region: %v", err)
	}
}

// TestAddingAShardMovesOnlyItsShare: rendezvous hashing moves a new
// tenant's placement only when the new shard wins it.
func TestAddingAShardMovesOnlyItsShare(t *testing.T) {
	t.Parallel()
	before := mapOf(&Shard{Name: "a", Region: "eu"}, &Shard{Name: "b", Region: "eu"})
	after := mapOf(&Shard{Name: "a", Region: "eu"}, &Shard{Name: "b", Region: "eu"}, &Shard{Name: "c", Region: "eu"})
	moved := 0
	for i := 0; i < 3000; i++ {
		id := uuid.New()
		x, _ := before.Place(id, "eu")
		y, _ := after.Place(id, "eu")
		if x.Name != y.Name {
			if y.Name != "c" {
				t.Fatalf("a tenant moved between old shards: %s -> %s", x.Name, y.Name)
			}
			moved++
		}
	}
	if moved < 700 || moved > 1300 {
		t.Fatalf("%d of 3000 moved, want about a third", moved)
	}
}

func TestValidateConfigs(t *testing.T) {
	t.Parallel()
	ok := Config{Name: "s0", Region: "local", DSN: "postgres://127.0.0.1/p"}
	if err := ValidateConfigs([]Config{ok}); err != nil {
		t.Fatal(err)
	}
	for name, cfgs := range map[string][]Config{
		"none":       nil,
		"bad name":   {{Name: "S 0", Region: "local", DSN: ok.DSN}},
		"bad region": {{Name: "s0", Region: "", DSN: ok.DSN}},
		"twice":      {ok, ok},
		"bad dsn":    {{Name: "s0", Region: "local", DSN: "postgres://u:pw@h:notaport/p"}},
	} {
		if err := ValidateConfigs(cfgs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
