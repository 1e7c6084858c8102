// Package ids mints and parses the public identifiers of the API: a type
// prefix and the 26-character lowercase Crockford base32 form of a UUIDv7,
// such as "pay_06f0kb9t5q3e3bq4b7bw0vq2rc". The UUID is the primary key in
// the database; UUIDv7 keeps inserts of one tenant roughly ordered by time,
// so "newest first" is an index scan on the key.
package ids

import (
	"encoding/base32"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Prefixes of every object type.
const (
	PrefixTenant    = "ten_"
	PrefixAPIKey    = "key_"
	PrefixPayment   = "pay_"
	PrefixRefund    = "re_"
	PrefixEvent     = "evt_"
	PrefixWebhook   = "we_"
	PrefixDelivery  = "whd_"
	PrefixBalanceTx = "txn_"
	PrefixLedgerTx  = "ltx_"
	PrefixSeal      = "seal_"
	PrefixRiskRule  = "rr_"
	PrefixDispute   = "dp_"
	PrefixPayout    = "po_"
)

var encoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// New returns a fresh time-ordered UUID.
func New() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system random source fails, which
		// leaves nothing safe to do.
		panic("ids: random source failed: " + err.Error())
	}
	return id
}

// Format renders id with prefix.
func Format(prefix string, id uuid.UUID) string {
	return prefix + encoding.EncodeToString(id[:])
}

// Parse reads a public ID with the given prefix. It reports false for any
// string that is not exactly such an ID, so callers answer "not found".
func Parse(prefix, s string) (uuid.UUID, bool) {
	if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+26 {
		return uuid.UUID{}, false
	}
	b, err := encoding.DecodeString(s[len(prefix):])
	if err != nil || len(b) != 16 {
		return uuid.UUID{}, false
	}
	var id uuid.UUID
	copy(id[:], b)
	// Reject non-canonical spellings (the last character carries 2 padding
	// bits) so that one object has exactly one ID.
	if Format(prefix, id) != s {
		return uuid.UUID{}, false
	}
	return id, true
}

// Before returns the smallest UUIDv7 of the millisecond t: every ID New
// minted before that millisecond sorts below it, so "id < Before(t)" bounds
// a scan of time-ordered keys (a retention purge) by time without an index
// on a timestamp.
func Before(t time.Time) uuid.UUID {
	var id uuid.UUID
	ms := uint64(max(t.UnixMilli(), 0))
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	id[6] = 0x70 // version 7
	id[8] = 0x80 // RFC 9562 variant
	return id
}
