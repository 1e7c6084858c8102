package payments_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/payments-api/payments/errcode"
	"github.com/payments-api/payments/payments"
)

// BenchmarkCreatePayout measures CreatePayout of 1 minor unit against a
// funded tenant: the balance read from the running totals, the payout, its
// posting and its event, in one unit of the group commit. Serial, then 8
// clients of one tenant (their units share batches):
//
//	go test -run XXX -bench BenchmarkCreatePayout -benchtime 2000x ./payments/
func BenchmarkCreatePayout(b *testing.B) {
	h := newPayoutHarness(b, nil)
	ctx := context.Background()
	run := func(b *testing.B, parallel bool) {
		ten, _ := h.newTenant(b)
		for range 4 {
			h.fund(b, ten, 99_999_999)
		}
		p := payments.PayoutParams{Amount: 1, Currency: "usd"}
		var refused atomic.Int64
		do := func() {
			if _, err := h.svc.CreatePayout(ctx, ten, p); err != nil {
				if errcode.Is(err, payments.CodeBalanceInsufficient) {
					refused.Add(1)
					return
				}
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		if parallel {
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do()
				}
			})
		} else {
			for range b.N {
				do()
			}
		}
		b.StopTimer()
		if refused.Load() > 0 {
			b.Fatalf("%d payouts refused: the tenant's balance ran out", refused.Load())
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("clients=8", func(b *testing.B) { run(b, true) })
}
