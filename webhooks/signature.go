package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" with
	// one v1 per secret in use (two during a rotation).
	SignatureHeader = "Payments-Signature"
	// EventIDHeader carries the event's ID, so a receiver can drop a
	// duplicate delivery before parsing the body.
	EventIDHeader = "Payments-Event-Id"
)

// Secret lengths.
const (
	// SecretPrefix starts every signing secret.
	SecretPrefix = "whsec_"
	// SecretRandomBytes is the randomness of a secret: 256 bits.
	SecretRandomBytes = 32
	// PreviousSecretLifetime is how long the old secret keeps signing after
	// a rotation.
	PreviousSecretLifetime = 24 * time.Hour
)

// Secret is an endpoint's signing secret. Its String, GoString, LogValue and
// MarshalJSON answer a redacted form so that a secret printed or logged by
// mistake does not leak; Reveal answers the secret itself.
type Secret string

const redacted = SecretPrefix + "[redacted]"

// String implements fmt.Stringer, redacted.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, redacted.
func (Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer, redacted.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON answers the redacted form; views reveal the secret explicitly.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Reveal answers the secret, for signing and for the one answer that shows it.
func (s Secret) Reveal() string { return string(s) }

// NewSecret returns a fresh secret: the prefix and 256 random bits in
// unpadded base64url.
func NewSecret() Secret {
	b := make([]byte, SecretRandomBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return Secret(SecretPrefix + base64.RawURLEncoding.EncodeToString(b))
}

// Sign returns the Payments-Signature value for body sent at t: the HMAC key
// is the whole secret string ("whsec_..."), the message is
// "<t>.<raw body>", and there is one v1 per secret, in the order given.
func Sign(t time.Time, body []byte, secrets ...Secret) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(ts))
		mac.Write([]byte{'.'})
		mac.Write(body)
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac.Sum(nil)))
	}
	return b.String()
}
