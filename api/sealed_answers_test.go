package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// storedAnswer reads the stored idempotent answer of a key from whichever
// shard holds it.
func (h *harness) storedAnswer(key string) (body []byte, sealed bool) {
	h.t.Helper()
	for _, sh := range h.shards.All() {
		err := sh.Pool.QueryRow(context.Background(), `SELECT response_body, response_sealed FROM idempotency_keys WHERE key = $1`, key).Scan(&body, &sealed)
		if err == nil {
			return body, sealed
		}
	}
	h.t.Fatalf("no stored answer for key %s", key)
	return nil, false
}

// TestIdempotentAnswersWithSecretsAreSealed: the stored answers of a
// webhook endpoint's creation and of its secret's rotation, which show the
// signing secret, are sealed at rest like the secret; a retry with the
// same key still replays them byte for byte. Other answers stay as they
// were.
func TestIdempotentAnswersWithSecretsAreSealed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{WebhookAllowPrivate: true})
	ten := h.createTenant("Sealed", nil)
	body := map[string]any{"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"payment.succeeded"}}
	created := h.do("POST", "/v1/webhook_endpoints", ten.Secret, body, "Idempotency-Key", "seal-create")
	if created.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.Status, created.Body)
	}
	ep := created.json(t)
	id, secret := ep["id"].(string), ep["secret"].(string)
	rot := h.do("POST", "/v1/webhook_endpoints/"+id+"/rotate_secret", ten.Secret, nil, "Idempotency-Key", "seal-rotate")
	if rot.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", rot.Status, rot.Body)
	}
	rotated := rot.json(t)["secret"].(string)
	for key, secret := range map[string]string{"seal-create": secret, "seal-rotate": rotated} {
		stored, sealed := h.storedAnswer(key)
		if !sealed || strings.Contains(string(stored), secret) || strings.Contains(string(stored), "whsec_") || strings.Contains(string(stored), id) {
			t.Fatalf("the stored answer of %s is not sealed (sealed=%v): %q", key, sealed, stored)
		}
	}
	for _, c := range []struct {
		first        response
		method, path string
		key          string
		body         any
		status       int
	}{
		{created, "POST", "/v1/webhook_endpoints", "seal-create", body, http.StatusCreated},
		{rot, "POST", "/v1/webhook_endpoints/" + id + "/rotate_secret", "seal-rotate", nil, http.StatusOK},
	} {
		again := h.do(c.method, c.path, ten.Secret, c.body, "Idempotency-Key", c.key)
		if again.Status != c.status || string(again.Body) != string(c.first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay of %s: %d %s, want the first answer", c.key, again.Status, again.Body)
		}
	}

	pay := h.pay(ten.Secret, visa(500), "Idempotency-Key", "seal-payment")
	if pay.Status != http.StatusCreated {
		t.Fatalf("pay: %d %s", pay.Status, pay.Body)
	}
	if stored, sealed := h.storedAnswer("seal-payment"); sealed || !strings.Contains(string(stored), pay.json(t)["id"].(string)) {
		t.Fatalf("a payment's answer (no secret in it) was sealed=%v: %q", sealed, stored)
	}
}
