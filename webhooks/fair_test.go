package webhooks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
)

// TestRoundRobin: a claim takes tenants in turn, oldest first, within each
// tenant's and endpoint's room.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	a1, a2, b1, c1 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	var cands []candidate
	for range 10 {
		cands = append(cands, candidate{tenant: a, id: uuid.New(), endpoint: a1})
	}
	cands = append(cands, candidate{tenant: b, id: uuid.New(), endpoint: b1}, candidate{tenant: b, id: uuid.New(), endpoint: b1})
	cands = append(cands, candidate{tenant: a, id: uuid.New(), endpoint: a2})
	cands = append(cands, candidate{tenant: c, id: uuid.New(), endpoint: c1})
	tenantsOf := func(p []candidate) []uuid.UUID {
		var out []uuid.UUID
		for _, x := range p {
			out = append(out, x.tenant)
		}
		return out
	}
	for _, tt := range []struct {
		name           string
		n              int
		tenantRoom     map[uuid.UUID]int
		endpointRoom   map[uuid.UUID]int
		tcap, ecap     int
		want           []uuid.UUID
		wantLeft       bool
		wantEndpointA1 int
	}{
		{name: "turns", n: 7, tcap: 4, ecap: 4, want: []uuid.UUID{a, b, c, a, b, a, a}, wantLeft: true, wantEndpointA1: 4},
		{name: "endpoint cap", n: 16, tcap: 8, ecap: 2, want: []uuid.UUID{a, b, c, a, b, a}, wantLeft: true, wantEndpointA1: 2},
		{name: "room in flight", n: 16, tcap: 4, ecap: 4, tenantRoom: map[uuid.UUID]int{a: 1, b: 0}, want: []uuid.UUID{a, c}, wantLeft: true, wantEndpointA1: 1},
		{name: "endpoint room in flight", n: 16, tcap: 4, ecap: 4, endpointRoom: map[uuid.UUID]int{a1: 0}, want: []uuid.UUID{a, b, c, b}, wantLeft: true, wantEndpointA1: 0},
		{name: "all fit", n: 3, tcap: 16, ecap: 16, want: []uuid.UUID{a, b, c}, wantLeft: true, wantEndpointA1: 1},
	} {
		picked, left := roundRobin(cands, tt.n, tt.tenantRoom, tt.endpointRoom, tt.tcap, tt.ecap)
		if got := tenantsOf(picked); !slices.Equal(got, tt.want) || left != tt.wantLeft {
			t.Errorf("%s: tenants %v left %v; want %v left %v", tt.name, got, left, tt.want, tt.wantLeft)
		}
		onA1 := 0
		for _, p := range picked {
			if p.endpoint == a1 {
				onA1++
			}
		}
		if onA1 != tt.wantEndpointA1 {
			t.Errorf("%s: %d picked for endpoint a1, want %d", tt.name, onA1, tt.wantEndpointA1)
		}
	}
	if p, left := roundRobin(cands[10:12], 5, nil, nil, 4, 4); len(p) != 2 || left {
		t.Errorf("two candidates, room for five: %d picked, left %v", len(p), left)
	}
}

// TestSlowTenantDoesNotDelayOthers is the measured scenario: one tenant's
// sixteen endpoints hold every request, and its backlog is older than
// another tenant's deliveries. Before fair claiming the slow tenant took
// every slot and the other waited for its timeouts. Now the other tenant's
// deliveries all arrive while every held request is still held: none of
// them had to time out first. Two workers share the queue, so the caps and
// the fencing work together; each of the other tenant's events arrives
// exactly once.
func TestSlowTenantDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	ctx := context.Background()
	other := ids.New()
	if _, err := e.sh.Pool.Exec(ctx, `INSERT INTO tenant_directory (tenant_id, shard, region) VALUES ($1, 's0', 'local')`, other); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	var held, aborted atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		select {
		case <-release:
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
			aborted.Add(1)
		}
	}))
	t.Cleanup(slow.Close)
	var mu sync.Mutex
	got := map[string]int{}
	var lags []time.Duration
	const otherEvents = 20
	done := make(chan struct{})
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		id := r.Header.Get(EventIDHeader)
		got[id]++
		if got[id] == 1 {
			lags = append(lags, time.Since(appendedAt(t, r)))
		}
		if len(got) == otherEvents {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(fast.Close)

	for i := range 16 {
		e.endpoint(slow.URL+"/slow/"+strconv.Itoa(i), "*")
	}
	if _, err := e.svc.CreateEndpoint(ctx, other, CreateParams{URL: fast.URL + "/fast", EnabledEvents: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.appendEvents(5, events.PaymentSucceeded) // 80 deliveries, older
	e.clock.Advance(time.Second)
	var evs []events.Event
	for i := range otherEvents {
		evs = append(evs, events.Event{
			ID: ids.New(), TenantID: other, Type: events.PaymentSucceeded, ObjectType: "payment", ObjectID: ids.New(), ObjectVersion: 1,
			Data: []byte(`{"appended_at":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `,"n":` + strconv.Itoa(i) + `}`), CreatedAt: e.clock.Now(),
		})
	}
	if err := e.sh.Tx.Run(ctx, func(ctx context.Context, tx pgx.Tx) error { return events.Append(ctx, tx, evs...) }); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, owner := range []string{"worker-a", "worker-b"} {
		w := e.worker(WorkerOptions{Owner: owner, Timeout: TimeoutMax, PollInterval: 50 * time.Millisecond, Guard: &Guard{AllowPrivateNetworks: true}})
		wg.Go(func() { w.Run(runCtx) })
	}
	defer func() {
		close(release)
		stop()
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Logf("deliveries %d, outbox %d, by status %d", e.count(`SELECT count(*) FROM webhook_deliveries`), e.count(`SELECT count(*) FROM event_outbox`), e.count(`SELECT count(*) FROM webhook_deliveries WHERE lease_owner IS NOT NULL`))
		t.Fatalf("the other tenant got %d of %d events (slow requests held %d, aborted %d)", len(got), otherEvents, held.Load(), aborted.Load())
	}
	if a := aborted.Load(); a != 0 {
		t.Fatalf("%d of the slow tenant's requests timed out before the other tenant's deliveries all arrived: they waited for its slots", a)
	}
	// Each worker gives the slow tenant a quarter of its 16 slots.
	if h := held.Load(); h < 4 || h > 8 {
		t.Fatalf("the slow tenant holds %d requests; want its share of two workers' slots, 4 to 8", h)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	slices.Sort(lags)
	t.Logf("the other tenant's delivery lag: p50 %v, max %v (the slow tenant holds %d requests)", lags[len(lags)/2], lags[len(lags)-1], held.Load())
}

// appendedAt reads the wall time the test wrote into an event's data.
func appendedAt(t *testing.T, r *http.Request) time.Time {
	var body struct {
		Data struct {
			Object struct {
				AppendedAt int64 `json:"appended_at"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data.Object.AppendedAt == 0 {
		t.Errorf("event body: %v", err)
		return time.Now()
	}
	return time.Unix(0, body.Data.Object.AppendedAt)
}

// TestFanoutIgnoresClockSkew: an endpoint created by a process whose clock
// runs ten minutes ahead still gets the events that happen after it, as
// written by a process with the right time. The fan-out compares the
// database's times (recorded_at), not the writers' clocks; an event
// recorded before the endpoint is still not sent to it.
func TestFanoutIgnoresClockSkew(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, &Guard{AllowPrivateNetworks: true})
	ctx := context.Background()
	e.appendEvents(1, events.PaymentCreated) // before the endpoint
	e.clock.Advance(10 * time.Minute)
	ep := e.endpoint("http://127.0.0.1:9/skewed", "*")
	e.clock.Advance(-10 * time.Minute)
	e.appendEvents(3, events.PaymentSucceeded) // after it, by a clock behind
	w := e.worker(WorkerOptions{})
	if _, err := w.Fanout(ctx, e.sh); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND event_type = 'payment.succeeded'`, ep.ID); n != 3 {
		t.Fatalf("%d of the 3 events after the endpoint were delivered", n)
	}
	if n := e.count(`SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND event_type = 'payment.created'`, ep.ID); n != 0 {
		t.Fatalf("the event from before the endpoint was delivered to it")
	}
}
