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

func TestRingRotation(t *testing.T) {
	t.Parallel()
	keyB := bytes.Repeat([]byte{0x5a}, secretbox.KeyBytes)
	ad := []byte("webhook_endpoint.secret:ten_1")
	old := box(t, keyA)
	sealedOld, err := old.Seal([]byte("whsec_old"), ad)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewRing(keyB, keyA)
	if err != nil {
		t.Fatal(err)
	}
	if ring.KeyID() == old.KeyID() || len(ring.KeyID()) != 8 {
		t.Fatalf("key IDs %s and %s", ring.KeyID(), old.KeyID())
	}
	if got, err := ring.Open(sealedOld, ad); err != nil || string(got) != "whsec_old" {
		t.Fatalf("the ring does not open a value of its older key: %q %v", got, err)
	}
	if ring.Current(sealedOld) || !old.Current(sealedOld) {
		t.Fatal("Current misjudges a value of the older key")
	}
	sealedNew, err := ring.Seal([]byte("whsec_new"), ad)
	if err != nil || !ring.Current(sealedNew) {
		t.Fatalf("the ring does not seal under its current key: %v", err)
	}
	if _, err := old.Open(sealedNew, ad); !errors.Is(err, secretbox.ErrWrongKey) {
		t.Fatalf("the old key alone opens a value of the new key: %v", err)
	}

	resealed, changed, err := ring.Reseal(sealedOld, ad)
	if err != nil || !changed || !ring.Current(resealed) {
		t.Fatalf("reseal: changed=%v current=%v %v", changed, ring.Current(resealed), err)
	}
	again, changed, err := ring.Reseal(resealed, ad)
	if err != nil || changed || !bytes.Equal(again, resealed) {
		t.Fatalf("reseal of a current value: changed=%v %v", changed, err)
	}
	if _, _, err := ring.Reseal(sealedOld, []byte("webhook_endpoint.secret:ten_2")); !errors.Is(err, secretbox.ErrCorrupt) {
		t.Fatalf("reseal with another row's additional data: %v", err)
	}
	// With the old key removed, the resealed value still opens, and the
	// old one no longer does.
	onlyNew := box(t, keyB)
	if got, err := onlyNew.Open(resealed, ad); err != nil || string(got) != "whsec_old" {
		t.Fatalf("resealed value under the new key alone: %q %v", got, err)
	}
	if _, err := onlyNew.Open(sealedOld, ad); !errors.Is(err, secretbox.ErrWrongKey) {
		t.Fatalf("a value of a removed key: %v", err)
	}
	if _, _, err := onlyNew.Reseal(sealedOld, ad); !errors.Is(err, secretbox.ErrWrongKey) {
		t.Fatalf("reseal of a value of a removed key: %v", err)
	}
}

func TestRingRefusesBadKeys(t *testing.T) {
	t.Parallel()
	keyB := bytes.Repeat([]byte{0x5a}, secretbox.KeyBytes)
	if _, err := secretbox.NewRing(keyA, keyB, keyA); err == nil {
		t.Error("a ring with the current key among the older ones")
	}
	if _, err := secretbox.NewRing(keyA, keyB, keyB); err == nil {
		t.Error("a ring with an older key twice")
	}
	if _, err := secretbox.NewRing(keyA, keyB[:31]); err == nil {
		t.Error("a ring with a short older key")
	}
	many := make([][]byte, secretbox.KeysMax)
	for i := range many {
		many[i] = bytes.Repeat([]byte{byte(i + 1)}, secretbox.KeyBytes)
	}
	if _, err := secretbox.NewRing(keyA, many[:secretbox.KeysMax-1]...); err != nil {
		t.Errorf("a ring of %d keys: %v", secretbox.KeysMax, err)
	}
	if _, err := secretbox.NewRing(keyA, many...); err == nil {
		t.Errorf("a ring of %d keys", secretbox.KeysMax+1)
	}
}
