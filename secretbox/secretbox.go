// Package secretbox seals small secrets for storage (tenants' processor
// keys) with AES-256-GCM under a process-wide keyring: the current key,
// which seals, and older keys, which only open (PAYMENTS_ENCRYPTION_KEYS,
// or PAYMENTS_ENCRYPTION_KEY alone). Every Seal draws a fresh random 96-bit nonce,
// and the caller binds each value to where it belongs with additional data
// (the tenant ID and the field), so a sealed value copied to another tenant
// or field does not open.
//
// A sealed value is: version (1 byte, 1) | key ID (4 bytes, the start of
// SHA-256 of the key) | nonce (12 bytes) | ciphertext and tag. The key ID
// picks the key that opens a value, tells "sealed under a key this box
// lacks" (ErrWrongKey) from tampering, and tells which values a rotation
// must seal again (Current, Reseal).
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Sizes.
const (
	// KeyBytes is the length of an AES-256 key.
	KeyBytes = 32
	// KeysMax bounds a keyring: the current key and the older ones still
	// being rotated out.
	KeysMax = 8
	// PlaintextBytesMax bounds what one Seal takes.
	PlaintextBytesMax = 4096
	version           = 1
	keyIDBytes        = 4
	nonceBytes        = 12
	tagBytes          = 16
	// OverheadBytes is how much longer a sealed value is than its
	// plaintext.
	OverheadBytes = 1 + keyIDBytes + nonceBytes + tagBytes
)

// Errors of Open.
var (
	// ErrWrongKey: the value was sealed under another key.
	ErrWrongKey = errors.New("secretbox: sealed under another encryption key")
	// ErrCorrupt: the value or its additional data was altered.
	ErrCorrupt = errors.New("secretbox: sealed value is corrupt or belongs elsewhere")
)

// Box seals values under its current key and opens values sealed under
// any of its keys. It is safe for concurrent use.
type Box struct {
	aead  cipher.AEAD
	keyID [keyIDBytes]byte
	// older opens values sealed under keys being rotated out, by key ID.
	older map[[keyIDBytes]byte]cipher.AEAD
}

// ParseKey reads a 32-byte key written as 64 hex digits or as base64
// (standard or URL alphabet, padded or not). The error never echoes the
// key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeyBytes {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeyBytes {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as 64 hex digits or base64 (for example: openssl rand -hex 32)", KeyBytes)
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	return NewRing(key)
}

// NewRing returns a Box that seals under current and opens values sealed
// under current or any of older (keys being rotated out). The keys must be
// distinct, with distinct key IDs, and at most KeysMax in all.
func NewRing(current []byte, older ...[]byte) (*Box, error) {
	if 1+len(older) > KeysMax {
		return nil, fmt.Errorf("secretbox: %d keys, at most %d", 1+len(older), KeysMax)
	}
	aead, id, err := newAEAD(current)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: aead, keyID: id, older: map[[keyIDBytes]byte]cipher.AEAD{}}
	for i, k := range older {
		aead, id, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("older key %d: %w", i+1, err)
		}
		if _, dup := b.older[id]; dup || id == b.keyID {
			return nil, fmt.Errorf("secretbox: older key %d is given twice (or its key ID %x repeats another's)", i+1, id)
		}
		b.older[id] = aead
	}
	return b, nil
}

func newAEAD(key []byte) (cipher.AEAD, [keyIDBytes]byte, error) {
	var id [keyIDBytes]byte
	if len(key) != KeyBytes {
		return nil, id, fmt.Errorf("secretbox: key of %d bytes, want %d", len(key), KeyBytes)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, id, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, id, fmt.Errorf("secretbox: %w", err)
	}
	sum := sha256.Sum256(key)
	copy(id[:], sum[:])
	return aead, id, nil
}

// KeyID is the hex key ID of the current key, as carried by the values it
// seals: a fingerprint that is safe to log and tells keys apart.
func (b *Box) KeyID() string { return hex.EncodeToString(b.keyID[:]) }

// Seal encrypts plaintext bound to additionalData.
func (b *Box) Seal(plaintext, additionalData []byte) ([]byte, error) {
	if len(plaintext) > PlaintextBytesMax {
		return nil, fmt.Errorf("secretbox: %d bytes to seal, at most %d", len(plaintext), PlaintextBytesMax)
	}
	out := make([]byte, 1+keyIDBytes+nonceBytes, OverheadBytes+len(plaintext))
	out[0] = version
	copy(out[1:], b.keyID[:])
	nonce := out[1+keyIDBytes:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secretbox: random nonce: %w", err)
	}
	return b.aead.Seal(out, nonce, plaintext, b.header(out, additionalData)), nil
}

// header is the additional data GCM authenticates: the version and key ID
// of the value, then the caller's additional data.
func (b *Box) header(sealed, additionalData []byte) []byte {
	ad := make([]byte, 0, 1+keyIDBytes+len(additionalData))
	ad = append(ad, sealed[:1+keyIDBytes]...)
	return append(ad, additionalData...)
}

// Open decrypts a value Seal made with the same additional data, under the
// current key or an older one. Errors: ErrWrongKey (sealed under a key the
// box does not hold), ErrCorrupt.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < OverheadBytes || sealed[0] != version {
		return nil, ErrCorrupt
	}
	id := [keyIDBytes]byte(sealed[1 : 1+keyIDBytes])
	aead := b.aead
	if id != b.keyID {
		if aead = b.older[id]; aead == nil {
			return nil, ErrWrongKey
		}
	}
	nonce := sealed[1+keyIDBytes : 1+keyIDBytes+nonceBytes]
	out, err := aead.Open(nil, nonce, sealed[1+keyIDBytes+nonceBytes:], b.header(sealed, additionalData))
	if err != nil {
		return nil, ErrCorrupt
	}
	return out, nil
}

// Current reports whether a value is sealed under the current key (judged
// by its key ID alone; Open checks the rest).
func (b *Box) Current(sealed []byte) bool {
	return len(sealed) >= OverheadBytes && sealed[0] == version && [keyIDBytes]byte(sealed[1:1+keyIDBytes]) == b.keyID
}

// Reseal returns the value sealed again under the current key, and whether
// it changed: a value already under the current key is returned as it is.
// Errors: those of Open.
func (b *Box) Reseal(sealed, additionalData []byte) ([]byte, bool, error) {
	if b.Current(sealed) {
		return sealed, false, nil
	}
	plain, err := b.Open(sealed, additionalData)
	if err != nil {
		return nil, false, err
	}
	out, err := b.Seal(plain, additionalData)
	clear(plain)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// ResealCount tallies one pass of a rotation over a table.
type ResealCount struct {
	// Scanned is how many rows were read.
	Scanned int `json:"scanned"`
	// Resealed is how many rows were written with values under the
	// current key.
	Resealed int `json:"resealed"`
	// Changed is how many rows changed between their read and their write
	// (a serving process wrote them meanwhile) and were left as the other
	// writer left them; the next pass reads them again.
	Changed int `json:"changed"`
}

// Add adds another tally to c.
func (c *ResealCount) Add(o ResealCount) {
	c.Scanned += o.Scanned
	c.Resealed += o.Resealed
	c.Changed += o.Changed
}
