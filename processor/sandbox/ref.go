package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/payments-api/payments/money"
	"github.com/payments-api/payments/processor"
)

// chargeRefPrefix starts every charge reference the sandbox issues.
const chargeRefPrefix = "sbx_ch_"

// refundRefPrefix starts every refund reference the sandbox issues.
const refundRefPrefix = "sbx_re_"

// refVersion is the first byte of a reference's payload; a new layout gets
// a new version, and old references keep decoding.
const refVersion = 1

// refPayloadBytesMax bounds the encoded state: four bytes of header, the
// currency, four varints and two length-prefixed IDs.
const refPayloadBytesMax = 4 + 3 + 4*binary.MaxVarintLen64 + 2*(binary.MaxVarintLen16+IDBytesMax)

// RefLengthMax is the length of the longest charge reference the sandbox
// issues, for sizing storage. Longer input is refused without decoding.
const RefLengthMax = len(chargeRefPrefix) + (refPayloadBytesMax*8+5)/6

// flagManual marks a charge created with processor.CaptureManual.
const flagManual = 1

// state is everything the sandbox knows about a charge. The sandbox keeps
// no record of charges: the state travels inside the charge's Ref, and each
// status change issues a new Ref. That keeps Retrieve deterministic across
// restarts and processes, without storage.
type state struct {
	method   paymentMethod
	status   processor.Status
	manual   bool
	currency money.Currency
	amount   int64
	captured int64
	fee      int64
	// createdMilli is the creation time in Unix milliseconds, kept for
	// charges that settle after Options.SettleDelay and 0 for the others, so
	// that retrying Authorize yields the same Ref.
	createdMilli int64
	tenantID     string
	paymentID    string
}

// statusCodes numbers the statuses inside a Ref; the order is part of the
// encoding and never changes.
var statusCodes = [...]processor.Status{
	processor.StatusPending,
	processor.StatusRequiresAction,
	processor.StatusRequiresCapture,
	processor.StatusSucceeded,
	processor.StatusFailed,
	processor.StatusCanceled,
}

// statusCode returns the index of s in statusCodes.
func statusCode(s processor.Status) byte {
	for i, v := range statusCodes {
		if v == s {
			return byte(i)
		}
	}
	panic(fmt.Sprintf("sandbox: status %q has no code", s))
}

// encode returns the Ref of st.
func (st state) encode() string {
	b := make([]byte, 0, refPayloadBytesMax)
	var flags byte
	if st.manual {
		flags |= flagManual
	}
	b = append(b, refVersion, byte(st.method), statusCode(st.status), flags)
	b = append(b, st.currency[:3]...)
	b = binary.AppendUvarint(b, uint64(st.amount))
	b = binary.AppendUvarint(b, uint64(st.captured))
	b = binary.AppendUvarint(b, uint64(st.fee))
	b = binary.AppendUvarint(b, uint64(st.createdMilli))
	b = binary.AppendUvarint(b, uint64(len(st.tenantID)))
	b = append(b, st.tenantID...)
	b = binary.AppendUvarint(b, uint64(len(st.paymentID)))
	b = append(b, st.paymentID...)
	return chargeRefPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// errRefMalformed is the cause behind every reference decode failed on.
var errRefMalformed = errors.New("malformed sandbox charge reference")

// decodeRef parses a charge Ref. It checks every field, so a forged or
// mangled Ref cannot produce a state the sandbox would never issue.
func decodeRef(ref string) (state, error) {
	var st state
	if len(ref) > RefLengthMax || len(ref) <= len(chargeRefPrefix) || ref[:len(chargeRefPrefix)] != chargeRefPrefix {
		return st, errRefMalformed
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(ref[len(chargeRefPrefix):])
	if err != nil || len(b) < 7 || b[0] != refVersion {
		return st, errRefMalformed
	}
	if int(b[1]) >= len(paymentMethods) || int(b[2]) >= len(statusCodes) || b[3]&^flagManual != 0 {
		return st, errRefMalformed
	}
	st.method = paymentMethod(b[1])
	st.status = statusCodes[b[2]]
	st.manual = b[3]&flagManual != 0
	st.currency, err = money.ParseCurrency(string(b[4:7]))
	if err != nil {
		return st, errRefMalformed
	}
	r := refReader{b: b[7:]}
	st.amount = r.int63()
	st.captured = r.int63()
	st.fee = r.int63()
	st.createdMilli = r.int63()
	st.tenantID = r.id()
	st.paymentID = r.id()
	if r.bad || len(r.b) != 0 {
		return st, errRefMalformed
	}
	if st.amount < money.AmountMin || st.amount > st.currency.AmountMax() || st.captured > st.amount || st.fee > st.captured ||
		st.tenantID == "" || st.paymentID == "" || !consistent(st) {
		return st, errRefMalformed
	}
	// Varints have more than one encoding; only the one the sandbox issues
	// is accepted, so that a charge has exactly one Ref per state.
	if st.encode() != ref {
		return st, errRefMalformed
	}
	return st, nil
}

// consistent reports whether st's status is one its payment method can
// reach, with the amounts that status implies.
func consistent(st state) bool {
	m := paymentMethods[st.method]
	captured := st.captured > 0
	switch st.status {
	case processor.StatusPending:
		return m.settles && !captured
	case processor.StatusRequiresAction:
		return m.requiresAction && !captured
	case processor.StatusRequiresCapture:
		return m.approves() && st.manual && !captured
	case processor.StatusSucceeded:
		return m.approves() && captured && (st.manual || st.captured == st.amount)
	case processor.StatusFailed:
		return m.declineCode != "" && !captured
	case processor.StatusCanceled:
		return m.approves() && !captured
	}
	return false
}

// refReader reads the varint fields of a Ref, remembering the first fault.
type refReader struct {
	b   []byte
	bad bool
}

// uvarint reads one unsigned varint.
func (r *refReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int63 reads a non-negative int64.
func (r *refReader) int63() int64 {
	v := r.uvarint()
	if v > 1<<63-1 {
		r.bad = true
		return 0
	}
	return int64(v)
}

// id reads a length-prefixed ID of at most IDBytesMax bytes.
func (r *refReader) id() string {
	n := r.uvarint()
	if r.bad || n > IDBytesMax || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// actionMACBytes is the length of a 3-D Secure link's signature: 128 bits
// of HMAC-SHA256, beyond guessing.
const actionMACBytes = 16

// actionMACEncodedLen is the signature's length once encoded.
const actionMACEncodedLen = (actionMACBytes*8 + 5) / 6

// actionLinkSeparator sits between a link's Ref and its signature; the
// URL-safe base64 alphabet of both never holds it.
const actionLinkSeparator = "."

// actionMAC signs ref for a 3-D Secure link. The domain label keeps the
// key's signatures for links apart from any other use of it.
func (s *Sandbox) actionMAC(ref string) []byte {
	m := hmac.New(sha256.New, s.actionKey)
	m.Write([]byte("payments sandbox 3-D Secure link v1\x00"))
	m.Write([]byte(ref))
	return m.Sum(nil)[:actionMACBytes]
}

// actionLink returns the signed reference a 3-D Secure link carries.
func (s *Sandbox) actionLink(ref string) string {
	return ref + actionLinkSeparator + base64.RawURLEncoding.EncodeToString(s.actionMAC(ref))
}

// verifyActionLink returns the Ref of a link this Sandbox signed.
func (s *Sandbox) verifyActionLink(link string) (string, bool) {
	if len(link) > ActionLinkLengthMax {
		return "", false
	}
	ref, sig, ok := strings.Cut(link, actionLinkSeparator)
	if !ok || len(sig) != actionMACEncodedLen {
		return "", false
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.actionMAC(ref)) {
		return "", false
	}
	return ref, true
}
