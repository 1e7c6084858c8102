package payments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook deliveries' headers and the verifier's limits.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>", one
	// v1 per secret in use (two for 24 hours after a rotation).
	SignatureHeader = "Payments-Signature"
	// EventIDHeader carries the event's ID, for dropping duplicates.
	EventIDHeader = "Payments-Event-Id"
	// SignatureToleranceDefault is how old (or how far in the future) a
	// signature's timestamp may be; older deliveries are refused as replays.
	SignatureToleranceDefault = 5 * time.Minute
	// SignatureHeaderBytesMax bounds the header the verifier parses.
	SignatureHeaderBytesMax = 4096
	// PayloadBytesMax bounds the body the verifier accepts.
	PayloadBytesMax = 1 << 20
)

// ErrSignature is wrapped by every verification failure.
var ErrSignature = errors.New("payments: webhook signature verification failed")

// VerifySignature checks a delivery: header is its Payments-Signature, payload
// its raw body (before any JSON parsing), secret the endpoint's whsec_...
// secret. The signature must be an HMAC-SHA256 of "<t>.<payload>" keyed with
// the whole secret, and t within tolerance of now (0 means
// SignatureToleranceDefault). Comparison is constant time.
func VerifySignature(payload []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	if len(payload) > PayloadBytesMax {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrSignature, len(payload), PayloadBytesMax)
	}
	if len(header) == 0 || len(header) > SignatureHeaderBytesMax {
		return fmt.Errorf("%w: %s header missing or longer than %d bytes", ErrSignature, SignatureHeader, SignatureHeaderBytesMax)
	}
	if secret == "" {
		return fmt.Errorf("%w: empty secret", ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = SignatureToleranceDefault
	}
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid t= timestamp", ErrSignature)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s away from now, beyond the tolerance %s", ErrSignature, sec, age.Round(time.Second), tolerance)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1= signature", ErrSignature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(payload)
	want := mac.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 signature matches the secret", ErrSignature)
}

// ConstructEvent verifies a delivery (see VerifySignature, with the
// default tolerance and the current time) and decodes its event.
func ConstructEvent(payload []byte, header, secret string) (*Event, error) {
	if err := VerifySignature(payload, header, secret, 0, time.Now()); err != nil {
		return nil, err
	}
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, fmt.Errorf("payments: decode event: %w", err)
	}
	return &e, nil
}
