package idempotency

import (
	"strings"
	"testing"

	"github.com/payments-api/payments/errcode"
)

func TestFingerprintCanonicalizesJSON(t *testing.T) {
	t.Parallel()
	a := Fingerprint("POST", "/v1/payments", []byte(`{"amount":100,"currency":"usd","metadata":{"a":"1","b":"2"}}`))
	b := Fingerprint("POST", "/v1/payments", []byte(" {\n \"metadata\": {\"b\":\"2\", \"a\":\"1\"}, \"currency\":\"usd\", \"amount\": 100 }\n"))
	if a != b {
		t.Fatal("the same JSON in another order or spacing has another fingerprint")
	}
	for name, other := range map[string][32]byte{
		"amount":  Fingerprint("POST", "/v1/payments", []byte(`{"amount":101,"currency":"usd","metadata":{"a":"1","b":"2"}}`)),
		"number":  Fingerprint("POST", "/v1/payments", []byte(`{"amount":100.0,"currency":"usd","metadata":{"a":"1","b":"2"}}`)),
		"path":    Fingerprint("POST", "/v1/refunds", []byte(`{"amount":100,"currency":"usd","metadata":{"a":"1","b":"2"}}`)),
		"method":  Fingerprint("PUT", "/v1/payments", []byte(`{"amount":100,"currency":"usd","metadata":{"a":"1","b":"2"}}`)),
		"missing": Fingerprint("POST", "/v1/payments", []byte(`{"amount":100,"currency":"usd"}`)),
	} {
		if other == a {
			t.Errorf("%s: a different request has the same fingerprint", name)
		}
	}
	if Fingerprint("POST", "/x", nil) != Fingerprint("POST", "/x", []byte("  ")) {
		t.Fatal("empty bodies differ")
	}
	if Fingerprint("POST", "/x", []byte("{bad")) == Fingerprint("POST", "/x", []byte("{bad ")) {
		t.Fatal("non-JSON bodies must be compared as they are")
	}
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"", strings.Repeat("k", 256), "tab\there", "caf\u00e9"} {
		if err := ValidateKey(k); !errcode.Is(err, errcode.CodeIdempotencyKeyInvalid) {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"a", strings.Repeat("k", 255), "order-1234 attempt/2"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
}

// FuzzFingerprint checks determinism, and that canonicalizing a
// canonical body changes nothing (so a client resending our canonical form
// is recognized).
func FuzzFingerprint(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2,{"c":null}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if Fingerprint("POST", "/p", body) != Fingerprint("POST", "/p", body) {
			t.Fatal("fingerprint is not deterministic")
		}
		c := canonical(body)
		if string(canonical(c)) != string(c) {
			t.Fatalf("canonical form is not stable: %q -> %q", c, canonical(c))
		}
	})
}
