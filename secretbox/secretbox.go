// Package secretbox seals small secrets for storage (tenants' processor
// keys) with AES-256-GCM under one process-wide key
// (PAYMENTS_ENCRYPTION_KEY). Every Seal draws a fresh random 96-bit nonce,
// and the caller binds each value to where it belongs with additional data
// (the tenant ID and the field), so a sealed value copied to another tenant
// or field does not open.
//
// A sealed value is: version (1 byte, 1) | key ID (4 bytes, the start of
// SHA-256 of the key) | nonce (12 bytes) | ciphertext and tag. The key ID
// lets Open tell "sealed under another key" (ErrWrongKey) from tampering.
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

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead  cipher.AEAD
	keyID [keyIDBytes]byte
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
	if len(key) != KeyBytes {
		return nil, fmt.Errorf("secretbox: key of %d bytes, want %d", len(key), KeyBytes)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	b := &Box{aead: aead}
	sum := sha256.Sum256(key)
	copy(b.keyID[:], sum[:])
	return b, nil
}

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

// Open decrypts a value Seal made with the same additional data. Errors:
// ErrWrongKey, ErrCorrupt.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < OverheadBytes || sealed[0] != version {
		return nil, ErrCorrupt
	}
	if [keyIDBytes]byte(sealed[1:1+keyIDBytes]) != b.keyID {
		return nil, ErrWrongKey
	}
	nonce := sealed[1+keyIDBytes : 1+keyIDBytes+nonceBytes]
	out, err := b.aead.Open(nil, nonce, sealed[1+keyIDBytes+nonceBytes:], b.header(sealed, additionalData))
	if err != nil {
		return nil, ErrCorrupt
	}
	return out, nil
}
