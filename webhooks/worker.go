package webhooks

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/events"
	"github.com/payments-api/payments/ids"
	"github.com/payments-api/payments/secretbox"
	"github.com/payments-api/payments/sharding"
)

// Worker limits and defaults.
const (
	// TimeoutMax bounds one delivery request: a 2xx answer within it is
	// success. It is also the default.
	TimeoutMax = 10 * time.Second
	// LeaseDefault is how long a claim lasts; it must exceed the timeout.
	LeaseDefault = 60 * time.Second
	// ConcurrencyDefault is how many deliveries one worker sends at once
	// per shard.
	ConcurrencyDefault = 16
	// ConcurrencyMax bounds Concurrency.
	ConcurrencyMax = 1024
	// EndpointConcurrencyDefault is how many deliveries one worker sends
	// at once to one endpoint, per shard.
	EndpointConcurrencyDefault = 4
	// tenantShareDefault: by default one tenant may hold a quarter of a
	// worker's concurrency, so that at least four tenants are served at
	// once however many deliveries one of them has due.
	tenantShareDefault = 4
	// claimScanFactor and claimScanMax bound the due deliveries one claim
	// reads to choose from: claimScanFactor times the free slots.
	claimScanFactor = 8
	claimScanMax    = 1000
	// PollIntervalDefault is how long an idle worker waits before it looks
	// for work again.
	PollIntervalDefault = time.Second
	// FanoutBatchMax bounds the events one fan-out transaction dispatches.
	FanoutBatchMax = 100
	// fanoutInsertRowsMax bounds the rows of one INSERT statement.
	fanoutInsertRowsMax = 1000
	// GaugeInterval is how often the oldest-undelivered gauge is refreshed.
	GaugeInterval = 5 * time.Second
	// recordTimeout bounds the recording of one outcome, which runs even
	// while the worker stops.
	recordTimeout = 15 * time.Second
	// userAgent identifies deliveries.
	userAgent = "payments-webhooks/1"
)

// ErrLeaseLost is Record's answer when the delivery's lease version is no
// longer the one the worker claimed: another worker took the delivery over
// (or it was redelivered), and this outcome is discarded.
var ErrLeaseLost = errors.New("webhooks: lease lost: the delivery was taken over, outcome discarded")

// WorkerOptions configures a Worker. Zero values take the defaults.
type WorkerOptions struct {
	Shards   *sharding.Map
	Guard    *Guard
	Schedule Schedule
	// Timeout bounds one request (at most TimeoutMax).
	Timeout time.Duration
	// Lease is how long a claim lasts; it must exceed Timeout.
	Lease       time.Duration
	Concurrency int
	// TenantConcurrency bounds the deliveries of one tenant in flight at
	// once (per worker and shard), and EndpointConcurrency those to one
	// endpoint: one tenant's slow or failing endpoints then hold a bounded
	// share of the slots, and the rest serve the other tenants. Defaults:
	// a quarter of Concurrency (at least 1), and
	// EndpointConcurrencyDefault (at most TenantConcurrency).
	TenantConcurrency   int
	EndpointConcurrency int
	PollInterval        time.Duration
	// Owner names this worker in lease_owner; default host:pid:random.
	Owner string
	// Box opens signing secrets sealed at rest; nil reads them in the clear.
	Box     *secretbox.Box
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Worker fans events out to deliveries and sends them. Several workers
// (threads or processes) may run against the same shards: they share the
// queue through leases and fence each other's outcomes by lease version.
type Worker struct {
	opts   WorkerOptions
	client *http.Client
	sealer sealer
}

// NewWorker validates o and returns a worker.
func NewWorker(o WorkerOptions) (*Worker, error) {
	if o.Shards == nil {
		return nil, errors.New("webhooks: worker: no shard map")
	}
	if o.Guard == nil {
		o.Guard = &Guard{}
	}
	if o.Schedule == (Schedule{}) {
		o.Schedule = DefaultSchedule()
	}
	if err := o.Schedule.Validate(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = TimeoutMax
	}
	if o.Lease == 0 {
		o.Lease = LeaseDefault
	}
	if o.Concurrency == 0 {
		o.Concurrency = ConcurrencyDefault
	}
	if o.PollInterval == 0 {
		o.PollInterval = PollIntervalDefault
	}
	if o.TenantConcurrency == 0 {
		o.TenantConcurrency = max(1, o.Concurrency/tenantShareDefault)
	}
	if o.EndpointConcurrency == 0 {
		o.EndpointConcurrency = min(EndpointConcurrencyDefault, o.TenantConcurrency)
	}
	switch {
	case o.Timeout < 0 || o.Timeout > TimeoutMax:
		return nil, fmt.Errorf("webhooks: worker: Timeout %v: want at most %v", o.Timeout, TimeoutMax)
	case o.Lease <= o.Timeout:
		return nil, fmt.Errorf("webhooks: worker: Lease %v must exceed Timeout %v, or deliveries are taken over while they run", o.Lease, o.Timeout)
	case o.Concurrency < 1 || o.Concurrency > ConcurrencyMax:
		return nil, fmt.Errorf("webhooks: worker: Concurrency %d: want 1 to %d", o.Concurrency, ConcurrencyMax)
	case o.TenantConcurrency < 1 || o.TenantConcurrency > o.Concurrency:
		return nil, fmt.Errorf("webhooks: worker: TenantConcurrency %d: want 1 to Concurrency (%d)", o.TenantConcurrency, o.Concurrency)
	case o.EndpointConcurrency < 1 || o.EndpointConcurrency > o.TenantConcurrency:
		return nil, fmt.Errorf("webhooks: worker: EndpointConcurrency %d: want 1 to TenantConcurrency (%d)", o.EndpointConcurrency, o.TenantConcurrency)
	case o.PollInterval < 0:
		return nil, fmt.Errorf("webhooks: worker: PollInterval %v must not be negative", o.PollInterval)
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		o.Owner = fmt.Sprintf("%.100s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if len(o.Owner) > 200 {
		return nil, errors.New("webhooks: worker: Owner must be at most 200 bytes")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Worker{opts: o, client: o.Guard.Client(o.Timeout), sealer: sealer{box: o.Box}}, nil
}

// Owner is the name this worker writes into the leases it holds.
func (w *Worker) Owner() string { return w.opts.Owner }

// Fanout creates the deliveries of up to FanoutBatchMax undispatched events
// of one shard and marks the events dispatched, in one transaction. An
// event goes to every enabled endpoint of its tenant that subscribes to its
// type and existed when the event happened. Concurrent fan-outs are safe:
// the unique key on (tenant, event, endpoint) and ON CONFLICT DO NOTHING
// keep one delivery per pair at READ COMMITTED. It
// answers how many events it dispatched.
func (w *Worker) Fanout(ctx context.Context, sh *sharding.Shard) (int, error) {
	type ev struct {
		tenant, id        uuid.UUID
		typ               string
		created, recorded time.Time
	}
	type ep struct {
		id       uuid.UUID
		events   []string
		recorded time.Time
	}
	var dispatched int
	// READ COMMITTED: the deliveries' ON CONFLICT on their key keeps two
	// fan-outs of the same event from making two deliveries, and the scan
	// of the outbox takes no predicate locks on the pages payments insert
	// into.
	err := sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
		dispatched = 0
		now := w.opts.Now()
		rows, err := tx.Query(ctx, `SELECT e.tenant_id, e.id, e.type, e.created_at, e.recorded_at FROM
			(SELECT tenant_id, event_id FROM event_outbox ORDER BY created_at LIMIT $1) o
			JOIN events e ON e.tenant_id = o.tenant_id AND e.id = o.event_id ORDER BY e.created_at`, FanoutBatchMax)
		if err != nil {
			return fmt.Errorf("read undispatched events: %w", err)
		}
		evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ev, error) {
			var e ev
			err := r.Scan(&e.tenant, &e.id, &e.typ, &e.created, &e.recorded)
			return e, err
		})
		if err != nil {
			return fmt.Errorf("read undispatched events: %w", err)
		}
		if len(evs) == 0 {
			return nil
		}
		var tenants, eventTenants, eventIDs []uuid.UUID
		seen := map[uuid.UUID]bool{}
		for _, e := range evs {
			eventTenants = append(eventTenants, e.tenant)
			eventIDs = append(eventIDs, e.id)
			if !seen[e.tenant] {
				seen[e.tenant] = true
				tenants = append(tenants, e.tenant)
			}
		}
		rows, err = tx.Query(ctx, `SELECT tenant_id, id, enabled_events, recorded_at FROM webhook_endpoints
			WHERE tenant_id = ANY($1::UUID[]) AND status = 'enabled' AND deleted_at IS NULL`, tenants)
		if err != nil {
			return fmt.Errorf("read webhook endpoints: %w", err)
		}
		byTenant := map[uuid.UUID][]ep{}
		for rows.Next() {
			var t uuid.UUID
			var e ep
			if err := rows.Scan(&t, &e.id, &e.events, &e.recorded); err != nil {
				rows.Close()
				return fmt.Errorf("scan webhook endpoint: %w", err)
			}
			byTenant[t] = append(byTenant[t], e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read webhook endpoints: %w", err)
		}
		var args []any
		var values []string
		flush := func() error {
			if len(values) == 0 {
				return nil
			}
			_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries
				(tenant_id, id, event_id, endpoint_id, event_type, event_created_at, status, attempts, started_at, next_attempt_at, created_at, updated_at)
				VALUES `+strings.Join(values, ", ")+` ON CONFLICT (tenant_id, event_id, endpoint_id) DO NOTHING`, args...)
			values, args = values[:0], args[:0]
			if err != nil {
				return fmt.Errorf("insert webhook deliveries: %w", err)
			}
			return nil
		}
		for _, e := range evs {
			for _, p := range byTenant[e.tenant] {
				sub := Endpoint{EnabledEvents: p.events}
				// Both times are the database's (recorded_at), never two
				// processes' clocks: skew between API processes cannot make
				// an endpoint miss the events after it.
				if p.recorded.After(e.recorded) || !sub.Subscribes(e.typ) {
					continue
				}
				if len(args) == 0 {
					args = append(args, now)
				}
				n := len(args)
				values = append(values, fmt.Sprintf("($%d, $%d, $%d, $%d, $%d, $%d, 'pending', 0, $1, $1, $1, $1)", n+1, n+2, n+3, n+4, n+5, n+6))
				args = append(args, e.tenant, ids.New(), e.id, p.id, e.typ, e.created)
				if len(values) >= fanoutInsertRowsMax {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		// Exact (tenant, event) pairs: "tenant_id = ANY AND event_id = ANY"
		// made the planner scan every outbox row of those tenants (measured:
		// 90 µs per deleted row under load).
		if _, err := tx.Exec(ctx, `DELETE FROM event_outbox WHERE (tenant_id, event_id) IN
			(SELECT t, e FROM unnest($1::UUID[], $2::UUID[]) AS d (t, e))`,
			eventTenants, eventIDs); err != nil {
			return fmt.Errorf("mark events dispatched: %w", err)
		}
		dispatched = len(evs)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fan out shard %s: %w", sh.Name, err)
	}
	w.opts.Metrics.dispatchedEvents(dispatched)
	return dispatched, nil
}

// Job is a claimed delivery with what sending it needs.
type Job struct {
	Shard      *sharding.Shard
	TenantID   uuid.UUID
	DeliveryID uuid.UUID
	EventID    uuid.UUID
	EndpointID uuid.UUID
	// Attempt is this attempt's number in the delivery's cycle, from 1.
	Attempt int
	// StartedAt is when the delivery's cycle began.
	StartedAt time.Time
	// EventCreatedAt is when the delivered event happened, the start of
	// the delivery lag.
	EventCreatedAt time.Time
	// LeaseVersion is the fencing token: the outcome is recorded only if
	// the row still carries it.
	LeaseVersion int64
	// Endpoint is nil when the endpoint row is gone.
	Endpoint *Endpoint
	// Body is the signed payload: the event as GET /v1/events/{id}
	// answers it; nil when the event is gone.
	Body []byte
}

// Claim leases up to n due deliveries of one shard, fairly across tenants
// (see claim), with nothing of this worker in flight.
func (w *Worker) Claim(ctx context.Context, sh *sharding.Shard, n int) ([]Job, error) {
	jobs, _, err := w.claim(ctx, sh, n, newInflight())
	return jobs, err
}

// claim leases up to n due deliveries of one shard in a short READ
// COMMITTED transaction: each claim sets the owner and the lease expiry,
// increments lease_version (the fencing token) and counts the attempt. A
// delivery whose lease expired (its worker died or stalled) is due again.
// It then reads the endpoints and events the jobs need.
//
// The choice is fair: it reads the oldest due deliveries of the tenants and
// endpoints that have room under TenantConcurrency and
// EndpointConcurrency (given what this worker has in flight), then takes
// them round-robin across tenants, oldest tenant first, so that a tenant
// with a deep backlog takes its share and no more. more reports that due
// deliveries were left for lack of room or of scan, so the caller should
// claim again without waiting for the poll interval.
func (w *Worker) claim(ctx context.Context, sh *sharding.Shard, n int, fl *inflight) (jobs []Job, more bool, err error) {
	if n <= 0 {
		return nil, false, nil
	}
	fullTenants, fullEndpoints, tenantRoom, endpointRoom := fl.room(w.opts.TenantConcurrency, w.opts.EndpointConcurrency)
	scan := min(n*claimScanFactor, claimScanMax)
	// READ COMMITTED: the UPDATE repeats the due condition, and the engine
	// re-checks it on the newest row version after waiting for a
	// concurrent claimer, so a delivery is leased once; the lease version
	// fences the outcome in any case.
	err = sh.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
		jobs, more = nil, false
		now := w.opts.Now()
		rows, err := tx.Query(ctx, `SELECT tenant_id, id, endpoint_id FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
			AND NOT (tenant_id = ANY($2::UUID[])) AND NOT (endpoint_id = ANY($3::UUID[]))
			ORDER BY next_attempt_at LIMIT $4`, now, fullTenants, fullEndpoints, scan)
		if err != nil {
			return fmt.Errorf("read due webhook deliveries: %w", err)
		}
		cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
			var c candidate
			err := r.Scan(&c.tenant, &c.id, &c.endpoint)
			return c, err
		})
		if err != nil {
			return fmt.Errorf("read due webhook deliveries: %w", err)
		}
		picked, left := roundRobin(cands, n, tenantRoom, endpointRoom, w.opts.TenantConcurrency, w.opts.EndpointConcurrency)
		more = left || len(cands) == scan
		if len(picked) == 0 {
			return nil
		}
		tenants, deliveries := make([]uuid.UUID, len(picked)), make([]uuid.UUID, len(picked))
		for i, c := range picked {
			tenants[i], deliveries[i] = c.tenant, c.id
		}
		rows, err = tx.Query(ctx, `UPDATE webhook_deliveries
			SET lease_owner = $1, lease_expires_at = $2, lease_version = lease_version + 1, attempts = attempts + 1, updated_at = $3
			WHERE (tenant_id, id) IN (SELECT t, d FROM unnest($4::UUID[], $5::UUID[]) AS p (t, d))
			AND status = 'pending' AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3)
			RETURNING tenant_id, id, event_id, endpoint_id, attempts, started_at, lease_version, event_created_at`,
			w.opts.Owner, now.Add(w.opts.Lease), now, tenants, deliveries)
		if err != nil {
			return fmt.Errorf("claim webhook deliveries: %w", err)
		}
		jobs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
			j := Job{Shard: sh}
			err := r.Scan(&j.TenantID, &j.DeliveryID, &j.EventID, &j.EndpointID, &j.Attempt, &j.StartedAt, &j.LeaseVersion, &j.EventCreatedAt)
			return j, err
		})
		if err != nil {
			return fmt.Errorf("claim webhook deliveries: %w", err)
		}
		return nil
	})
	if err != nil || len(jobs) == 0 {
		return nil, more, err
	}
	if err := w.load(ctx, sh, jobs); err != nil {
		// The leases expire and another claim retries them.
		return nil, more, err
	}
	return jobs, more, nil
}

// candidate is a due delivery a claim may take.
type candidate struct{ tenant, id, endpoint uuid.UUID }

// roundRobin picks up to n of cands (oldest first), one per tenant in turn,
// tenants in the order of their oldest candidate, within each tenant's and
// endpoint's room (a missing entry is a full cap). left reports that a
// candidate was passed over for lack of room.
func roundRobin(cands []candidate, n int, tenantRoom, endpointRoom map[uuid.UUID]int, tenantCap, endpointCap int) (picked []candidate, left bool) {
	var order []uuid.UUID
	queues := map[uuid.UUID][]candidate{}
	for _, c := range cands {
		if _, ok := queues[c.tenant]; !ok {
			order = append(order, c.tenant)
		}
		queues[c.tenant] = append(queues[c.tenant], c)
	}
	room := func(m map[uuid.UUID]int, k uuid.UUID, full int) int {
		if r, ok := m[k]; ok {
			return r
		}
		return full
	}
	tr, er := map[uuid.UUID]int{}, map[uuid.UUID]int{}
	for _, t := range order {
		tr[t] = room(tenantRoom, t, tenantCap)
	}
	for len(picked) < n {
		progress := false
		for _, t := range order {
			if len(picked) == n {
				break
			}
			q := queues[t]
			for len(q) > 0 && tr[t] > 0 {
				c := q[0]
				q = q[1:]
				if _, ok := er[c.endpoint]; !ok {
					er[c.endpoint] = room(endpointRoom, c.endpoint, endpointCap)
				}
				if er[c.endpoint] == 0 {
					left = true
					continue
				}
				er[c.endpoint]--
				tr[t]--
				picked = append(picked, c)
				progress = true
				break
			}
			queues[t] = q
		}
		if !progress {
			break
		}
	}
	for _, q := range queues {
		if len(q) > 0 {
			left = true
		}
	}
	return picked, left
}

// inflight counts one shard loop's deliveries in flight, by tenant and by
// endpoint.
type inflight struct {
	mu        sync.Mutex
	tenants   map[uuid.UUID]int
	endpoints map[uuid.UUID]int
}

func newInflight() *inflight {
	return &inflight{tenants: map[uuid.UUID]int{}, endpoints: map[uuid.UUID]int{}}
}

func (f *inflight) add(j Job) {
	f.mu.Lock()
	f.tenants[j.TenantID]++
	f.endpoints[j.EndpointID]++
	f.mu.Unlock()
}

func (f *inflight) done(j Job) {
	f.mu.Lock()
	if f.tenants[j.TenantID]--; f.tenants[j.TenantID] <= 0 {
		delete(f.tenants, j.TenantID)
	}
	if f.endpoints[j.EndpointID]--; f.endpoints[j.EndpointID] <= 0 {
		delete(f.endpoints, j.EndpointID)
	}
	f.mu.Unlock()
}

// room answers the tenants and endpoints at their cap, and the room left
// under the cap of those with deliveries in flight.
func (f *inflight) room(tenantCap, endpointCap int) (fullTenants, fullEndpoints []uuid.UUID, tenantRoom, endpointRoom map[uuid.UUID]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fullTenants, fullEndpoints = []uuid.UUID{}, []uuid.UUID{}
	tenantRoom, endpointRoom = map[uuid.UUID]int{}, map[uuid.UUID]int{}
	for t, n := range f.tenants {
		if n >= tenantCap {
			fullTenants = append(fullTenants, t)
		}
		tenantRoom[t] = max(tenantCap-n, 0)
	}
	for e, n := range f.endpoints {
		if n >= endpointCap {
			fullEndpoints = append(fullEndpoints, e)
		}
		endpointRoom[e] = max(endpointCap-n, 0)
	}
	return fullTenants, fullEndpoints, tenantRoom, endpointRoom
}

// load reads the endpoints and rendered events of claimed jobs.
func (w *Worker) load(ctx context.Context, sh *sharding.Shard, jobs []Job) error {
	var tenants, endpointIDs, eventIDs []uuid.UUID
	for _, j := range jobs {
		tenants = append(tenants, j.TenantID)
		endpointIDs = append(endpointIDs, j.EndpointID)
		eventIDs = append(eventIDs, j.EventID)
	}
	rows, err := sh.Pool.Query(ctx, selectEndpoint+` WHERE tenant_id = ANY($1::UUID[]) AND id = ANY($2::UUID[])`, tenants, endpointIDs)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	eps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return w.sealer.scanEndpoint(r) })
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	byID := map[uuid.UUID]*Endpoint{}
	for i := range eps {
		byID[eps[i].ID] = &eps[i]
	}
	evs, err := events.GetMany(ctx, sh.Pool, tenants, eventIDs)
	if err != nil {
		return err
	}
	bodies := map[uuid.UUID][]byte{}
	for _, e := range evs {
		b, err := events.Render(e)
		if err != nil {
			return err
		}
		bodies[e.ID] = b
	}
	for i := range jobs {
		jobs[i].Endpoint = byID[jobs[i].EndpointID]
		jobs[i].Body = bodies[jobs[i].EventID]
	}
	return nil
}

// Result is the outcome of one attempt.
type Result struct {
	// Attempted is false when no request was due: the endpoint was
	// deleted or disabled, or the event is gone. The delivery then ends
	// as failed.
	Attempted bool
	Success   bool
	At        time.Time
	// StatusCode is 0 when no answer came.
	StatusCode int
	Latency    time.Duration
	Error      string
	Body       []byte
	Truncated  bool
}

// Deliver sends one job: a POST of the event JSON, signed with every
// secret in use, through the guarded client. A 2xx answer within the
// timeout is success; redirects are not followed.
func (w *Worker) Deliver(ctx context.Context, j Job) Result {
	now := w.opts.Now()
	switch {
	case j.Endpoint == nil || j.Endpoint.Deleted:
		return Result{At: now, Error: "the endpoint was deleted"}
	case j.Endpoint.Status != StatusEnabled:
		return Result{At: now, Error: "the endpoint is disabled"}
	case j.Body == nil:
		return Result{At: now, Error: "the event no longer exists"}
	}
	res := Result{Attempted: true, At: now}
	u, err := w.opts.Guard.parse(j.Endpoint.URL)
	if err != nil {
		res.Error = "url refused: " + describe(err)
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(j.Body))
	if err != nil {
		res.Error = "url refused: " + describe(err)
		return res
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventIDHeader, ids.Format(ids.PrefixEvent, j.EventID))
	req.Header.Set(SignatureHeader, Sign(now, j.Body, j.Endpoint.signingSecrets(now)...))
	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		res.Error = describe(err)
		return res
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, ResponseBodyBytesMax+1))
	res.Latency = time.Since(start)
	if len(body) > ResponseBodyBytesMax {
		body, res.Truncated = body[:ResponseBodyBytesMax], true
	}
	res.StatusCode, res.Body = resp.StatusCode, body
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	switch {
	case rerr != nil:
		res.Error = "reading the answer: " + describe(rerr)
	case !ok:
		res.Error = "status " + strconv.Itoa(resp.StatusCode)
	default:
		res.Success = true
	}
	return res
}

// describe turns a delivery error into the text merchants see: without
// the URL (which may hold a token of theirs), bounded in length.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, ErrAddressNotAllowed):
		msg = "connection refused by policy: the address is private, loopback or reserved"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		msg = "timeout: no complete answer within the time limit"
	}
	if len(msg) > ErrorLengthMax {
		msg = msg[:ErrorLengthMax]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return msg
}

// Record stores a job's outcome, fenced by the lease version: the UPDATE
// names the version the worker claimed, and 0 rows means another worker
// took the delivery over, so the outcome is discarded (ErrLeaseLost). In the
// same transaction it appends the attempt, keeps the endpoint's failure
// record, and disables an endpoint that has failed for the whole schedule
// span (appending webhook_endpoint.disabled).
func (w *Worker) Record(ctx context.Context, j Job, res Result) error {
	now := w.opts.Now()
	status, next := DeliveryFailed, (*time.Time)(nil)
	switch {
	case res.Success:
		status = DeliverySucceeded
	case res.Attempted:
		if t, ok := w.opts.Schedule.Next(j.Attempt, j.StartedAt, now, nil); ok {
			status, next = DeliveryPending, &t
		}
	}
	var completed *time.Time
	if status != DeliveryPending {
		completed = &now
	}
	var code *int
	if res.StatusCode != 0 {
		code = &res.StatusCode
	}
	var errText *string
	if res.Error != "" {
		errText = &res.Error
	}
	disabled := false
	// READ COMMITTED: the lease version fences the delivery's row, and the
	// endpoint's health updates re-check their own conditions.
	err := j.Shard.Tx.RunReadCommitted(ctx, func(ctx context.Context, tx pgx.Tx) error {
		disabled = false
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $4, next_attempt_at = $5, lease_owner = NULL, lease_expires_at = NULL,
			last_status_code = $6, last_error = $7, completed_at = $8, updated_at = $9
			WHERE tenant_id = $1 AND id = $2 AND lease_version = $3 AND status = 'pending'`,
			j.TenantID, j.DeliveryID, j.LeaseVersion, string(status), next, code, errText, completed, now)
		if err != nil {
			return fmt.Errorf("record webhook delivery: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrLeaseLost
		}
		if !res.Attempted {
			return nil
		}
		body := res.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (tenant_id, delivery_id, id, attempted_at, status_code, latency_ms, error, response_body, response_truncated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			j.TenantID, j.DeliveryID, ids.New(), res.At, code, res.Latency.Milliseconds(), errText, body, res.Truncated); err != nil {
			return fmt.Errorf("record webhook attempt: %w", err)
		}
		// The endpoint row is written only when its health changes, so
		// the records of one endpoint's deliveries do not contend on it.
		if res.Success {
			if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE tenant_id = $1 AND id = $2 AND failing_since IS NOT NULL`,
				j.TenantID, j.EndpointID); err != nil {
				return fmt.Errorf("record webhook endpoint health: %w", err)
			}
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = $3 WHERE tenant_id = $1 AND id = $2 AND failing_since IS NULL AND status = 'enabled'`,
			j.TenantID, j.EndpointID, now); err != nil {
			return fmt.Errorf("record webhook endpoint health: %w", err)
		}
		e, err := w.sealer.scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = 'failing', version = version + 1, updated_at = $3
			WHERE tenant_id = $1 AND id = $2 AND status = 'enabled' AND deleted_at IS NULL AND failing_since <= $4
			RETURNING `+endpointColumns,
			j.TenantID, j.EndpointID, now, now.Add(-w.opts.Schedule.Span)))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("disable failing webhook endpoint: %w", err)
		}
		disabled = true
		return events.Append(ctx, tx, events.Event{
			ID: ids.New(), TenantID: e.TenantID, Type: events.WebhookEndpointDisabled, ObjectType: "webhook_endpoint",
			ObjectID: e.ID, ObjectVersion: e.Version, Data: e.snapshot(), CreatedAt: now,
		})
	})
	if errors.Is(err, ErrLeaseLost) {
		w.opts.Metrics.stale()
		return err
	}
	if err != nil {
		return err
	}
	switch status {
	case DeliveryPending:
		w.opts.Metrics.outcome(OutcomeRetry)
	default:
		w.opts.Metrics.outcome(string(status))
		w.opts.Metrics.finished(j.Attempt)
	}
	if status == DeliverySucceeded {
		// A delivery succeeds once: the lease version discards any later
		// outcome of the same delivery.
		w.opts.Metrics.lag(now.Sub(j.EventCreatedAt))
	}
	if disabled {
		w.opts.Logger.Warn("webhook endpoint disabled: every delivery failed for the retry span",
			"tenant", ids.Format(ids.PrefixTenant, j.TenantID), "endpoint", ids.Format(ids.PrefixWebhook, j.EndpointID))
	}
	return nil
}

// Run works until ctx ends: one loop per shard that fans events out,
// claims due deliveries up to the free concurrency, and sends them. On
// return every started delivery has been recorded (or its lease will
// expire).
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, sh := range w.opts.Shards.All() {
		wg.Go(func() { w.runShard(ctx, sh) })
	}
	wg.Wait()
}

func (w *Worker) runShard(ctx context.Context, sh *sharding.Shard) {
	log := w.opts.Logger.With("shard", sh.Name)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	slots := make(chan struct{}, w.opts.Concurrency)
	freed := make(chan struct{}, w.opts.Concurrency)
	fl := newInflight()
	var gaugeAt time.Time
	for ctx.Err() == nil {
		if time.Since(gaugeAt) >= GaugeInterval {
			gaugeAt = time.Now()
			w.refreshGauge(ctx, sh, log)
		}
		busy := false
		n, err := w.Fanout(ctx, sh)
		if err != nil && ctx.Err() == nil {
			log.Warn("webhook fan-out", "error", err.Error())
		}
		busy = busy || n == FanoutBatchMax
		if free := cap(slots) - len(slots); free > 0 {
			jobs, more, err := w.claim(ctx, sh, free, fl)
			if err != nil && ctx.Err() == nil {
				log.Warn("claim webhook deliveries", "error", err.Error())
			}
			// Deliveries left for room wait for a slot of their tenant or
			// endpoint to free; more left for the scan's bound are read
			// at once.
			busy = busy || len(jobs) == free || (more && len(jobs) > 0)
			for _, j := range jobs {
				slots <- struct{}{}
				fl.add(j)
				inflight.Go(func() {
					defer func() {
						fl.done(j)
						<-slots
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					w.work(ctx, j, log)
				})
			}
		}
		if busy && len(slots) < cap(slots) {
			continue
		}
		// Idle, or every slot busy: wait for a slot or the next poll, with
		// jitter so that replicas do not poll in step.
		wait := w.opts.PollInterval/2 + time.Duration(rand.Int64N(int64(w.opts.PollInterval/2)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// work sends one job and records its outcome. Both outlive a stop of the
// worker (bounded by the timeout), so a stop does not leave a sent delivery
// unrecorded.
func (w *Worker) work(ctx context.Context, j Job, log *slog.Logger) {
	dctx := context.WithoutCancel(ctx)
	res := w.Deliver(dctx, j)
	rctx, cancel := context.WithTimeout(dctx, recordTimeout)
	defer cancel()
	err := w.Record(rctx, j, res)
	switch {
	case errors.Is(err, ErrLeaseLost):
		log.Info("webhook outcome discarded: lease taken over", "delivery", ids.Format(ids.PrefixDelivery, j.DeliveryID))
	case err != nil:
		log.Warn("record webhook delivery", "delivery", ids.Format(ids.PrefixDelivery, j.DeliveryID), "error", err.Error())
	}
}

// refreshGauge sets the age of the shard's oldest event that is not
// dispatched yet or has a pending delivery, and how late the worker is: the
// oldest event not fanned out or the longest a due delivery has waited for
// its attempt. The second ignores deliveries waiting for their next retry,
// so an endpoint that keeps failing does not make the worker look late.
func (w *Worker) refreshGauge(ctx context.Context, sh *sharding.Shard, log *slog.Logger) {
	var a, b, due *time.Time
	now := w.opts.Now()
	err := sh.Pool.QueryRow(ctx, `SELECT (SELECT min(created_at) FROM event_outbox),
		(SELECT min(event_created_at) FROM webhook_deliveries WHERE status = 'pending'),
		(SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1)`, now).Scan(&a, &b, &due)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("webhook backlog age", "error", err.Error())
		}
		return
	}
	ageOf := func(ts ...*time.Time) float64 {
		var oldest *time.Time
		for _, t := range ts {
			if t != nil && (oldest == nil || t.Before(*oldest)) {
				oldest = t
			}
		}
		if oldest == nil {
			return 0
		}
		return max(now.Sub(*oldest).Seconds(), 0)
	}
	w.opts.Metrics.age(sh.Name, ageOf(a, b))
	w.opts.Metrics.backlog(sh.Name, ageOf(a, due))
}
