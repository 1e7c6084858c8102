package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
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

// Verification errors. A receiver answers any of them with a 4xx and drops
// the request.
var (
	ErrSignatureMissing   = errors.New("webhooks: no Payments-Signature with a timestamp and a v1 signature")
	ErrSignatureMalformed = errors.New("webhooks: malformed Payments-Signature")
	ErrSignatureTooOld    = errors.New("webhooks: Payments-Signature timestamp outside the tolerance")
	ErrSignatureMismatch  = errors.New("webhooks: no v1 signature matches the body")
)

// Verification limits.
const (
	// SignatureHeaderBytesMax bounds the header Verify parses.
	SignatureHeaderBytesMax = 4096
	// ToleranceDefault is how far a signature's timestamp may be from the
	// receiver's clock, as Stripe's libraries allow by default.
	ToleranceDefault = 5 * time.Minute
)

// Verify checks a Payments-Signature header value against the raw body, as
// a receiver does: the timestamp must be within tolerance of now (either
// way), and one v1 signature must match under secret. Unknown schemes are
// ignored, so new ones can be added; several v1 are sent while a secret is
// rotated. A tolerance of 0 means ToleranceDefault. It answers the
// signature's time.
func Verify(header string, body []byte, secret Secret, tolerance time.Duration, now time.Time) (time.Time, error) {
	if tolerance <= 0 {
		tolerance = ToleranceDefault
	}
	if len(header) > SignatureHeaderBytesMax {
		return time.Time{}, ErrSignatureMalformed
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return time.Time{}, ErrSignatureMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return time.Time{}, ErrSignatureMalformed
			}
			ts = v
		case "v1":
			mac, err := hex.DecodeString(v)
			if err != nil || len(mac) != sha256.Size {
				return time.Time{}, ErrSignatureMalformed
			}
			sigs = append(sigs, mac)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return time.Time{}, ErrSignatureMissing
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || strconv.FormatInt(sec, 10) != ts {
		return time.Time{}, ErrSignatureMalformed
	}
	// In whole seconds: both are non-negative, so the difference cannot
	// overflow.
	if d, tol := now.Unix()-sec, int64(tolerance/time.Second); d > tol || d < -tol {
		return time.Time{}, ErrSignatureTooOld
	}
	at := time.Unix(sec, 0)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return at, nil
		}
	}
	return time.Time{}, ErrSignatureMismatch
}
