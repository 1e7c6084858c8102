package payments

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits and defaults of the client.
const (
	// RetriesMaxDefault is how many times a call is retried after its first
	// attempt, unless Options.RetriesMax says otherwise.
	RetriesMaxDefault = 3
	// RetriesMaxLimit bounds Options.RetriesMax.
	RetriesMaxLimit = 10
	// BackoffBaseDefault is the first retry's delay ceiling; each retry
	// doubles it, up to BackoffMaxDefault. The delay is drawn at random
	// below the ceiling ("full jitter").
	BackoffBaseDefault = 500 * time.Millisecond
	// BackoffMaxDefault caps a retry's delay, Retry-After included.
	BackoffMaxDefault = 20 * time.Second
	// TimeoutDefault bounds one attempt when Options.HTTPClient is nil.
	TimeoutDefault = 60 * time.Second
	// ResponseBytesMax bounds how much of an answer the client reads.
	ResponseBytesMax = 16 << 20
	// IdempotencyKeyPrefix starts the keys the client makes.
	IdempotencyKeyPrefix = "sdk_"
)

// Options configure a Client. The zero value of every field is a sensible
// default.
type Options struct {
	// BaseURL is the API's address, such as http://127.0.0.1:8080 (no /v1).
	BaseURL string
	// HTTPClient sends the requests; default: an http.Client with TimeoutDefault.
	HTTPClient *http.Client
	// RetriesMax is how many retries a call may make after its first
	// attempt: 0 means RetriesMaxDefault, a negative number means none.
	RetriesMax int
	// BackoffBase and BackoffMax shape the exponential backoff.
	BackoffBase, BackoffMax time.Duration
	// Sleep waits between attempts; default: a timer that honours ctx.
	// Tests replace it to observe the delays.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Client is the Payments API client: the generated operations (API) behind
// a transport that authenticates, adds an Idempotency-Key to every POST and
// retries safely; the resource services below wrap the common operations
// with typed answers and errors.
type Client struct {
	// API is the generated client of every operation, admin ones included;
	// its calls go through the same transport as the services. Use Check
	// to turn one of its answers into a typed error.
	API *ClientWithResponses

	Account          *AccountService
	Payments         *PaymentService
	Refunds          *RefundService
	Events           *EventService
	Balance          *BalanceService
	WebhookEndpoints *WebhookEndpointService

	raw *ClientWithResponses
}

// New returns a client that authenticates with apiKey (a tenant's
// sk_test_.../sk_live_... key, or the admin token for /v1/admin calls).
func New(apiKey string, opts Options) (*Client, error) {
	if apiKey == "" {
		return nil, errors.New("payments: an API key is required")
	}
	if opts.BaseURL == "" {
		return nil, errors.New("payments: Options.BaseURL is required, such as http://127.0.0.1:8080")
	}
	t := &transport{
		apiKey: apiKey, http: opts.HTTPClient,
		retriesMax: opts.RetriesMax, base: opts.BackoffBase, max: opts.BackoffMax, sleep: opts.Sleep,
	}
	switch {
	case t.retriesMax == 0:
		t.retriesMax = RetriesMaxDefault
	case t.retriesMax < 0:
		t.retriesMax = 0
	case t.retriesMax > RetriesMaxLimit:
		return nil, fmt.Errorf("payments: Options.RetriesMax %d is above %d", opts.RetriesMax, RetriesMaxLimit)
	}
	if t.http == nil {
		t.http = &http.Client{Timeout: TimeoutDefault}
	}
	if t.base <= 0 {
		t.base = BackoffBaseDefault
	}
	if t.max <= 0 {
		t.max = BackoffMaxDefault
	}
	if t.sleep == nil {
		t.sleep = sleepContext
	}
	raw, err := NewClientWithResponses(strings.TrimSuffix(opts.BaseURL, "/"), WithHTTPClient(t))
	if err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	c := &Client{API: raw, raw: raw}
	c.Account = &AccountService{c}
	c.Payments = &PaymentService{c}
	c.Refunds = &RefundService{c}
	c.Events = &EventService{c}
	c.Balance = &BalanceService{c}
	c.WebhookEndpoints = &WebhookEndpointService{c}
	return c, nil
}

// transport is the HttpRequestDoer behind every generated call.
type transport struct {
	apiKey     string
	http       *http.Client
	retriesMax int
	base, max  time.Duration
	sleep      func(context.Context, time.Duration) error
}

// NewIdempotencyKey returns a fresh random key: IdempotencyKeyPrefix and
// 128 random bits, four to a letter from a to p. The key holds no digit:
// the API refuses a key that looks like a card number, and a run of hex
// digits sometimes does.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	out := make([]byte, 0, len(IdempotencyKeyPrefix)+2*len(b))
	out = append(out, IdempotencyKeyPrefix...)
	for _, c := range b {
		out = append(out, 'a'+c>>4, 'a'+c&0x0f)
	}
	return string(out)
}

// Do sends req with the API key, an Idempotency-Key on a POST that has
// none, and retries: on a network error, a 409 (the same key still
// running), a 429 or a 5xx, after an exponential, jittered delay or the
// answer's Retry-After, whichever is longer (both capped by BackoffMax).
// Every attempt of one call carries the same Idempotency-Key, so a retried
// write happens at most once.
func (t *transport) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+t.apiKey)
	}
	if req.Method == http.MethodPost && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", NewIdempotencyKey())
	}
	if o := callOptionsFrom(req.Context()); o != nil {
		if o.idempotencyKey != "" {
			req.Header.Set("Idempotency-Key", o.idempotencyKey)
		}
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, fmt.Errorf("payments: read request body: %w", err)
		}
		_ = req.Body.Close()
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		res, err := t.http.Do(r)
		retry, after := retryable(res, err)
		if !retry || attempt >= t.retriesMax || ctx.Err() != nil {
			if res != nil {
				res.Body = limitedBody(res.Body)
				if o := callOptionsFrom(ctx); o != nil && o.header != nil {
					*o.header = res.Header.Clone()
				}
			}
			return res, err
		}
		if res != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			_ = res.Body.Close()
		}
		if err := t.sleep(ctx, t.delay(attempt, after)); err != nil {
			return nil, err
		}
	}
}

// retryable says whether an attempt's outcome deserves another attempt, and
// the delay the server asked for.
func retryable(res *http.Response, err error) (bool, time.Duration) {
	if err != nil {
		// A network error: the request may or may not have arrived; the
		// Idempotency-Key makes a retried write safe. A canceled context is
		// not retried (the loop checks ctx).
		return true, 0
	}
	switch {
	case res.StatusCode == http.StatusConflict:
		// Only the same Idempotency-Key still running is worth waiting
		// for; another conflict (a payment in the wrong state) is final.
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		_ = res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(b, &p)
		return p.Code == CodeIdempotencyKeyInUse, retryAfter(res.Header.Get("Retry-After"))
	case res.StatusCode == http.StatusTooManyRequests, res.StatusCode >= 500:
		return true, retryAfter(res.Header.Get("Retry-After"))
	}
	return false, 0
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// delay is the wait before retry number attempt+1: a random duration below
// base·2^attempt (capped by max), and at least what the server asked for.
func (t *transport) delay(attempt int, after time.Duration) time.Duration {
	ceiling := t.base << min(attempt, 30)
	if ceiling <= 0 || ceiling > t.max {
		ceiling = t.max
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(ceiling)+1))
	d := time.Duration(n.Int64())
	if after > d {
		d = after
	}
	return min(d, t.max)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

func limitedBody(b io.ReadCloser) io.ReadCloser {
	return limitedReadCloser{io.LimitReader(b, ResponseBytesMax), b}
}

// CallOption changes one call of a service method.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	header         *http.Header
}

type callOptionsKey struct{}

func callOptionsFrom(ctx context.Context) *callOptions {
	o, _ := ctx.Value(callOptionsKey{}).(*callOptions)
	return o
}

func withCallOptions(ctx context.Context, opts []CallOption) context.Context {
	if len(opts) == 0 {
		return ctx
	}
	o := &callOptions{}
	for _, f := range opts {
		f(o)
	}
	return context.WithValue(ctx, callOptionsKey{}, o)
}

// WithIdempotencyKey sends key instead of a fresh one, so that a call
// repeated later (after a crash, say) replays the first one's answer.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// WithResponseHeader stores the answer's headers (Request-Id,
// Idempotent-Replayed, RateLimit-*) in h.
func WithResponseHeader(h *http.Header) CallOption {
	return func(o *callOptions) { o.header = h }
}
