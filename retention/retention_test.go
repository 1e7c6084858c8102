package retention_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/payments"
	"github.com/payments-api/payments/processor/sandbox"
	"github.com/payments-api/payments/retention"
	"github.com/payments-api/payments/sharding"
	"github.com/payments-api/payments/tenancy"
	"github.com/payments-api/payments/webhooks"
)

type fixture struct {
	sh      *sharding.Shard
	shards  *sharding.Map
	tenant  uuid.UUID
	pays    *payments.Service
	hooks   *webhooks.Service
	worker  *webhooks.Worker
	tenants *tenancy.Service
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(tb)}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	router := sharding.NewRouter(m)
	f := &fixture{sh: m.All()[0], shards: m, tenants: tenancy.NewService(router, tenancy.RateLimitDefaults{}, nil, nil)}
	ten, _, _, err := f.tenants.CreateTenant(ctx, tenancy.CreateTenantParams{Name: "retained", Region: "local"})
	if err != nil {
		tb.Fatal(err)
	}
	f.tenant = ten.ID
	sb, err := sandbox.New(sandbox.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sb.Close() })
	f.pays = payments.NewService(payments.Options{Router: router, Processor: sb})
	tb.Cleanup(f.pays.Close)
	guard := &webhooks.Guard{AllowPrivateNetworks: true}
	f.hooks = webhooks.NewService(webhooks.Options{Router: router, Guard: guard})
	f.worker, err = webhooks.NewWorker(webhooks.WorkerOptions{Shards: m, Guard: guard})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func (f *fixture) pay(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if _, err := f.pays.Create(context.Background(), f.tenant, payments.CreateParams{Amount: 1500, Currency: "usd", PaymentMethod: "pm_card_visa"}); err != nil {
			tb.Fatal(err)
		}
	}
}

func (f *fixture) count(tb testing.TB, sql string) int {
	tb.Helper()
	var n int
	if err := f.sh.Pool.QueryRow(context.Background(), sql, f.tenant).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return n
}

// deliverAll fans the outbox out and makes one attempt of every due
// delivery.
func (f *fixture) deliverAll(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	if _, err := f.worker.Fanout(ctx, f.sh); err != nil {
		tb.Fatal(err)
	}
	jobs, err := f.worker.Claim(ctx, f.sh, 100)
	if err != nil {
		tb.Fatal(err)
	}
	for _, j := range jobs {
		if err := f.worker.Record(ctx, j, f.worker.Deliver(ctx, j)); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestPurgeKeepsTheLedgerAndWhatIsStillNeeded: a pass 31 days later
// deletes the old events, the finished deliveries and their attempts, in
// several batches; it keeps every ledger transaction and entry, the
// payments, a delivery still pending (and its event) and the events the
// outbox has not dispatched. A pass today deletes nothing.
func TestPurgeKeepsTheLedgerAndWhatIsStillNeeded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer failing.Close()
	if _, err := f.hooks.CreateEndpoint(ctx, f.tenant, webhooks.CreateParams{URL: ok.URL, EnabledEvents: []string{"payment.succeeded"}}); err != nil {
		t.Fatal(err)
	}
	f.pay(t, 6)
	f.deliverAll(t) // 6 finished deliveries
	if _, err := f.hooks.CreateEndpoint(ctx, f.tenant, webhooks.CreateParams{URL: failing.URL, EnabledEvents: []string{"payment.created"}}); err != nil {
		t.Fatal(err)
	}
	f.pay(t, 1)
	f.deliverAll(t) // one more finished (succeeded), one pending after its failed attempt
	f.pay(t, 1)     // its events stay in the outbox

	const (
		ledgerTxs     = `SELECT count(*) FROM ledger_transactions WHERE tenant_id = $1`
		ledgerEntries = `SELECT count(*) FROM ledger_entries WHERE tenant_id = $1`
		allEvents     = `SELECT count(*) FROM events WHERE tenant_id = $1`
		pending       = `SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND status = 'pending'`
		finished      = `SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND status <> 'pending'`
		attempts      = `SELECT count(*) FROM webhook_attempts WHERE tenant_id = $1`
		outboxed      = `SELECT count(*) FROM event_outbox WHERE tenant_id = $1`
		kept          = `SELECT count(*) FROM events e WHERE tenant_id = $1 AND (
			EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.status = 'pending')
			OR EXISTS (SELECT 1 FROM event_outbox o WHERE o.tenant_id = e.tenant_id AND o.event_id = e.id))`
		allPayments = `SELECT count(*) FROM payments WHERE tenant_id = $1`
	)
	txs, entries, evs, keep, pays := f.count(t, ledgerTxs), f.count(t, ledgerEntries), f.count(t, allEvents), f.count(t, kept), f.count(t, allPayments)
	if txs != 8 || entries == 0 || f.count(t, pending) != 1 || f.count(t, finished) != 7 || f.count(t, attempts) != 8 || f.count(t, outboxed) != 2 || keep != 3 {
		t.Fatalf("setup: %d ledger transactions, %d pending, %d finished, %d attempts, %d in the outbox, %d to keep",
			txs, f.count(t, pending), f.count(t, finished), f.count(t, attempts), f.count(t, outboxed), keep)
	}

	today, err := retention.New(retention.Options{Shards: f.shards})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := today.PurgeShard(ctx, f.sh); err != nil || st.Events+st.Deliveries+st.Attempts != 0 {
		t.Fatalf("a pass today purged %+v (%v), want nothing", st, err)
	}

	later, err := retention.New(retention.Options{Shards: f.shards, BatchRows: 3, Pause: time.Millisecond,
		Now: func() time.Time { return time.Now().Add(31 * retention.Day) }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := later.PurgeShard(ctx, f.sh)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deliveries != 7 || st.Attempts != 7 || st.Events != int64(evs-keep) || st.Batches < 4 {
		t.Fatalf("purged %+v, want 7 deliveries, 7 attempts, %d events, in several batches", st, evs-keep)
	}
	if f.count(t, ledgerTxs) != txs || f.count(t, ledgerEntries) != entries || f.count(t, allPayments) != pays {
		t.Fatal("the purge touched the ledger or the payments")
	}
	if f.count(t, allEvents) != keep || f.count(t, kept) != keep || f.count(t, pending) != 1 || f.count(t, finished) != 0 || f.count(t, attempts) != 1 {
		t.Fatalf("after the purge: %d events (want %d), %d pending, %d finished, %d attempts",
			f.count(t, allEvents), keep, f.count(t, pending), f.count(t, finished), f.count(t, attempts))
	}
	if st, err := later.PurgeShard(ctx, f.sh); err != nil || st.Events+st.Deliveries+st.Attempts != 0 {
		t.Fatalf("a second pass purged %+v (%v), want nothing", st, err)
	}
}

// TestNewRefusesBadOptions: every option has its bounds.
func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	m := &sharding.Map{}
	for name, o := range map[string]retention.Options{
		"no shards":            {},
		"events too short":     {Shards: m, EventRetention: retention.Day},
		"events too long":      {Shards: m, EventRetention: retention.RetentionMax + retention.Day},
		"deliveries too short": {Shards: m, DeliveryRetention: time.Hour},
		"batch too large":      {Shards: m, BatchRows: retention.BatchRowsMax + 1},
		"negative batch":       {Shards: m, BatchRows: -1},
		"pause too long":       {Shards: m, Pause: retention.PauseMax + time.Second},
		"negative interval":    {Shards: m, Interval: -time.Second},
	} {
		if _, err := retention.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := retention.New(retention.Options{Shards: m}); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
}
