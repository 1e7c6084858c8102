package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Outcomes of an operation in the history, as Jepsen names them.
const (
	OutcomeOK      = "ok"      // a 2xx answer: it happened
	OutcomeFailed  = "failed"  // a definite 4xx answer (a decline, a refusal): it did not, or it is recorded as failed
	OutcomeUnknown = "unknown" // no answer, a timeout or a 5xx: it may or may not have happened
)

// Operations of the workload.
const (
	OpCreate  = "create"
	OpCapture = "capture"
	OpCancel  = "cancel"
	OpRefund  = "refund"
	OpRead    = "read"
	OpBalance = "balance"
)

// Bounds of a client.
const (
	// clientTimeout bounds one HTTP attempt: longer than the server's
	// processor timeout plus its recording of the outcome.
	clientTimeout = 20 * time.Second
	// retryPauseMax caps the backoff between attempts of one operation.
	retryPauseMax = 2 * time.Second
	// responseBytesMax bounds what a client reads of an answer.
	responseBytesMax = 1 << 20
	// bodyQuotedMax bounds what the history keeps of a 5xx answer.
	bodyQuotedMax = 300
)

// Attempt is one HTTP request of an operation.
type Attempt struct {
	API        int
	Start, End time.Time
	Status     int // 0: no answer
	Err        string
	// Body is the start of a 5xx answer, for the report.
	Body string `json:",omitempty"`
}

// Op is one operation of the history with all its attempts: its outcome
// is the first definite answer, or unknown when none came before the
// client gave up.
type Op struct {
	Client    int
	Tenant    int
	Kind      string
	Key       string // the Idempotency-Key of writes
	Attempts  []Attempt
	Outcome   string
	Status    int
	PaymentID string // of creates (the answer's), and of the payment acted on
	Amount    int64  // created, captured or refunded amount asked for
	Body      []byte // the definite answer
}

// End is when the operation's last attempt ended.
func (o *Op) End() time.Time { return o.Attempts[len(o.Attempts)-1].End }

// Unknowns counts attempts without a definite answer.
func (o *Op) Unknowns() int {
	n := 0
	for _, a := range o.Attempts {
		if !definite(a.Status) {
			n++
		}
	}
	return n
}

// definite tells whether an answer settles the operation. 409 (the key is
// in use by a request still running) and 429 are answers to come back
// later; 5xx and no answer may or may not have taken effect.
func definite(status int) bool {
	switch {
	case status >= 200 && status < 300:
		return true
	case status == http.StatusConflict, status == http.StatusTooManyRequests, status == 0:
		return false
	case status >= 400 && status < 500:
		return true
	}
	return false
}

// history is the record of every operation, safe for concurrent use.
type history struct {
	mu  sync.Mutex
	ops []*Op
}

func (h *history) add(o *Op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

func (h *history) all() []*Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Op(nil), h.ops...)
}

// tenant is a merchant of the run.
type tenant struct {
	ID, Secret string
}

// workload runs the clients.
type workload struct {
	apis    func() []string // base URLs of the API processes
	tenants []tenant
	hist    *history
	http    *http.Client
	// giveUp is when an operation stops retrying: after the faults end,
	// with room for every retry to resolve.
	giveUp time.Time
}

// client is one merchant integration: it runs flows one after the other
// with its own seeded randomness.
type client struct {
	w   *workload
	id  int
	rnd *rand.Rand
	seq int
}

// run runs flows until stop is closed.
func (c *client) run(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		c.flow(ctx)
	}
}

// payment is what a client knows of one of its payments.
type paymentView struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Amount         int64  `json:"amount"`
	AmountReceived int64  `json:"amount_received"`
	AmountRefunded int64  `json:"amount_refunded"`
}

// flow is one customer's story: a payment, then perhaps its capture or
// cancellation, refunds and reads.
func (c *client) flow(ctx context.Context) {
	t := c.rnd.IntN(len(c.w.tenants))
	amount := int64(100 + c.rnd.IntN(20000))
	pm, capture := "pm_card_visa", "automatic"
	switch r := c.rnd.IntN(10); {
	case r < 3:
		capture = "manual"
	case r == 3:
		pm = "pm_card_chargeDeclined"
	}
	c.seq++
	key := fmt.Sprintf("c%d-%d", c.id, c.seq)
	body := fmt.Sprintf(`{"amount":%d,"currency":"usd","payment_method":%q,"capture_method":%q,"metadata":{"chaos_key":%q}}`, amount, pm, capture, key)
	op := c.do(ctx, t, OpCreate, key+"-create", "POST", "/v1/payments", body, amount)
	var p paymentView
	if op.Outcome == OutcomeUnknown || json.Unmarshal(op.Body, &p) != nil || p.ID == "" {
		return
	}
	op.PaymentID = p.ID
	c.read(ctx, t, p.ID)
	captured := p.AmountReceived
	if p.Status == "requires_capture" {
		if c.rnd.IntN(3) == 0 {
			c.do(ctx, t, OpCancel, key+"-cancel", "POST", "/v1/payments/"+p.ID+"/cancel", `{}`, 0).PaymentID = p.ID
			c.read(ctx, t, p.ID)
			return
		}
		take := amount
		if c.rnd.IntN(2) == 0 {
			take = 1 + c.rnd.Int64N(amount)
		}
		cop := c.do(ctx, t, OpCapture, key+"-capture", "POST", "/v1/payments/"+p.ID+"/capture", fmt.Sprintf(`{"amount_to_capture":%d}`, take), take)
		cop.PaymentID = p.ID
		var after paymentView
		if cop.Outcome != OutcomeOK || json.Unmarshal(cop.Body, &after) != nil {
			return
		}
		captured = after.AmountReceived
	}
	if captured <= 0 || p.Status == "failed" {
		return
	}
	// Refunds: sometimes one part, sometimes two, sometimes one more than
	// is left (which must be refused).
	left := captured
	for i := 0; i < 1+c.rnd.IntN(3) && c.rnd.IntN(2) == 0; i++ {
		r := 1 + c.rnd.Int64N(left+left/4+1)
		rop := c.do(ctx, t, OpRefund, fmt.Sprintf("%s-refund-%d", key, i), "POST", "/v1/refunds", fmt.Sprintf(`{"payment":%q,"amount":%d}`, p.ID, r), r)
		rop.PaymentID = p.ID
		if rop.Outcome == OutcomeOK {
			left -= r
		}
		if left <= 0 {
			break
		}
	}
	c.read(ctx, t, p.ID)
	if c.rnd.IntN(10) == 0 {
		c.do(ctx, t, OpBalance, "", "GET", "/v1/balance", "", 0)
	}
}

func (c *client) read(ctx context.Context, t int, id string) {
	c.do(ctx, t, OpRead, "", "GET", "/v1/payments/"+id, "", 0).PaymentID = id
}

// do runs one operation to a definite answer or until the client gives
// up, retrying with the same Idempotency-Key, against the API processes in
// turn.
func (c *client) do(ctx context.Context, t int, kind, key, method, path, body string, amount int64) *Op {
	op := &Op{Client: c.id, Tenant: t, Kind: kind, Key: key, Amount: amount, Outcome: OutcomeUnknown}
	defer c.w.hist.add(op)
	pause := 100 * time.Millisecond
	for i := 0; ; i++ {
		apis := c.w.apis()
		api := (c.id + i) % len(apis)
		a := Attempt{API: api, Start: time.Now()}
		status, b, err := c.send(ctx, apis[api], t, method, path, body, key)
		a.End, a.Status = time.Now(), status
		if err != nil {
			a.Err = err.Error()
		}
		if status >= 500 {
			a.Body = string(b[:min(len(b), bodyQuotedMax)])
		}
		op.Attempts = append(op.Attempts, a)
		if definite(status) {
			op.Status, op.Body = status, b
			if status < 300 {
				op.Outcome = OutcomeOK
			} else {
				op.Outcome = OutcomeFailed
			}
			return op
		}
		if key == "" && i >= 2 {
			return op // a read is not worth retrying long
		}
		if time.Now().After(c.w.giveUp) || ctx.Err() != nil {
			return op
		}
		time.Sleep(pause/2 + time.Duration(c.rnd.Int64N(int64(pause/2)+1)))
		pause = min(2*pause, retryPauseMax)
	}
}

func (c *client) send(ctx context.Context, base string, t int, method, path, body, key string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.w.tenants[t].Secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := c.w.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, responseBytesMax))
	if err != nil {
		return 0, nil, err // cut mid-answer: unknown
	}
	return res.StatusCode, bytes.Clone(b), nil
}
