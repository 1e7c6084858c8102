package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/stripe"
	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// webhookBenchConcurrency is how many deliveries are in flight at once, as
// Stripe sends an account's events concurrently.
const webhookBenchConcurrency = 8

// BenchmarkStripeWebhook measures POST /v1/stripe/webhooks through the
// real router and middleware over loopback HTTP: signature verification,
// decoding, and the transaction that applies the event. "apply" delivers
// payment_intent.succeeded for a payment in requires_action (the payment
// moves, a ledger charge and events are written); "duplicate" delivers an
// event already applied (the once-only check answers). It reports the
// latency percentiles of single deliveries, 8 in flight, and how many
// answers were not 200 (Stripe delivers those again).
// Run with: make bench (or go test -run '^$' -bench StripeWebhook ./api).
func BenchmarkStripeWebhook(b *testing.B) {
	h := newStripeHarness(b, nil, harnessOptions{})
	ten := h.createTenant("Bench", map[string]any{"rate_limit_per_second": 1_000_000, "rate_limit_burst": 1_000_000})
	tenantID, _ := ids.Parse(ids.PrefixTenant, ten.ID)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// failed counts answers other than 200: Stripe delivers those again,
	// so they are reported, not fatal.
	var failed atomic.Int64
	send := func(evt []byte) (time.Duration, error) {
		header := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: evt, Secret: platformWebhookSecret, Timestamp: time.Now()}).Header
		req, _ := http.NewRequest("POST", h.url+"/v1/stripe/webhooks", bytes.NewReader(evt))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", header)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			failed.Add(1)
		}
		return time.Since(start), nil
	}
	// events returns n succeeded events of fresh 3-D Secure payments.
	events := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			p, err := h.payments.Create(context.Background(), tenantID, payments.CreateParams{Amount: 1000, Currency: "usd", PaymentMethod: stripetest.PaymentMethodThreeDSecure})
			if err != nil {
				b.Fatal(err)
			}
			pi := h.d.IntentFor(p.PublicID())
			h.d.CompleteAction(pi)
			out[i] = h.d.Event(stripe.EventPaymentIntentSucceeded, pi)
		}
		return out
	}
	run := func(b *testing.B, evts [][]byte) {
		failed.Store(0)
		lat := make([]time.Duration, len(evts))
		work := make(chan int)
		var wg sync.WaitGroup
		b.ResetTimer()
		for range webhookBenchConcurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					d, err := send(evts[i])
					if err != nil {
						b.Error(err)
					}
					lat[i] = d
				}
			}()
		}
		for i := range evts {
			work <- i
		}
		close(work)
		wg.Wait()
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
		b.ReportMetric(float64(failed.Load()), "non200")
	}
	b.Run("apply", func(b *testing.B) {
		run(b, events(b.N))
	})
	b.Run("duplicate", func(b *testing.B) {
		evt := events(1)[0]
		if _, err := send(evt); err != nil {
			b.Fatal(err)
		}
		evts := make([][]byte, b.N)
		for i := range evts {
			evts[i] = evt
		}
		run(b, evts)
	})
}
