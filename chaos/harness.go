package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/payments-api/payments/processor/stripe/stripetest"
)

// Settings of the processes under test: short timeouts, so that a fault's
// consequences (a timed-out call, an abandoned operation, a failed
// delivery) resolve within a run.
const (
	stripeCallTimeout = 2 * time.Second
	processorTimeout  = 5 * time.Second
	reconcileAge      = 8 * time.Second
	adminToken        = "chaos-admin-token-0123456789abcdef0123"
	// apiCount is the number of `payments serve` processes; a clock-skew
	// fault moves one of them.
	apiCount = 2
	// tenantCount merchants share the run.
	tenantCount = 2
)

// Config is one run of the suite.
type Config struct {
	Seed     uint64
	Duration time.Duration
	Clients  int
	Profile  Profile
	// Grace is how long after a fault healed a 5xx still counts as the
	// fault's: a pool reconnecting, a circuit breaker's open time.
	Grace time.Duration
	// WarmUp is how long the clients run before the first fault. On a
	// freshly migrated database every row sits on the same index pages and
	// PostgreSQL's page-grained predicate locks make concurrent batches
	// conflict until txn's attempts run out (a 500); the warm-up's 5xx are
	// counted apart (Report.WarmUp5xx), not excused by any fault.
	WarmUp time.Duration
	// Tail is how long the clients keep running after the last fault
	// healed, at least.
	Tail time.Duration
	// Strict5xx makes every 5xx outside a fault window a violation, those
	// of serialization conflicts that used up txn's attempts included.
	Strict5xx bool
	// GiveUpAfter is how long after the faults end a client still retries
	// an unresolved operation: longer than an Idempotency-Key's lease
	// (60 s), which holds the key of a request that died mid-flight.
	GiveUpAfter time.Duration
	// DrainMax bounds the time after the faults for retries to resolve,
	// operations to finish and events to be delivered.
	DrainMax time.Duration
}

// harness holds the processes of a run.
type harness struct {
	tb        testing.TB
	bin       string
	pg        *proc
	redis     *proc
	redisPort int
	worker    *proc
	apis      []*proc
	apiAddrs  []string
	directDSN string
	proxyDSN  string
	proxy     *proxy
	stripe    *stripetest.Double
	recv      *receiver
	baseEnv   []string
	// endpointsAt is when the webhook endpoints were created.
	endpointsAt time.Time
}

// receiver is the merchants' webhook endpoint on loopback: it answers 200
// and counts each event's deliveries.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string]int // event ID (evt_...) → deliveries
}

func newReceiver() *receiver {
	r := &receiver{got: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, responseBytesMax))
		id := req.Header.Get("Payments-Event-Id")
		r.mu.Lock()
		r.got[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	return r
}

func (r *receiver) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// newHarness starts PostgreSQL, Redis, the proxy, the Stripe double, the
// receiver, the API processes and a worker, all on loopback.
func newHarness(tb testing.TB) *harness {
	tb.Helper()
	h := &harness{tb: tb, bin: buildBinary(tb)}
	pgPort := freePort(tb)
	h.pg = newPostgres(tb, pgPort)
	h.directDSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pgPort)
	var err error
	if h.proxy, err = newProxy(fmt.Sprintf("127.0.0.1:%d", pgPort)); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.proxy.Close)
	// connect_timeout: a stalled proxy must not hold a new connection
	// forever.
	h.proxyDSN = fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=5", h.proxy.Addr())
	h.redisPort = freePort(tb)
	h.redis = newRedis(tb, h.redisPort)
	h.stripe = stripetest.New(tb)
	h.recv = newReceiver()
	tb.Cleanup(h.recv.srv.Close)
	if err := migrate(h.bin, h.directDSN); err != nil {
		tb.Fatal(err)
	}
	h.baseEnv = envWith(os.Environ(),
		"REDIS_URL="+fmt.Sprintf("redis://127.0.0.1:%d/0", h.redisPort),
		"PAYMENTS_ADMIN_TOKEN="+adminToken,
		"STRIPE_SECRET_KEY=sk_test_chaosplatform_0123456789ABCD", "STRIPE_API_BASE="+h.stripe.URL,
		"PAYMENTS_STRIPE_CALL_TIMEOUT_SECONDS="+strconv.Itoa(int(stripeCallTimeout/time.Second)),
		"PAYMENTS_STRIPE_NETWORK_RETRIES=1", "PAYMENTS_STRIPE_BREAKER_OPEN_SECONDS=2",
		"PAYMENTS_PROCESSOR_TIMEOUT_SECONDS="+strconv.Itoa(int(processorTimeout/time.Second)),
		"PAYMENTS_RECONCILE_INTERVAL_SECONDS=2", "PAYMENTS_RECONCILE_AGE_SECONDS="+strconv.Itoa(int(reconcileAge/time.Second)),
		"PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", "PAYMENTS_WEBHOOK_TIMEOUT_SECONDS=2", "PAYMENTS_WEBHOOK_LEASE_SECONDS=5",
		"PAYMENTS_WEBHOOK_POLL_INTERVAL_MS=200", "PAYMENTS_WEBHOOK_RETRY_BASE_MS=1000", "PAYMENTS_WEBHOOK_RETRY_SPAN_SECONDS=3600",
		"PAYMENTS_RATE_LIMIT_PER_SECOND=100000", "PAYMENTS_DB_CONNS_MAX=16", "PAYMENTS_SHUTDOWN_TIMEOUT_SECONDS=5",
		"PAYMENTS_LOG_LEVEL=warn", "PAYMENTS_HTTP_ADDR=", "DATABASE_URL=", "PAYMENTS_TEST_CLOCK_OFFSET_MS=", "GOGC=",
	)
	for i := range apiCount {
		h.apiAddrs = append(h.apiAddrs, fmt.Sprintf("127.0.0.1:%d", freePort(tb)))
		h.apis = append(h.apis, &proc{name: fmt.Sprintf("serve-%d", i), argv: []string{h.bin, "serve"}, log: &syncBuffer{}})
		if err := h.startAPI(i, 0); err != nil {
			tb.Fatal(err)
		}
		p := h.apis[i]
		tb.Cleanup(func() { p.kill(syscall.SIGTERM) })
	}
	// The worker reaches PostgreSQL directly; the proxy's faults are the
	// API's.
	h.worker = &proc{name: "worker", argv: []string{h.bin, "worker"}, log: &syncBuffer{},
		env: envWith(h.baseEnv, "DATABASE_URL="+h.directDSN)}
	if err := h.worker.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.worker.kill(syscall.SIGTERM) })
	return h
}

// selfTest proves that the checker can fail: it breaks the stored state
// the way the bugs it looks for would (a payment moved to another
// client's key: one lost, one doubled; a ledger entry off by one) and
// checks again, then repairs it. It returns what the
// checker missed, if anything.
func selfTest(tb testing.TB, h *harness, cfg Config, tenants []tenant, ops []*Op, windows []Window, start time.Time) []string {
	tb.Helper()
	ctx := context.Background()
	var keys []string
	for _, o := range ops {
		if o.Kind == OpCreate && o.Outcome == OutcomeOK {
			keys = append(keys, strings.TrimSuffix(o.Key, "-create"))
		}
		if len(keys) == 2 {
			break
		}
	}
	if len(keys) < 2 {
		return []string{"fewer than two acknowledged payments to break"}
	}
	conn, err := pgx.Connect(ctx, h.directDSN)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	// The sabotage is committed, checked, then repaired: the checker reads
	// through its own pool, so a transaction rolled back would hide it.
	sabotage := []string{
		`UPDATE payments SET metadata = jsonb_set(metadata, '{chaos_key}', to_jsonb($2::TEXT)) WHERE metadata->>'chaos_key' = $1`,
		`UPDATE ledger_entries SET amount = amount + 1 WHERE (tenant_id, transaction_id, account) = ($1, $2, 'merchant_balance')`,
	}
	repair := []string{
		`UPDATE payments SET metadata = jsonb_set(metadata, '{chaos_key}', to_jsonb($1::TEXT)) WHERE id = $2`,
		`UPDATE ledger_entries SET amount = amount - 1 WHERE (tenant_id, transaction_id, account) = ($1, $2, 'merchant_balance')`,
	}
	var movedID, entryTenant, entryTx string
	if err := conn.QueryRow(ctx, `SELECT id::TEXT FROM payments WHERE metadata->>'chaos_key' = $1`, keys[0]).Scan(&movedID); err != nil {
		tb.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT tenant_id::TEXT, transaction_id::TEXT FROM ledger_entries WHERE account = 'merchant_balance' LIMIT 1`).Scan(&entryTenant, &entryTx); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sabotage[0], keys[0], keys[1]); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sabotage[1], entryTenant, entryTx); err != nil {
		tb.Fatal(err)
	}
	quiet := cfg
	quiet.DrainMax = 0
	r := check(tb, h, quiet, tenants, ops, windows, start, time.Now())
	if _, err := conn.Exec(ctx, repair[0], keys[0], movedID); err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Exec(ctx, repair[1], entryTenant, entryTx); err != nil {
		tb.Fatal(err)
	}
	var missed []string
	if r.Lost < 1 {
		missed = append(missed, "a payment moved off its key was not counted lost")
	}
	if r.Doubled < 1 {
		missed = append(missed, "a key holding two payments was not counted doubled")
	}
	if len(r.Violations["ledger"]) < 2 {
		missed = append(missed, fmt.Sprintf("a ledger entry off by one gave %d ledger violations, want at least 2", len(r.Violations["ledger"])))
	}
	return missed
}

// startAPI starts `payments serve` number i with its clock moved by skew.
func (h *harness) startAPI(i int, skew time.Duration) error {
	p := h.apis[i]
	p.env = envWith(h.baseEnv, "DATABASE_URL="+h.proxyDSN, "PAYMENTS_HTTP_ADDR="+h.apiAddrs[i],
		"PAYMENTS_TEST_CLOCK_OFFSET_MS="+strconv.FormatInt(skew.Milliseconds(), 10))
	deadline := time.Now().Add(startWaitMax)
	for {
		if err := p.start(); err != nil {
			return err
		}
		err := waitHTTP(p, h.apiAddrs[i])
		if err == nil {
			return nil
		}
		// serve refuses to start while its database is unreachable; try
		// again until the deadline.
		p.kill(syscall.SIGKILL)
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (h *harness) bases() []string {
	out := make([]string, len(h.apiAddrs))
	for i, a := range h.apiAddrs {
		out[i] = "http://" + a
	}
	return out
}

// setupTenants creates the merchants and their webhook endpoints.
func (h *harness) setupTenants() ([]tenant, error) {
	var out []tenant
	base := h.bases()[0]
	for i := range tenantCount {
		var created struct {
			Account struct {
				ID string `json:"id"`
			} `json:"account"`
			APIKey struct {
				Secret string `json:"secret"`
			} `json:"api_key"`
		}
		if err := postJSON(base+"/v1/admin/tenants", adminToken, fmt.Sprintf(`{"name":"Chaos %d","region":"local"}`, i), &created); err != nil {
			return nil, err
		}
		if created.APIKey.Secret == "" {
			return nil, fmt.Errorf("tenant %d: no secret in the answer", i)
		}
		var ep struct {
			ID string `json:"id"`
		}
		if err := postJSON(base+"/v1/webhook_endpoints", created.APIKey.Secret, fmt.Sprintf(`{"url":%q,"enabled_events":["*"]}`, h.recv.srv.URL+"/hooks"), &ep); err != nil {
			return nil, err
		}
		out = append(out, tenant{ID: created.Account.ID, Secret: created.APIKey.Secret})
	}
	h.endpointsAt = time.Now()
	return out, nil
}

func postJSON(url, bearer, body string, into any) error {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, responseBytesMax))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", url, res.StatusCode, b)
	}
	return json.Unmarshal(b, into)
}

// Run is one run: the clients and the fault loop for cfg.Duration, then
// the drain and the checker. It returns the report.
func Run(tb testing.TB, cfg Config) *Report {
	tb.Helper()
	h := newHarness(tb)
	tenants, err := h.setupTenants()
	if err != nil {
		tb.Fatal(err)
	}
	warmStart := time.Now()
	stopAt := warmStart.Add(cfg.WarmUp + cfg.Duration)
	hist := &history{}
	w := &workload{apis: h.bases, tenants: tenants, hist: hist, giveUp: stopAt.Add(cfg.GiveUpAfter),
		http: &http.Client{Timeout: clientTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		c := &client{w: w, id: i, rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))}
		wg.Go(func() { c.run(ctx, stop) })
	}

	// Warm-up: the clients fill the empty tables before the first fault
	// (see Config.WarmUp).
	time.Sleep(cfg.WarmUp)
	start := time.Now()
	tb.Logf("warm-up: %d operations in %s", len(hist.all()), cfg.WarmUp)
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0))
	var windows []Window
	kinds := schedule(rnd, 1<<16)
	span := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rnd.Int64N(int64(hi-lo)+1))
	}
	for _, kind := range kinds {
		gap := span(cfg.Profile.GapMin, cfg.Profile.GapMax)
		length := span(cfg.Profile.LengthMin, cfg.Profile.LengthMax)
		if time.Now().Add(gap+length).After(stopAt) && len(windows) >= len(FaultKinds) {
			break
		}
		time.Sleep(gap)
		win, err := h.inject(kind, length, rnd)
		windows = append(windows, win)
		if err != nil {
			close(stop)
			tb.Fatalf("fault %s: %v\napi 0:\n%s\napi 1:\n%s\npostgres:\n%s", kind, err, h.apis[0].log.Tail(), h.apis[1].log.Tail(), h.pg.log.Tail())
		}
		tb.Logf("%6.1fs fault %-16s %-10s %.1fs", win.Start.Sub(start).Seconds(), kind, win.Detail, win.Healed.Sub(win.Start).Seconds())
	}
	// The clients outlive the last fault, so that its recovery is measured.
	time.Sleep(max(time.Until(stopAt), cfg.Tail))
	faultsEnd := time.Now()
	close(stop)
	wg.Wait()
	tb.Logf("%6.1fs clients done (%d operations)", time.Since(start).Seconds(), len(hist.all()))
	for i, p := range h.apis {
		if !p.alive() {
			tb.Errorf("api %d is not running after the faults:\n%s", i, p.log.Tail())
		}
	}
	rep := check(tb, h, cfg, tenants, hist.all(), windows, start, faultsEnd)
	rep.History = hist.all()
	rep.SelfTest = selfTest(tb, h, cfg, tenants, hist.all(), windows, start)
	for i, p := range h.apis {
		rep.Logs = append(rep.Logs, fmt.Sprintf("api %d:\n%s", i, p.log.Tail()))
	}
	rep.Logs = append(rep.Logs, "worker:\n"+h.worker.log.Tail())
	rep.FullLogs = map[string]string{"worker": h.worker.log.String(), "postgres": h.pg.log.String(), "redis": h.redis.log.String()}
	for _, p := range h.apis {
		rep.FullLogs[p.name] = p.log.String()
	}
	return rep
}
