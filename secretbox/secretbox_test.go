package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/payments-api/payments/secretbox"
)

var keyA = bytes.Repeat([]byte{0xa5}, secretbox.KeyBytes)

func box(tb testing.TB, key []byte) *secretbox.Box {
	tb.Helper()
	b, err := secretbox.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b := box(t, keyA)
	secret := []byte("sk_test_51Hx0123456789")
	ad := []byte("stripe/secret_key/ten_1")
	one, err := b.Seal(secret, ad)
	if err != nil {
		t.Fatal(err)
	}
	two, _ := b.Seal(secret, ad)
	if bytes.Equal(one, two) {
		t.Fatal("two seals of the same value are equal: the nonce is not fresh")
	}
	if bytes.Contains(one, secret) || len(one) != len(secret)+secretbox.OverheadBytes {
		t.Fatalf("sealed value %x", one)
	}
	got, err := b.Open(one, ad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := b.Open(one, []byte("stripe/secret_key/ten_2")); !errors.Is(err, secretbox.ErrCorrupt) {
		t.Fatalf("open with another tenant's additional data: %v", err)
	}
	for i := range one {
		bad := append([]byte(nil), one...)
		bad[i] ^= 0x01
		if _, err := b.Open(bad, ad); err == nil {
			t.Fatalf("a value with byte %d flipped opened", i)
		}
	}
	other := box(t, bytes.Repeat([]byte{0x5a}, secretbox.KeyBytes))
	if _, err := other.Open(one, ad); !errors.Is(err, secretbox.ErrWrongKey) {
		t.Fatalf("open under another key: %v", err)
	}
	if _, err := b.Open(one[:10], ad); !errors.Is(err, secretbox.ErrCorrupt) {
		t.Fatalf("open of a short value: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		hex.EncodeToString(keyA), strings.ToUpper(hex.EncodeToString(keyA)),
		base64.StdEncoding.EncodeToString(keyA), base64.RawURLEncoding.EncodeToString(keyA),
	} {
		k, err := secretbox.ParseKey(s)
		if err != nil || !bytes.Equal(k, keyA) {
			t.Errorf("ParseKey(%q) = %x, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(keyA[:31]), base64.StdEncoding.EncodeToString(append(keyA, 1)), strings.Repeat("z", 64)} {
		_, err := secretbox.ParseKey(s)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseKey's error echoes the input: %v", err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	b := box(f, keyA)
	sealed, _ := b.Seal([]byte("whsec_abc"), []byte("ad"))
	f.Add(sealed, []byte("ad"))
	f.Add([]byte{1, 2, 3}, []byte{})
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		if out, err := b.Open(sealed, ad); err == nil && !bytes.Equal(ad, []byte("ad")) {
			t.Fatalf("opened %q with additional data %q", out, ad)
		}
	})
}
