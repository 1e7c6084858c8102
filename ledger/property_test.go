package ledger

import (
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
)

// TestLedgerProperty books 1,000 random charges and refunds across three
// tenants and three currencies, in batches of random size, and then checks
// the book against a model kept independently of the ledger's arithmetic:
// every tenant's book sums to zero in every currency, each balance is
// captured - refunded - fees, and the nets of the listed transactions add up
// to the balance. Transactions are booked at known past instants and the
// book is checkpointed halfway and at the end, so the point-in-time balance
// at random instants (and at every checkpoint) must equal the sum of the
// model's nets booked up to then.
func TestLedgerProperty(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	tenants := []uuid.UUID{ids.New(), ids.New(), ids.New()}
	currencies := []string{"eur", "jpy", "usd"}
	type key struct {
		tenant   uuid.UUID
		currency string
	}
	type payment struct {
		key
		id         uuid.UUID
		refundable int64
	}
	var (
		payments []*payment
		captured = map[key]int64{}
		refunded = map[key]int64{}
		fees     = map[key]int64{}
		count    = map[uuid.UUID]int{}
		batch    []Transaction
		booked   []Transaction // every transaction, in booking order
	)
	const opsTotal = 1000
	// Booking instants: opsTotal steps of a random 0 to 3 ms from an hour
	// ago, so several transactions often share one instant.
	clock := time.Now().Add(-time.Hour).Truncate(time.Second)
	var halfway time.Time
	for op := range opsTotal {
		clock = clock.Add(time.Duration(rng.IntN(4)) * time.Millisecond)
		var open []*payment
		for _, p := range payments {
			if p.refundable > 0 {
				open = append(open, p)
			}
		}
		if len(open) > 0 && rng.IntN(3) == 0 {
			p := open[rng.IntN(len(open))]
			amount := 1 + rng.Int64N(p.refundable)
			if rng.IntN(4) == 0 {
				amount = p.refundable // refund the rest
			}
			tx, err := Refund(p.tenant, p.currency, ids.New(), p.id, amount)
			if err != nil {
				t.Fatal(err)
			}
			p.refundable -= amount
			refunded[p.key] += amount
			count[p.tenant]++
			tx.CreatedAt = clock
			batch = append(batch, tx)
			booked = append(booked, tx)
		} else {
			k := key{tenants[rng.IntN(len(tenants))], currencies[rng.IntN(len(currencies))]}
			amount := 1 + rng.Int64N(1_000_000)
			if rng.IntN(10) == 0 {
				amount = 1 + rng.Int64N(40) // small enough that the fee is capped at the amount
			}
			fee := feeFor(amount)
			if rng.IntN(10) == 0 {
				fee = 0
			}
			p := &payment{key: k, id: ids.New(), refundable: amount}
			tx, err := Charge(k.tenant, k.currency, p.id, amount, fee)
			if err != nil {
				t.Fatal(err)
			}
			payments = append(payments, p)
			captured[k] += amount
			fees[k] += fee
			count[k.tenant]++
			tx.CreatedAt = clock
			batch = append(batch, tx)
			booked = append(booked, tx)
		}
		if rng.IntN(8) == 0 || op == opsTotal-1 {
			mustPost(t, pool, batch...)
			batch = nil
			if op >= opsTotal/2 && halfway.IsZero() {
				// Close the first half with checkpoints every few entries;
				// later postings are booked after it.
				halfway = clock.Add(time.Microsecond)
				for _, tenant := range tenants {
					mustCheckpoint(t, pool, tenant, halfway, 1+rng.IntN(40))
				}
				clock = halfway
			}
		}
	}
	end := clock.Add(time.Microsecond)
	for _, tenant := range tenants {
		mustCheckpoint(t, pool, tenant, end, 1+rng.IntN(40))
	}

	// Point in time: at random instants of the history, at every booking
	// instant, and at every checkpoint, the balance is the sum of the nets
	// booked at or before it.
	instants := []time.Time{booked[0].CreatedAt.Add(-time.Second), halfway, end}
	for range 200 {
		instants = append(instants, booked[0].CreatedAt.Add(time.Duration(rng.Int64N(int64(end.Sub(booked[0].CreatedAt))))))
	}
	for _, tx := range booked {
		if rng.IntN(10) == 0 {
			instants = append(instants, tx.CreatedAt, tx.CreatedAt.Add(-time.Microsecond))
		}
	}
	for _, tenant := range tenants {
		rows, err := pool.Query(ctx, `SELECT DISTINCT as_of FROM ledger_checkpoints WHERE tenant_id = $1`, tenant)
		if err != nil {
			t.Fatal(err)
		}
		cps, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) < 3 {
			t.Fatalf("tenant %v: %d checkpoints, want several", tenant, len(cps))
		}
		for _, at := range append(slices.Clone(instants), cps...) {
			model := map[string]int64{}
			for _, tx := range booked {
				if tx.TenantID == tenant && !tx.CreatedAt.After(at) {
					model[tx.Currency] += tx.Net
				}
			}
			var want []Balance
			for _, c := range slices.Sorted(maps.Keys(model)) {
				want = append(want, Balance{Currency: c, Available: model[c]})
			}
			got, err := BalancesAt(ctx, pool, tenant, at)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("tenant %v: BalancesAt(%s) = %+v, want %+v", tenant, at.Format(time.RFC3339Nano), got, want)
			}
		}
		if fs, err := Verify(ctx, pool, tenant); err != nil || len(fs) != 0 {
			t.Errorf("tenant %v: Verify = %v, %v; want a clean book", tenant, fs, err)
		}
	}

	for _, tenant := range tenants {
		var want []Balance
		var used []string
		for _, c := range currencies {
			k := key{tenant, c}
			if captured[k] == 0 {
				continue
			}
			used = append(used, c)
			want = append(want, Balance{Currency: c, Available: captured[k] - refunded[k] - fees[k]})
		}
		assertZeroSums(t, pool, tenant, used...)
		got := mustBalances(t, pool, tenant)
		if !slices.Equal(got, want) {
			t.Errorf("tenant %v: Balances = %+v, want %+v", tenant, got, want)
		}

		// Walk every listed transaction: the balance-transaction view must
		// agree with the entries.
		nets := map[string]int64{}
		seen := 0
		var after *uuid.UUID
		for {
			page, more, err := List(ctx, pool, tenant, ListParams{Limit: ListLimitMax, StartingAfter: after})
			if err != nil {
				t.Fatal(err)
			}
			for _, tx := range page {
				nets[tx.Currency] += tx.Net
			}
			seen += len(page)
			if !more {
				break
			}
			after = &page[len(page)-1].ID
		}
		if seen != count[tenant] {
			t.Errorf("tenant %v: listed %d transactions, booked %d", tenant, seen, count[tenant])
		}
		for _, b := range want {
			if nets[b.Currency] != b.Available {
				t.Errorf("tenant %v %s: nets sum to %d, balance %d", tenant, b.Currency, nets[b.Currency], b.Available)
			}
		}
	}
}
