package webhooks

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/payments-api/payments/dbtest"
	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/sharding"
)

// testClock is a settable clock.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testEnv is one migrated shard with one tenant placed on it.
type testEnv struct {
	t      *testing.T
	shards *sharding.Map
	sh     *sharding.Shard
	tenant uuid.UUID
	clock  *testClock
	svc    *Service
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestEnv(t *testing.T, g *Guard) *testEnv {
	t.Helper()
	ctx := context.Background()
	m, err := sharding.Open(ctx, []sharding.Config{{Name: "s0", Region: "local", DSN: dbtest.NewDatabase(t)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	e := &testEnv{t: t, shards: m, sh: m.Directory(), tenant: ids.New(), clock: newTestClock(t0)}
	if _, err := e.sh.Pool.Exec(ctx, `INSERT INTO tenant_directory (tenant_id, shard, region) VALUES ($1, 's0', 'local')`, e.tenant); err != nil {
		t.Fatal(err)
	}
	e.svc = NewService(Options{Router: sharding.NewRouter(m), Guard: g, Now: e.clock.Now})
	return e
}

func (e *testEnv) endpoint(url string, types ...string) Endpoint {
	e.t.Helper()
	ep, err := e.svc.CreateEndpoint(context.Background(), e.tenant, CreateParams{URL: url, EnabledEvents: types})
	if err != nil {
		e.t.Fatalf("create endpoint %s: %v", url, err)
	}
	return ep
}

// insertEndpoint writes an endpoint row directly, bypassing the URL check.
func (e *testEnv) insertEndpoint(url string) uuid.UUID {
	e.t.Helper()
	id := ids.New()
	if _, err := e.sh.Pool.Exec(context.Background(), `INSERT INTO webhook_endpoints
		(tenant_id, id, url, enabled_events, status, secret, version, created_at, updated_at)
		VALUES ($1, $2, $3, '{*}', 'enabled', $4, 1, $5, $5)`, e.tenant, id, url, NewSecret().Reveal(), e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// appendEvents writes n events of type typ at the clock's time.
func (e *testEnv) appendEvents(n int, typ events.Type) {
	e.t.Helper()
	var evs []events.Event
	for i := range n {
		evs = append(evs, events.Event{
			ID: ids.New(), TenantID: e.tenant, Type: typ, ObjectType: "payment", ObjectID: ids.New(), ObjectVersion: 1,
			Data: []byte(`{"n":` + strconv.Itoa(i) + `}`), CreatedAt: e.clock.Now(),
		})
	}
	err := e.sh.Tx.Run(context.Background(), func(ctx context.Context, tx pgx.Tx) error { return events.Append(ctx, tx, evs...) })
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) worker(o WorkerOptions) *Worker {
	e.t.Helper()
	o.Shards = e.shards
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	w, err := NewWorker(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *testEnv) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.sh.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestFanoutConcurrent: four fan-outs racing over the same events create
// exactly one delivery per event and subscribed, enabled endpoint that
// existed when the event happened.
func TestFanoutConcurrent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	all := e.endpoint("http://127.0.0.1:9/all", "*")
	some := e.endpoint("http://127.0.0.1:9/some", "payment.succeeded")
	off := e.endpoint("http://127.0.0.1:9/off", "*")
	disabled := true
	if _, err := e.svc.UpdateEndpoint(context.Background(), e.tenant, off.ID, UpdateParams{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	const each = 130 // more than one fan-out batch
	e.appendEvents(each, events.PaymentCreated)
	e.appendEvents(each, events.PaymentSucceeded)
	e.clock.Advance(time.Second)
	late := e.endpoint("http://127.0.0.1:9/late", "*")

	w := e.worker(WorkerOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				n, err := w.Fanout(context.Background(), e.sh)
				if err != nil {
					errs <- err
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	per := func(id uuid.UUID) int {
		return e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, id)
	}
	if per(all.ID) != 2*each || per(some.ID) != each || per(off.ID) != 0 || per(late.ID) != 0 {
		t.Fatalf("deliveries: all %d (want %d), some %d (want %d), disabled %d, late %d (want 0)",
			per(all.ID), 2*each, per(some.ID), each, per(off.ID), per(late.ID))
	}
	if n := e.count(`SELECT count(*) FROM event_outbox`); n != 0 {
		t.Fatalf("%d events not dispatched", n)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND event_type <> 'payment.succeeded'`, some.ID); n != 0 {
		t.Fatalf("%d deliveries of unsubscribed types", n)
	}
}

// TestStaleLeaseCannotRecord: a worker whose lease expired (its clock says
// it still holds it) cannot record an outcome after another worker claimed
// the delivery: the fencing token changed.
func TestStaleLeaseCannotRecord(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	ep := e.endpoint("http://127.0.0.1:9/hooks", "*")
	e.clock.Advance(time.Second)
	e.appendEvents(1, events.PaymentSucceeded)

	regA := prometheus.NewRegistry()
	lease := 20 * time.Second
	a := e.worker(WorkerOptions{Owner: "worker-a", Lease: lease, Metrics: NewMetrics(regA)})
	later := newTestClock(e.clock.Now().Add(lease + time.Second))
	b := e.worker(WorkerOptions{Owner: "worker-b", Lease: lease, Now: later.Now})
	c := e.worker(WorkerOptions{Owner: "worker-c", Lease: lease})
	ctx := context.Background()
	if _, err := a.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	jobsA, err := a.Claim(ctx, e.sh, 10)
	if err != nil || len(jobsA) != 1 {
		t.Fatalf("A claims %d (%v)", len(jobsA), err)
	}
	if jobs, err := c.Claim(ctx, e.sh, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("C claimed a leased delivery: %d (%v)", len(jobs), err)
	}
	// A stalls past its lease; B takes the delivery over.
	jobsB, err := b.Claim(ctx, e.sh, 10)
	if err != nil || len(jobsB) != 1 {
		t.Fatalf("B claims %d (%v)", len(jobsB), err)
	}
	ja, jb := jobsA[0], jobsB[0]
	if jb.LeaseVersion != ja.LeaseVersion+1 || jb.Attempt != 2 || jb.DeliveryID != ja.DeliveryID || jb.Endpoint == nil || jb.Endpoint.ID != ep.ID || len(jb.Body) == 0 {
		t.Fatalf("A holds %+v, B holds %+v", ja, jb)
	}
	// A wakes up and tries to record success: refused, nothing changes.
	ok := Result{Attempted: true, Success: true, At: e.clock.Now(), StatusCode: 200, Body: []byte("ok")}
	if err := a.Record(ctx, ja, ok); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale record: %v, want ErrLeaseLost", err)
	}
	var status, owner string
	var version int64
	read := func() {
		t.Helper()
		if err := e.sh.Pool.QueryRow(ctx, `SELECT status, coalesce(lease_owner, ''), lease_version FROM webhook_deliveries WHERE id = $1`, ja.DeliveryID).
			Scan(&status, &owner, &version); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if status != "pending" || owner != "worker-b" || version != jb.LeaseVersion || e.count(`SELECT count(*) FROM webhook_attempts`) != 0 {
		t.Fatalf("after the stale record: status %s owner %s version %d attempts %d", status, owner, version, e.count(`SELECT count(*) FROM webhook_attempts`))
	}
	// B records its (failed) outcome; A still cannot overwrite it.
	fail := Result{Attempted: true, At: later.Now(), StatusCode: 503, Error: "status 503", Body: []byte("busy")}
	if err := b.Record(ctx, jb, fail); err != nil {
		t.Fatalf("B records: %v", err)
	}
	if err := a.Record(ctx, ja, ok); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale record after B's: %v", err)
	}
	read()
	var code int
	if err := e.sh.Pool.QueryRow(ctx, `SELECT last_status_code FROM webhook_deliveries WHERE id = $1`, ja.DeliveryID).Scan(&code); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || owner != "" || code != 503 || e.count(`SELECT count(*) FROM webhook_attempts`) != 1 {
		t.Fatalf("B's outcome: status %s owner %q code %d", status, owner, code)
	}
	if got := counterValue(t, regA, "payments_webhook_stale_lease_discards_total"); got != 2 {
		t.Fatalf("stale discards %v, want 2", got)
	}
}

// TestFailingEndpointIsDisabled: an endpoint whose deliveries all failed
// for the schedule's span is disabled, a webhook_endpoint.disabled event
// records it, and it gets no new deliveries; a success clears the failure
// record; deliveries of a deleted or disabled endpoint end without a
// request.
func TestFailingEndpointIsDisabled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	failing := e.endpoint("http://127.0.0.1:9/failing", "payment.succeeded")
	healthy := e.endpoint("http://127.0.0.1:9/healthy", "payment.succeeded")
	doomed := e.endpoint("http://127.0.0.1:9/doomed", "payment.succeeded")
	span := time.Minute
	w := e.worker(WorkerOptions{Schedule: Schedule{AttemptsMax: 100, DelayBase: time.Second, Span: span}, Metrics: NewMetrics(prometheus.NewRegistry())})
	ctx := context.Background()
	e.clock.Advance(time.Second)
	e.appendEvents(1, events.PaymentSucceeded)
	if _, err := w.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteEndpoint(ctx, e.tenant, doomed.ID); err != nil {
		t.Fatal(err)
	}
	// round claims what is due and records: failure for failing, success
	// for healthy after its first failure.
	round := func() {
		t.Helper()
		jobs, err := w.Claim(ctx, e.sh, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			var res Result
			switch {
			case j.Endpoint.Deleted || j.Endpoint.Status != StatusEnabled:
				res = w.Deliver(ctx, j) // no request: the endpoint is gone or off
			case j.EndpointID == healthy.ID && j.Attempt > 1:
				res = Result{Attempted: true, Success: true, At: e.clock.Now(), StatusCode: 200}
			default:
				res = Result{Attempted: true, At: e.clock.Now(), StatusCode: 500, Error: "status 500"}
			}
			if err := w.Record(ctx, j, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	round()
	if n := e.count(`SELECT count(*) FROM webhook_endpoints WHERE failing_since IS NOT NULL`); n != 2 {
		t.Fatalf("%d endpoints failing, want 2", n)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed' AND last_error = 'the endpoint was deleted'`, doomed.ID); n != 1 {
		t.Fatal("the deleted endpoint's delivery did not end")
	}
	for e.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`) > 0 {
		e.clock.Advance(5 * time.Second)
		round()
	}
	if n := e.count(`SELECT count(*) FROM webhook_endpoints WHERE id = $1 AND failing_since IS NULL AND status = 'enabled'`, healthy.ID); n != 1 {
		t.Fatal("a success did not clear the failure record")
	}
	// The last attempt comes at the end of the span, which the endpoint
	// has spent failing: it is disabled.
	got, err := e.svc.GetEndpoint(ctx, e.tenant, failing.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusDisabled || got.DisabledReason == nil || *got.DisabledReason != DisabledFailing || got.Version != 2 {
		t.Fatalf("endpoint after failing for the span: %+v", got)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed' AND attempts > 2`, failing.ID); n != 1 {
		t.Fatal("the failing endpoint's delivery was not retried until given up")
	}
	evs, _, err := events.List(ctx, e.sh.Pool, e.tenant, events.ListParams{Type: events.WebhookEndpointDisabled})
	if err != nil || len(evs) != 1 {
		t.Fatalf("%d webhook_endpoint.disabled events (%v)", len(evs), err)
	}
	if ev := evs[0]; ev.ObjectID != failing.ID || ev.ObjectVersion != 2 || !strings.Contains(string(ev.Data), `"disabled_reason": "failing"`) || strings.Contains(string(ev.Data), "whsec_") {
		t.Fatalf("disabled event %+v %s", ev, ev.Data)
	}
	// A disabled endpoint gets no new deliveries, and a pending delivery
	// of an endpoint disabled meanwhile ends without a request.
	e.appendEvents(1, events.PaymentSucceeded)
	if _, err := w.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1`, failing.ID); n != 1 {
		t.Fatalf("%d deliveries to the disabled endpoint, want only the one from before", n)
	}
	off := true
	if _, err := e.svc.UpdateEndpoint(ctx, e.tenant, healthy.ID, UpdateParams{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	round()
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'failed' AND last_error = 'the endpoint is disabled'`, healthy.ID); n != 1 {
		t.Fatal("the disabled endpoint's pending delivery did not end")
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'`); n != 0 {
		t.Fatalf("%d deliveries still pending", n)
	}
}

// TestCanaryReceivesNothing: with private networks not allowed, every
// spelling of a loopback address is refused at registration, and a
// delivery to endpoint rows written past the registration check is refused
// at dial time: the canary listener on loopback sees no connection. With
// the flag on, the same delivery reaches it (so the canary can tell).
func TestCanaryReceivesNothing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	e := newTestEnv(t, &Guard{})
	ctx := context.Background()
	forms := []string{
		"https://127.0.0.1:" + port, "https://localhost:" + port, "https://2130706433:" + port, "https://0x7f000001:" + port,
		"https://0177.0.0.1:" + port, "https://127.1:" + port, "https://[::ffff:127.0.0.1]:" + port, "https://[::ffff:7f00:1]:" + port,
		"https://[::1]:" + port, "http://127.0.0.1:" + port,
	}
	for _, u := range forms {
		_, err := e.svc.CreateEndpoint(ctx, e.tenant, CreateParams{URL: u + "/hooks", EnabledEvents: []string{"*"}})
		if c := codeOf(err); c != CodeURLNotAllowed && c != CodeURLInvalid {
			t.Errorf("registration of %s: %v", u, err)
		}
	}
	for _, u := range forms {
		e.insertEndpoint(u + "/hooks")
	}
	e.clock.Advance(time.Second)
	e.appendEvents(1, events.PaymentSucceeded)
	// One claim takes every form: the tenant may use all the slots.
	guarded := e.worker(WorkerOptions{Guard: &Guard{}, Timeout: 2 * time.Second, Lease: 5 * time.Second, TenantConcurrency: ConcurrencyDefault})
	if _, err := guarded.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	jobs, err := guarded.Claim(ctx, e.sh, 100)
	if err != nil || len(jobs) != len(forms) {
		t.Fatalf("claimed %d of %d (%v)", len(jobs), len(forms), err)
	}
	for _, j := range jobs {
		res := guarded.Deliver(ctx, j)
		if !res.Attempted || res.Success || res.StatusCode != 0 || res.Error == "" {
			t.Errorf("delivery to %s: %+v", j.Endpoint.URL, res)
		}
		// Canonical spellings resolve to loopback and must be refused by
		// the dial hook itself (the others may already fail to resolve).
		if u := j.Endpoint.URL; (strings.Contains(u, "//127.0.0.1:") || strings.Contains(u, "//localhost:") || strings.Contains(u, "ffff")) &&
			strings.HasPrefix(u, "https") && !strings.Contains(res.Error, "refused by policy") {
			t.Errorf("delivery to %s failed for another reason: %s", u, res.Error)
		}
		if err := guarded.Record(ctx, j, res); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the canary received %d connections with the allow flag off", n)
	}
	// Control: the same row, delivered by a worker with the flag on,
	// reaches the canary.
	open := e.worker(WorkerOptions{Guard: &Guard{AllowPrivateNetworks: true}, Timeout: 2 * time.Second, Lease: 5 * time.Second})
	for _, j := range jobs {
		if j.Endpoint.URL == "https://127.0.0.1:"+port+"/hooks" {
			open.Deliver(ctx, j)
		}
	}
	if conns.Load() == 0 {
		t.Fatal("the canary saw nothing even with the flag on: it cannot detect a connection")
	}
}

// counterValue reads a counter without labels from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestDeliverAnswers: a redirect is a failed attempt and is not followed,
// an answer is kept up to 64 KiB, and a receiver slower than the timeout
// fails the attempt.
func TestDeliverAnswers(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, target.URL+"/elsewhere", http.StatusTemporaryRedirect)
		case "/big":
			_, _ = w.Write(bytes.Repeat([]byte("x"), ResponseBodyBytesMax+1000))
		case "/slow":
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)
	w, err := NewWorker(WorkerOptions{Shards: &sharding.Map{}, Guard: &Guard{AllowPrivateNetworks: true}, Timeout: 200 * time.Millisecond, Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	job := func(path string) Job {
		return Job{EventID: ids.New(), Body: []byte(`{}`), Endpoint: &Endpoint{URL: srv.URL + path, Status: StatusEnabled, Secret: NewSecret()}}
	}
	ctx := context.Background()
	if res := w.Deliver(ctx, job("/redirect")); res.Success || res.StatusCode != http.StatusTemporaryRedirect || res.Error != "status 307" || followed.Load() != 0 {
		t.Fatalf("redirect: %+v, followed %d", res, followed.Load())
	}
	if res := w.Deliver(ctx, job("/big")); !res.Success || !res.Truncated || len(res.Body) != ResponseBodyBytesMax {
		t.Fatalf("big answer: success %v truncated %v length %d", res.Success, res.Truncated, len(res.Body))
	}
	if res := w.Deliver(ctx, job("/slow")); res.Success || res.StatusCode != 0 || !strings.Contains(res.Error, "timeout") {
		t.Fatalf("slow answer: %+v", res)
	}
}

// TestRedeliverFencesAnInFlightAttempt: a redelivery bumps the lease
// version, so the outcome of an attempt already in flight is discarded and
// the event is sent again.
func TestRedeliverFencesAnInFlightAttempt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	ep := e.endpoint("http://127.0.0.1:9/hooks", "*")
	e.clock.Advance(time.Second)
	e.appendEvents(1, events.PaymentSucceeded)
	w := e.worker(WorkerOptions{})
	ctx := context.Background()
	if _, err := w.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	jobs, err := w.Claim(ctx, e.sh, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claimed %d (%v)", len(jobs), err)
	}
	ds, err := e.svc.Redeliver(ctx, e.tenant, jobs[0].EventID, &ep.ID)
	if err != nil || len(ds) != 1 || ds[0].ID != jobs[0].DeliveryID || ds[0].Attempts != 0 || ds[0].Status != DeliveryPending {
		t.Fatalf("redeliver: %+v (%v)", ds, err)
	}
	if err := w.Record(ctx, jobs[0], Result{Attempted: true, Success: true, At: e.clock.Now(), StatusCode: 200}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("record of the fenced attempt: %v", err)
	}
	again, err := w.Claim(ctx, e.sh, 1)
	if err != nil || len(again) != 1 || again[0].Attempt != 1 || again[0].LeaseVersion != jobs[0].LeaseVersion+2 {
		t.Fatalf("claim after redelivery: %+v (%v)", again, err)
	}
	if err := w.Record(ctx, again[0], Result{Attempted: true, Success: true, At: e.clock.Now(), StatusCode: 200}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Redeliver(ctx, e.tenant, ids.New(), nil); codeOf(err) != "resource_missing" {
		t.Fatalf("redeliver of an unknown event: %v", err)
	}
	off := true
	if _, err := e.svc.UpdateEndpoint(ctx, e.tenant, ep.ID, UpdateParams{Disabled: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Redeliver(ctx, e.tenant, jobs[0].EventID, &ep.ID); codeOf(err) != CodeEndpointDisabled {
		t.Fatalf("redeliver to a disabled endpoint: %v", err)
	}
}
