package ledger

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/ids"
)

// TestLedgerProperty books 1,000 random charges and refunds across three
// tenants and three currencies, in batches of random size, and then checks
// the book against a model kept independently of the ledger's arithmetic:
// every tenant's book sums to zero in every currency, each balance is
// captured - refunded - fees, and the nets of the listed transactions add up
// to the balance.
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
	)
	const opsTotal = 1000
	for op := range opsTotal {
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
			batch = append(batch, tx)
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
			batch = append(batch, tx)
		}
		if rng.IntN(8) == 0 || op == opsTotal-1 {
			mustPost(t, pool, batch...)
			batch = nil
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
