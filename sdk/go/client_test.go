package payments_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	payments "github.com/payments-api/payments/sdk/go"
)

// attempt is one request that a scripted server received.
type attempt struct {
	method, auth, key, body string
}

// scripted is a loopback server that answers the n-th request with
// answers[n] (the last one repeats) and records every request.
type scripted struct {
	mu       sync.Mutex
	attempts []attempt
	srv      *httptest.Server
}

type answer struct {
	status int
	header map[string]string
	body   string
	drop   bool // close the connection without answering
}

func newScripted(t *testing.T, answers ...answer) *scripted {
	t.Helper()
	s := &scripted{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.attempts = append(s.attempts, attempt{r.Method, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(b)})
		a := answers[min(len(s.attempts), len(answers))-1]
		s.mu.Unlock()
		if a.drop {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scripted) got() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

// sleeps records the delays the client asked for, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func client(t *testing.T, base string, o payments.Options) (*payments.Client, *sleeps) {
	t.Helper()
	sl := &sleeps{}
	o.BaseURL = base
	if o.Sleep == nil {
		o.Sleep = sl.sleep
	}
	c, err := payments.New("sk_test_abc", o)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

const paymentJSON = `{"id":"pay_1","object":"payment","amount":100,"currency":"usd","status":"succeeded"}`

func visa() payments.CreatePaymentJSONRequestBody {
	return payments.CreatePaymentJSONRequestBody{Amount: 100, Currency: "usd", PaymentMethod: "pm_card_visa"}
}

func TestRetriesKeepOneIdempotencyKeyAndHonourRetryAfter(t *testing.T) {
	t.Parallel()
	s := newScripted(t,
		answer{status: 503, header: map[string]string{"Retry-After": "3"}, body: `{"status":503,"code":"service_unavailable"}`},
		answer{drop: true},
		answer{status: 429, header: map[string]string{"Retry-After": "2"}, body: `{"status":429,"code":"rate_limited"}`},
		answer{status: 409, body: `{"status":409,"code":"idempotency_key_in_use"}`},
		answer{status: 201, body: paymentJSON},
	)
	c, sl := client(t, s.srv.URL, payments.Options{RetriesMax: 5})
	p, err := c.Payments.Create(context.Background(), visa())
	if err != nil || p.Id != "pay_1" {
		t.Fatalf("create: %+v %v", p, err)
	}
	got := s.got()
	if len(got) != 5 {
		t.Fatalf("%d attempts, want 5", len(got))
	}
	key := got[0].key
	if !strings.HasPrefix(key, payments.IdempotencyKeyPrefix) || len(key) != len(payments.IdempotencyKeyPrefix)+32 {
		t.Fatalf("idempotency key %q", key)
	}
	for i, a := range got {
		if a.key != key || a.auth != "Bearer sk_test_abc" || a.method != "POST" || a.body != got[0].body || !strings.Contains(a.body, `"amount":100`) {
			t.Errorf("attempt %d: %+v, want key %s and the first body", i, a, key)
		}
	}
	// After the dropped connection, net/http itself resends the request
	// when the connection was a reused one (it carries an Idempotency-Key),
	// else the client waits and retries: three or four waits. The wait
	// after the 503 honours its Retry-After (3 s), as does the one after
	// the 429 (2 s), the next to last.
	if n := len(sl.d); n < 3 || n > 4 || sl.d[0] < 3*time.Second || sl.d[n-2] < 2*time.Second {
		t.Errorf("delays %v: want 3 or 4, the first ≥ 3s and the next to last ≥ 2s (Retry-After)", sl.d)
	}
	// A second call has a key of its own.
	if _, err := c.Payments.Create(context.Background(), visa()); err != nil {
		t.Fatal(err)
	}
	if k := s.got()[5].key; k == key || k == "" {
		t.Errorf("second call's key %q, first %q", k, key)
	}
}

func TestCallerKeyIsSentAndGETHasNone(t *testing.T) {
	t.Parallel()
	s := newScripted(t, answer{status: 200, body: paymentJSON})
	c, _ := client(t, s.srv.URL, payments.Options{})
	if _, err := c.Payments.Create(context.Background(), visa(), payments.WithIdempotencyKey("order-42")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Payments.Get(context.Background(), "pay_1"); err != nil {
		t.Fatal(err)
	}
	got := s.got()
	if got[0].key != "order-42" || got[1].key != "" || got[1].method != "GET" {
		t.Fatalf("attempts %+v", got)
	}
}

func TestFinalAnswersAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		check  func(error) bool
	}{
		{400, `{"status":400,"type":"invalid_request_error","code":"parameter_invalid","param":"currency","detail":"currency must be ISO 4217"}`,
			func(err error) bool {
				var e *payments.InvalidRequestError
				return errors.As(err, &e) && e.Param == "currency" && e.Code == payments.CodeParameterInvalid
			}},
		{402, `{"status":402,"code":"card_declined","decline_code":"generic_decline","payment":"pay_9"}`,
			func(err error) bool {
				var e *payments.CardError
				return errors.As(err, &e) && e.Payment == "pay_9" && e.DeclineCode == "generic_decline" && e.Type == payments.TypeCard
			}},
		{409, `{"status":409,"code":"payment_not_capturable"}`,
			func(err error) bool {
				var e *payments.InvalidRequestError
				return errors.As(err, &e) && e.Status == 409
			}},
		{422, `{"status":422,"code":"idempotency_key_reused"}`,
			func(err error) bool {
				var e *payments.IdempotencyError
				return errors.As(err, &e)
			}},
		{401, `{"status":401,"code":"unauthenticated"}`,
			func(err error) bool { var e *payments.AuthenticationError; return errors.As(err, &e) }},
		{403, `{"status":403,"type":"permission_error","code":"api_key_read_only"}`,
			func(err error) bool { var e *payments.PermissionError; return errors.As(err, &e) }},
		{404, `not json at all`,
			func(err error) bool {
				var e *payments.InvalidRequestError
				return errors.As(err, &e) && e.Status == 404
			}},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			s := newScripted(t, answer{status: tc.status, header: map[string]string{"Request-Id": "req_1"}, body: tc.body})
			c, sl := client(t, s.srv.URL, payments.Options{})
			_, err := c.Payments.Create(context.Background(), visa())
			if !tc.check(err) {
				t.Errorf("error %#v", err)
			}
			var re *payments.ResponseError
			if !errors.As(err, &re) || re.RequestID != "req_1" {
				t.Errorf("not a *ResponseError with the Request-Id: %v", err)
			}
			if n := len(s.got()); n != 1 || len(sl.d) != 0 {
				t.Errorf("%d attempts, %d sleeps: want 1 and 0", n, len(sl.d))
			}
		})
	}
}

func TestRetriesStopAtTheLimitWithATypedError(t *testing.T) {
	t.Parallel()
	s := newScripted(t, answer{status: 429, body: `{"status":429,"type":"rate_limit_error","code":"rate_limited"}`})
	c, sl := client(t, s.srv.URL, payments.Options{RetriesMax: 4, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second})
	_, err := c.Payments.Create(context.Background(), visa())
	var e *payments.RateLimitError
	if !errors.As(err, &e) || e.Code != payments.CodeRateLimited {
		t.Fatalf("error %v", err)
	}
	if n := len(s.got()); n != 5 {
		t.Fatalf("%d attempts, want 1 + 4 retries", n)
	}
	// Full jitter below base·2^n, capped by BackoffMax.
	for i, d := range sl.d {
		if ceiling := min(100*time.Millisecond<<i, time.Second); d < 0 || d > ceiling {
			t.Errorf("delay %d is %s, above %s", i, d, ceiling)
		}
	}
	none, sl2 := client(t, s.srv.URL, payments.Options{RetriesMax: -1})
	_, _ = none.Payments.Create(context.Background(), visa())
	if n := len(s.got()); n != 6 || len(sl2.d) != 0 {
		t.Fatalf("RetriesMax -1 made %d attempts", n-5)
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c, sl := client(t, base, payments.Options{RetriesMax: 2})
	_, err := c.Payments.Create(context.Background(), visa())
	var re *payments.ResponseError
	if err == nil || errors.As(err, &re) || len(sl.d) != 2 {
		t.Fatalf("error %v after %d waits, want a network error after 2", err, len(sl.d))
	}
}

func TestServerErrorsAreRetriedAndReportedAsAPIErrors(t *testing.T) {
	t.Parallel()
	s := newScripted(t, answer{status: 500, body: `{"status":500,"code":"internal_error"}`})
	c, _ := client(t, s.srv.URL, payments.Options{RetriesMax: 2})
	_, err := c.Refunds.Get(context.Background(), "re_1")
	var e *payments.APIError
	if !errors.As(err, &e) || e.Status != 500 || len(s.got()) != 3 {
		t.Fatalf("error %v after %d attempts", err, len(s.got()))
	}
}

func TestCanceledContextStopsRetrying(t *testing.T) {
	t.Parallel()
	s := newScripted(t, answer{status: 503, header: map[string]string{"Retry-After": "60"}})
	ctx, cancel := context.WithCancel(context.Background())
	c, err := payments.New("sk_test_abc", payments.Options{BaseURL: s.srv.URL, Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Payments.Create(ctx, visa()); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if n := len(s.got()); n != 1 {
		t.Fatalf("%d attempts after cancel", n)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key string
		o   payments.Options
	}{
		{"", payments.Options{BaseURL: "http://127.0.0.1:1"}},
		{"sk_test_x", payments.Options{}},
		{"sk_test_x", payments.Options{BaseURL: "http://127.0.0.1:1", RetriesMax: payments.RetriesMaxLimit + 1}},
	} {
		if _, err := payments.New(tc.key, tc.o); err == nil {
			t.Errorf("New(%q, %+v) accepted", tc.key, tc.o)
		}
	}
}

func TestListWalksEveryPage(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var afters []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("starting_after")
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		next := map[string]string{"": `{"data":[{"id":"pay_5"},{"id":"pay_4"}],"has_more":true}`,
			"pay_4": `{"data":[{"id":"pay_3"},{"id":"pay_2"}],"has_more":true}`,
			"pay_2": `{"data":[{"id":"pay_1"}],"has_more":false}`}[after]
		_, _ = io.WriteString(w, next)
	}))
	defer srv.Close()
	c, _ := client(t, srv.URL, payments.Options{})
	limit := int64(2)
	var ids []string
	for p, err := range c.Payments.List(context.Background(), payments.ListPaymentsParams{Limit: &limit}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.Id)
	}
	if fmt.Sprint(ids) != "[pay_5 pay_4 pay_3 pay_2 pay_1]" || fmt.Sprint(afters) != "[ pay_4 pay_2]" {
		t.Fatalf("ids %v, starting_after %q", ids, afters)
	}
}

func sign(ts int64, body, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.%s", ts, body)
	return hex.EncodeToString(mac.Sum(nil))
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	body := `{"id":"evt_1","object":"event","type":"payment.succeeded"}`
	secret, old := "whsec_new", "whsec_old"
	ts := now.Unix() - 10
	good := fmt.Sprintf("t=%d,v1=%s", ts, sign(ts, body, secret))
	rotated := fmt.Sprintf("t=%d,v1=%s,v1=%s", ts, sign(ts, body, secret), sign(ts, body, old))
	for _, tc := range []struct {
		name, header, secret, body string
		ok                         bool
	}{
		{"valid", good, secret, body, true},
		{"rotation, new secret", rotated, secret, body, true},
		{"rotation, old secret", rotated, old, body, true},
		{"other secret", good, "whsec_x", body, false},
		{"changed body", good, secret, body + " ", false},
		{"no timestamp", "v1=" + sign(ts, body, secret), secret, body, false},
		{"no signature", fmt.Sprintf("t=%d", ts), secret, body, false},
		{"not hex", fmt.Sprintf("t=%d,v1=zz", ts), secret, body, false},
		{"too old", fmt.Sprintf("t=%d,v1=%s", ts-600, sign(ts-600, body, secret)), secret, body, false},
		{"from the future", fmt.Sprintf("t=%d,v1=%s", ts+600, sign(ts+600, body, secret)), secret, body, false},
		{"header too long", good + "," + strings.Repeat("x", payments.SignatureHeaderBytesMax), secret, body, false},
		{"empty header", "", secret, body, false},
		{"empty secret", good, "", body, false},
	} {
		err := payments.VerifySignature([]byte(tc.body), tc.header, tc.secret, 0, now)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, payments.ErrSignature)) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if err := payments.VerifySignature(make([]byte, payments.PayloadBytesMax+1), good, secret, 0, now); !errors.Is(err, payments.ErrSignature) {
		t.Errorf("oversized payload: %v", err)
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(`{}`), "t=1,v1=00", "whsec_x")
	f.Add([]byte(`{"a":1}`), "t=,v1=,v1", "whsec_")
	f.Fuzz(func(t *testing.T, body []byte, header, secret string) {
		// Never panics, and never accepts what the secret did not sign.
		err := payments.VerifySignature(body, header, secret, time.Hour, time.Unix(1, 0))
		if err == nil {
			var ts string
			for _, p := range strings.Split(header, ",") {
				if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); k == "t" {
					ts = v
				}
			}
			n, _ := strconv.ParseInt(ts, 10, 64)
			if !strings.Contains(header, sign(n, string(body), secret)) {
				t.Fatalf("accepted %q for %q", header, body)
			}
		}
	})
}

// The client's keys hold no digit, so none can look like a card number,
// which the API refuses in an Idempotency-Key; and they do not repeat.
func TestNewIdempotencyKeyHoldsNoDigit(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 10000 {
		k := payments.NewIdempotencyKey()
		rest, ok := strings.CutPrefix(k, payments.IdempotencyKeyPrefix)
		if !ok || len(rest) != 32 || strings.ContainsAny(rest, "0123456789") || strings.Trim(rest, "abcdefghijklmnop") != "" {
			t.Fatalf("key %q: want the prefix and 32 letters a to p", k)
		}
		if seen[k] {
			t.Fatalf("key %q made twice", k)
		}
		seen[k] = true
	}
}
