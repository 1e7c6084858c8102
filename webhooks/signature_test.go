package webhooks

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","object":"event"}` + "\n")
	now := time.Unix(1764090000, 0)
	s1, s2 := NewSecret(), NewSecret()
	h := Sign(now, body, s1, s2)
	// Computed here by hand from the documentation.
	mac := func(s Secret) string {
		m := hmac.New(sha256.New, []byte(s.Reveal()))
		m.Write([]byte("1764090000." + string(body)))
		return hex.EncodeToString(m.Sum(nil))
	}
	if want := "t=1764090000,v1=" + mac(s1) + ",v1=" + mac(s2); h != want {
		t.Fatalf("Sign = %s\nwant   %s", h, want)
	}
	if Sign(now, body, s1) == Sign(now, append(body[:len(body)-1:len(body)-1], ' '), s1) {
		t.Fatal("a changed body signs the same")
	}
}

func TestSecretsAreRandomAndRedacted(t *testing.T) {
	t.Parallel()
	seen := map[Secret]bool{}
	for range 100 {
		s := NewSecret()
		if !strings.HasPrefix(s.Reveal(), SecretPrefix) || len(s.Reveal()) != len(SecretPrefix)+43 || seen[s] {
			t.Fatalf("secret %q", s.Reveal())
		}
		seen[s] = true
	}
	s := NewSecret()
	e := Endpoint{Secret: s, PreviousSecret: &s}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "endpoint", e)
	j, _ := json.Marshal(e)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", e, e, e, s), logs.String(), string(j)} {
		if strings.Contains(out, s.Reveal()) {
			t.Fatalf("the secret leaked: %s", out)
		}
	}
	if strings.Contains(fmt.Sprint(e.ToView()), s.Reveal()) || e.ToViewWithSecret().Secret != s.Reveal() {
		t.Fatal("only ToViewWithSecret shows the secret")
	}
}
