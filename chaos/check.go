package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/payments-api/payments/ids"
)

// excuses5xx names the faults during which the API may answer 5xx: its
// database or its processor failing. A killed process, a lost Redis or a
// moved clock excuses none (a killed process's clients see no answer at
// all, which they retry).
var excuses5xx = map[string]bool{
	FaultPostgresKill: true, FaultProxyDrop: true, FaultProxyStall: true,
	FaultStripe500: true, FaultStripeTimeout: true, FaultStripeReset: true, FaultStripeSlow: true,
}

// violationsShownMax bounds how many violations of one kind a report lists.
const violationsShownMax = 10

// Report is what the checker found, with the figures of the table.
type Report struct {
	Seed       uint64
	Duration   time.Duration
	Operations map[string]map[string]int // kind → outcome → count
	Faults     map[string][]Window
	Acked      int // creates answered with a payment (2xx, or 402 for a decline)
	Unknown    int // writes with at least one attempt without a definite answer
	Resolved   int // ... of which a retry reached a definite answer
	Unresolved int // ... still unknown when the client gave up
	Lost       int // acknowledged writes the database does not hold
	Doubled    int // payments or refunds stored twice for one request, or charged twice at the processor
	Events     int
	Delivered  int // distinct events the receiver got
	Deliveries int // all deliveries, duplicates included
	FiveXX     int // 5xx answers after the warm-up, all inside fault windows unless a violation says otherwise
	WarmUp5xx  int // 5xx answers during the warm-up, on the empty database
	// Exhausted5xx counts 5xx outside fault windows from serialization
	// conflicts that used up txn's attempts, when not Config.Strict5xx.
	Exhausted5xx int
	Leased409    int // 409 answers: a retry found its key still held by an earlier attempt
	Violations   map[string][]string
	DrainTime    time.Duration
	StripeCalls  int
	History      []*Op             `json:"-"`
	SelfTest     []string          `json:"-"` // what the checker missed when the state was broken on purpose
	Logs         []string          `json:"-"` // the ends of the processes' logs
	FullLogs     map[string]string `json:"-"` // process name → its log
}

func (r *Report) violate(kind, format string, args ...any) {
	r.Violations[kind] = append(r.Violations[kind], fmt.Sprintf(format, args...))
}

// check drains the run (operations the reconciler must finish, events
// still to deliver), then checks the history against the database and the
// receiver.
func check(tb testing.TB, h *harness, cfg Config, tenants []tenant, ops []*Op, windows []Window, start, faultsEnd time.Time) *Report {
	tb.Helper()
	ctx := context.Background()
	r := &Report{Seed: cfg.Seed, Duration: cfg.Duration, Operations: map[string]map[string]int{}, Faults: map[string][]Window{}, Violations: map[string][]string{}}
	pool, err := pgxpool.New(ctx, h.directDSN)
	if err != nil {
		tb.Fatal(err)
	}
	defer pool.Close()

	// Drain: nothing in flight, every event delivered.
	deadline := faultsEnd.Add(cfg.DrainMax)
	for {
		var inflight, events int
		err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM payments WHERE operation IS NOT NULL OR status = 'pending') +
			(SELECT count(*) FROM refunds WHERE status = 'pending'),
			(SELECT count(*) FROM events)`).Scan(&inflight, &events)
		if err != nil {
			tb.Fatal(err)
		}
		if inflight == 0 && len(h.recv.counts()) >= events {
			break
		}
		if time.Now().After(deadline) {
			tb.Logf("drain: %d operations in flight, %d of %d events delivered after %s", inflight, len(h.recv.counts()), events, cfg.DrainMax)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.DrainTime = time.Since(faultsEnd)

	// History figures.
	for _, o := range ops {
		if r.Operations[o.Kind] == nil {
			r.Operations[o.Kind] = map[string]int{}
		}
		r.Operations[o.Kind][o.Outcome]++
		if o.Unknowns() > 0 && o.Key != "" {
			r.Unknown++
			if o.Outcome == OutcomeUnknown {
				r.Unresolved++
			} else {
				r.Resolved++
			}
		}
	}

	// Payments: each create's key holds exactly one payment, the one answered.
	type stored struct {
		id                                          string
		status                                      string
		amount, captured, refunded, pendingRef, fee int64
	}
	byKey := map[string][]stored{}
	byID := map[string]stored{}
	rows, err := pool.Query(ctx, `SELECT metadata->>'chaos_key', id::TEXT, status, amount, amount_captured, amount_refunded, amount_refund_pending, fee FROM payments`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var k *string
		var s stored
		if err := rows.Scan(&k, &s.id, &s.status, &s.amount, &s.captured, &s.refunded, &s.pendingRef, &s.fee); err != nil {
			tb.Fatal(err)
		}
		if k != nil {
			byKey[*k] = append(byKey[*k], s)
		}
		byID[s.id] = s
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	for k, list := range byKey {
		if len(list) > 1 {
			r.Doubled++
			r.violate("doubled", "key %s holds %d payments", k, len(list))
		}
	}
	refundsOK := map[string][]string{} // payment → refund IDs answered 2xx
	refundOps := map[string]int{}      // payment → refund operations not refused
	for _, o := range ops {
		switch o.Kind {
		case OpCreate:
			chaosKey := strings.TrimSuffix(o.Key, "-create")
			var ans struct {
				ID      string `json:"id"`
				Payment string `json:"payment"`
				Status  string `json:"status"`
			}
			_ = json.Unmarshal(o.Body, &ans)
			id := ans.ID
			if o.Status == http.StatusPaymentRequired {
				id = ans.Payment
			}
			if o.Outcome == OutcomeUnknown {
				if len(byKey[chaosKey]) > 1 {
					r.violate("doubled", "unresolved create %s holds %d payments", o.Key, len(byKey[chaosKey]))
				}
				continue
			}
			if id == "" {
				continue // refused before anything was stored
			}
			r.Acked++
			list := byKey[chaosKey]
			switch {
			case len(list) == 0:
				r.Lost++
				r.violate("lost", "create %s answered %d %s, nothing stored", o.Key, o.Status, id)
			case !samePayment(id, list[0].id):
				r.Lost++
				r.violate("lost", "create %s answered %s, stored %s", o.Key, id, list[0].id)
			}
		case OpCapture:
			if o.Outcome != OutcomeOK {
				continue
			}
			var ans paymentView
			_ = json.Unmarshal(o.Body, &ans)
			if s, ok := byID[uuidOf(o.PaymentID)]; !ok || s.captured != ans.AmountReceived {
				r.Lost++
				r.violate("lost", "capture %s answered %d captured, stored %d", o.Key, ans.AmountReceived, s.captured)
			}
		case OpCancel:
			if o.Outcome == OutcomeOK && byID[uuidOf(o.PaymentID)].status != "canceled" {
				r.Lost++
				r.violate("lost", "cancel %s answered 2xx, stored status %s", o.Key, byID[uuidOf(o.PaymentID)].status)
			}
		case OpRefund:
			if o.Outcome == OutcomeFailed {
				continue
			}
			refundOps[o.PaymentID]++
			if o.Outcome == OutcomeOK {
				var ans struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(o.Body, &ans)
				refundsOK[o.PaymentID] = append(refundsOK[o.PaymentID], ans.ID)
			}
		case OpRead:
			if o.Status == http.StatusNotFound {
				r.violate("read_missing", "read of acknowledged payment %s answered 404", o.PaymentID)
			}
		}
	}

	// Refunds: every acknowledged one stored; no request stored twice;
	// never more than captured.
	refunds := map[string][]string{} // payment (pay_...) → refund IDs (re_...)
	rows, err = pool.Query(ctx, `SELECT payment_id, id FROM refunds WHERE status <> 'failed'`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var p, id uuid.UUID
		if err := rows.Scan(&p, &id); err != nil {
			tb.Fatal(err)
		}
		refunds[ids.Format(ids.PrefixPayment, p)] = append(refunds[ids.Format(ids.PrefixPayment, p)], ids.Format(ids.PrefixRefund, id))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	for p, okIDs := range refundsOK {
		have := map[string]bool{}
		for _, id := range refunds[p] {
			have[id] = true
		}
		for _, id := range okIDs {
			if !have[id] {
				r.Lost++
				r.violate("lost", "refund %s of %s answered 2xx, not stored", id, p)
			}
		}
	}
	for p, list := range refunds {
		if len(list) > refundOps[p] {
			r.Doubled++
			r.violate("doubled", "payment %s holds %d refunds for %d refund requests", p, len(list), refundOps[p])
		}
	}
	for id, s := range byID {
		if s.refunded+s.pendingRef > s.captured {
			r.violate("refund_exceeds_capture", "payment %s refunded %d + pending %d of %d captured", id, s.refunded, s.pendingRef, s.captured)
		}
	}
	var over int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments p
		WHERE (SELECT coalesce(sum(amount), 0) FROM refunds r WHERE r.tenant_id = p.tenant_id AND r.payment_id = p.id AND r.status IN ('pending', 'succeeded')) > p.amount_captured`).Scan(&over); err != nil {
		tb.Fatal(err)
	}
	if over > 0 {
		r.violate("refund_exceeds_capture", "%d payments whose refunds sum past their capture", over)
	}

	// The processor: one PaymentIntent per payment.
	for id := range byID {
		pub := ids.Format(ids.PrefixPayment, mustUUID(id))
		if n := h.stripe.CreatedFor(pub); n > 1 {
			r.Doubled++
			r.violate("doubled", "payment %s has %d PaymentIntents", pub, n)
		}
	}
	r.StripeCalls = h.stripe.Requests("create") + h.stripe.Requests("capture") + h.stripe.Requests("cancel") + h.stripe.Requests("refund")

	checkLedger(tb, ctx, pool, h, tenants, r)
	checkEvents(tb, ctx, pool, h, r)

	// 5xx only inside a fault window (plus its grace).
	for _, o := range ops {
		for _, a := range o.Attempts {
			if a.Status == http.StatusConflict {
				r.Leased409++
			}
			if a.Status < 500 {
				continue
			}
			if a.Start.Before(start) {
				r.WarmUp5xx++
				continue
			}
			r.FiveXX++
			inside := false
			for _, w := range windows {
				if !excuses5xx[w.Kind] {
					continue
				}
				if a.End.After(w.Start) && a.Start.Before(w.Healed.Add(cfg.Grace)) {
					inside = true
					break
				}
			}
			if !inside {
				var reqID struct {
					RequestID string `json:"request_id"`
				}
				_ = json.Unmarshal([]byte(a.Body), &reqID)
				exhausted := false
				if reqID.RequestID != "" {
					for _, p := range h.apis {
						for _, l := range p.log.Grep(reqID.RequestID) {
							a.Body += "\n    log: " + l
							exhausted = exhausted || strings.Contains(l, "txn: attempts exhausted")
						}
					}
				}
				// Known and reported apart: concurrent group-commit batches
				// of the two processes that conflict under SERIALIZABLE
				// until txn's attempts run out. Strict runs (make chaos)
				// count them as violations too.
				if exhausted && !cfg.Strict5xx {
					r.Exhausted5xx++
					continue
				}
				r.violate("5xx_outside_fault", "%s %s (api %d) answered %d at %.1fs, outside every fault window: %s", o.Kind, o.Key, a.API, a.Status, a.Start.Sub(start).Seconds(), a.Body)
			}
		}
	}

	// Recovery: from heal to the end of the first acknowledged create that
	// started after it.
	var creates []*Op
	for _, o := range ops {
		if o.Kind == OpCreate && o.Outcome == OutcomeOK {
			creates = append(creates, o)
		}
	}
	for i := range windows {
		w := &windows[i]
		w.Recovery = -1
		for _, o := range creates {
			last := o.Attempts[len(o.Attempts)-1]
			if last.Start.After(w.Healed) && (w.Recovery < 0 || last.End.Sub(w.Healed) < w.Recovery) {
				w.Recovery = last.End.Sub(w.Healed)
			}
		}
		r.Faults[w.Kind] = append(r.Faults[w.Kind], *w)
	}
	return r
}

// checkLedger: the entries of every transaction and of every tenant and
// currency sum to zero; the merchant balance equals its postings, the
// net of its balance transactions and the API's /v1/balance; each
// payment's postings equal its captured amount less fee and refunds.
func checkLedger(tb testing.TB, ctx context.Context, pool *pgxpool.Pool, h *harness, tenants []tenant, r *Report) {
	tb.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ledger_entries GROUP BY tenant_id, transaction_id HAVING sum(amount) <> 0) x`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	if n > 0 {
		r.violate("ledger", "%d ledger transactions whose entries do not sum to zero", n)
	}
	rows, err := pool.Query(ctx, `SELECT tenant_id::TEXT, currency, sum(amount) FROM ledger_entries GROUP BY 1, 2 HAVING sum(amount) <> 0`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var t, cur string
		var sum int64
		if err := rows.Scan(&t, &cur, &sum); err != nil {
			tb.Fatal(err)
		}
		r.violate("ledger", "tenant %s %s: entries sum to %d", t, cur, sum)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT t.tenant_id, t.currency FROM ledger_transactions t
		JOIN ledger_entries e ON e.tenant_id = t.tenant_id AND e.transaction_id = t.id AND e.account = 'merchant_balance'
		GROUP BY 1, 2 HAVING sum(e.amount) <> sum(t.net)) x`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	if n > 0 {
		r.violate("ledger", "%d tenant currencies whose merchant balance differs from their balance transactions' net", n)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM payments p WHERE p.amount_captured - p.fee - p.amount_refunded <>
		(SELECT coalesce(sum(e.amount), 0) FROM ledger_transactions t
		 JOIN ledger_entries e ON e.tenant_id = t.tenant_id AND e.transaction_id = t.id AND e.account = 'merchant_balance'
		 WHERE t.tenant_id = p.tenant_id AND (t.source_id = p.id OR t.payment_id = p.id))`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	if n > 0 {
		r.violate("ledger", "%d payments whose postings differ from captured - fee - refunded", n)
	}
	for _, t := range tenants {
		tid := uuidOfPrefix(ids.PrefixTenant, t.ID)
		var posted int64
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE tenant_id = $1 AND currency = 'usd' AND account = 'merchant_balance'`, tid).Scan(&posted); err != nil {
			tb.Fatal(err)
		}
		var bal struct {
			Available []struct {
				Currency string `json:"currency"`
				Amount   int64  `json:"amount"`
			} `json:"available"`
		}
		req, _ := http.NewRequest("GET", h.bases()[0]+"/v1/balance", nil)
		req.Header.Set("Authorization", "Bearer "+t.Secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, responseBytesMax))
		res.Body.Close()
		if err := json.Unmarshal(b, &bal); err != nil {
			tb.Fatalf("balance: %d %s", res.StatusCode, b)
		}
		var answered int64
		for _, a := range bal.Available {
			if a.Currency == "usd" {
				answered = a.Amount
			}
		}
		if answered != posted {
			r.violate("ledger", "tenant %s: /v1/balance answers %d usd, its postings sum to %d", t.ID, answered, posted)
		}
	}
}

// checkEvents: every event reached the receiver at least once.
func checkEvents(tb testing.TB, ctx context.Context, pool *pgxpool.Pool, h *harness, r *Report) {
	tb.Helper()
	got := h.recv.counts()
	rows, err := pool.Query(ctx, `SELECT id FROM events ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	evs, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		tb.Fatal(err)
	}
	r.Events = len(evs)
	for _, n := range got {
		r.Deliveries += n
	}
	for _, id := range evs {
		pub := ids.Format(ids.PrefixEvent, id)
		if got[pub] == 0 {
			r.violate("event_undelivered", "event %s never reached the receiver", pub)
			continue
		}
		r.Delivered++
	}
}

func samePayment(public, stored string) bool {
	return uuidOfPrefix(ids.PrefixPayment, public) == stored
}

func uuidOf(public string) string { return uuidOfPrefix(ids.PrefixPayment, public) }

func uuidOfPrefix(prefix, public string) string {
	id, ok := ids.Parse(prefix, public)
	if !ok {
		return ""
	}
	return id.String()
}

func mustUUID(s string) uuid.UUID { return uuid.MustParse(s) }

// Table renders the report's figures as Markdown.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %s of faults, drained in %.1fs\n\n", r.Seed, r.Duration, r.DrainTime.Seconds())
	fmt.Fprintf(&b, "| figure | value |\n| --- | --- |\n")
	total, kinds := 0, make([]string, 0, len(r.Operations))
	for k, m := range r.Operations {
		kinds = append(kinds, k)
		for _, n := range m {
			total += n
		}
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		m := r.Operations[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d/%d", k, m[OutcomeOK], m[OutcomeFailed], m[OutcomeUnknown]))
	}
	fmt.Fprintf(&b, "| operations (ok/failed/unknown) | %d: %s |\n", total, strings.Join(parts, ", "))
	nf := 0
	for _, ws := range r.Faults {
		nf += len(ws)
	}
	fmt.Fprintf(&b, "| faults | %d |\n", nf)
	fmt.Fprintf(&b, "| acknowledged creates | %d |\n", r.Acked)
	fmt.Fprintf(&b, "| writes with an unknown attempt | %d (%d resolved by retries, %d unresolved) |\n", r.Unknown, r.Resolved, r.Unresolved)
	fmt.Fprintf(&b, "| lost | %d |\n", r.Lost)
	fmt.Fprintf(&b, "| doubled | %d |\n", r.Doubled)
	fmt.Fprintf(&b, "| events delivered / stored | %d / %d |\n", r.Delivered, r.Events)
	fmt.Fprintf(&b, "| duplicate deliveries | %d |\n", r.Deliveries-r.Delivered)
	fmt.Fprintf(&b, "| 5xx answers (all in database or processor fault windows unless listed) | %d |\n", r.FiveXX)
	fmt.Fprintf(&b, "| 5xx answers during the warm-up (empty database) | %d |\n", r.WarmUp5xx)
	if r.Exhausted5xx > 0 {
		fmt.Fprintf(&b, "| 5xx outside faults from serialization attempts exhausted (known; a violation in strict runs) | %d |\n", r.Exhausted5xx)
	}
	fmt.Fprintf(&b, "| 409 answers (a retry finding its key still leased) | %d |\n", r.Leased409)
	fmt.Fprintf(&b, "| processor writes (create, capture, cancel, refund) | %d |\n", r.StripeCalls)
	fmt.Fprintf(&b, "| violations | %d |\n\n", r.ViolationCount())
	fmt.Fprintf(&b, "| fault | count | length p50 | recovery p50 | recovery max |\n| --- | --- | --- | --- | --- |\n")
	for _, k := range FaultKinds {
		ws := r.Faults[k]
		if len(ws) == 0 {
			fmt.Fprintf(&b, "| %s | 0 | | | |\n", k)
			continue
		}
		var lens, recs []time.Duration
		for _, w := range ws {
			lens = append(lens, w.Healed.Sub(w.Start))
			recs = append(recs, w.Recovery)
		}
		sort.Slice(lens, func(i, j int) bool { return lens[i] < lens[j] })
		sort.Slice(recs, func(i, j int) bool { return recs[i] < recs[j] })
		fmt.Fprintf(&b, "| %s | %d | %.1fs | %s | %s |\n", k, len(ws), lens[len(lens)/2].Seconds(), dur(recs[len(recs)/2]), dur(recs[len(recs)-1]))
	}
	for _, k := range sortedKeys(r.Violations) {
		vs := r.Violations[k]
		fmt.Fprintf(&b, "\n%s: %d\n", k, len(vs))
		for i, v := range vs {
			if i == violationsShownMax {
				fmt.Fprintf(&b, "  ... and %d more\n", len(vs)-i)
				break
			}
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	return b.String()
}

func dur(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// ViolationCount is the number of broken promises.
func (r *Report) ViolationCount() int {
	n := 0
	for _, v := range r.Violations {
		n += len(v)
	}
	return n
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
