package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payments-api/payments/carddata"
)

// FuzzRedactPath: whatever the path, what is logged holds no card number.
func FuzzRedactPath(f *testing.F) {
	for _, s := range []string{
		"/v1/payments/4242424242424242/capture", "/v1/payments/pay_06h17frpsdzff29kp8gyg5mc4w",
		"/a/4242 4242 4242 4242/b", "/4242-4242-4242-4242", "/x/37828224631%300005", "/%34242424242424242",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out := redactPath(p)
		if carddata.Contains([]byte(out)) || carddata.Contains([]byte(queryDecoded(out))) {
			t.Fatalf("redactPath(%q) = %q still holds a card number", p, out)
		}
		if !carddata.Contains([]byte(p)) && !carddata.Contains([]byte(queryDecoded(p))) && out != p {
			t.Fatalf("redactPath changed a clean path: %q → %q", p, out)
		}
	})
}

func TestRedactPathEverySegment(t *testing.T) {
	t.Parallel()
	got := redactPath("/v1/payments/4242424242424242/capture/5555555555554444")
	if got != "/v1/payments/[redacted]/capture/[redacted]" {
		t.Fatalf("got %q", got)
	}
}

var benchBody = []byte(`{"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "description": "Order 1234",
 "customer": "cus_8812", "metadata": {"order_id": "1234", "channel": "web"}, "location": {"lat": 52.52, "lon": 13.405}}`)

// BenchmarkEdgeChecks measures what the edge adds to a payment creation:
// the URL checks and the body checks, for a body without NUL or null (the
// common case) and one with a null (which is decoded and walked).
func BenchmarkEdgeChecks(b *testing.B) {
	s := New(Config{})
	op := s.API.OpenAPI().Paths["/v1/payments"].Post
	reg := s.API.OpenAPI().Components.Schemas
	req := httptest.NewRequest("POST", "/v1/payments", strings.NewReader(""))
	withNull := []byte(strings.Replace(string(benchBody), `"Order 1234"`, `null`, 1))
	for name, body := range map[string][]byte{"plain": benchBody, "with_null": withNull} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p := checkURL(req); p != nil {
					b.Fatal(p)
				}
				p := checkBody(req.Context(), reg, op, body)
				if (p != nil) != (name == "with_null") {
					b.Fatal(p)
				}
			}
		})
	}
}
