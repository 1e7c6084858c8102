package webhooks

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_764_090_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	s1, s2 := NewSecret(), NewSecret()
	both := Sign(now, body, s1, s2)
	for name, tt := range map[string]struct {
		header string
		body   []byte
		secret Secret
		now    time.Time
		want   error
	}{
		"first secret":            {both, body, s1, now, nil},
		"second secret":           {both, body, s2, now, nil},
		"within tolerance":        {both, body, s1, now.Add(ToleranceDefault), nil},
		"clock behind the sender": {both, body, s1, now.Add(-ToleranceDefault), nil},
		"spaces":                  {strings.ReplaceAll(both, ",", ", "), body, s1, now, nil},
		"unknown scheme ignored":  {both + ",v0=abc", body, s1, now, nil},
		"another secret":          {both, body, NewSecret(), now, ErrSignatureMismatch},
		"other body":              {both, []byte(`{"id":"evt_2"}`), s1, now, ErrSignatureMismatch},
		"too old":                 {both, body, s1, now.Add(ToleranceDefault + time.Second), ErrSignatureTooOld},
		"from the future":         {both, body, s1, now.Add(-ToleranceDefault - time.Second), ErrSignatureTooOld},
		"empty":                   {"", body, s1, now, ErrSignatureMalformed},
		"no timestamp":            {strings.SplitN(both, ",", 2)[1], body, s1, now, ErrSignatureMissing},
		"no signature":            {"t=1764090000", body, s1, now, ErrSignatureMissing},
		"two timestamps":          {"t=1764090000," + both, body, s1, now, ErrSignatureMalformed},
		"short mac":               {"t=1764090000,v1=abcd", body, s1, now, ErrSignatureMalformed},
		"not hex":                 {"t=1764090000,v1=" + strings.Repeat("zz", 32), body, s1, now, ErrSignatureMalformed},
		"signed timestamp":        {"t=+1764090000" + both[12:], body, s1, now, ErrSignatureMalformed},
		"leading zero":            {"t=01764090000" + both[12:], body, s1, now, ErrSignatureMalformed},
		"negative":                {"t=-1" + both[12:], body, s1, now, ErrSignatureMalformed},
		"huge":                    {"t=99999999999999999999" + both[12:], body, s1, now, ErrSignatureMalformed},
		"oversized":               {both + strings.Repeat(",v0=x", SignatureHeaderBytesMax), body, s1, now, ErrSignatureMalformed},
	} {
		at, err := Verify(tt.header, tt.body, tt.secret, 0, tt.now)
		if !errors.Is(err, tt.want) || (err == nil && !at.Equal(now)) {
			t.Errorf("%s: Verify = %v, %v; want %v", name, at, err, tt.want)
		}
	}
}

// FuzzVerify: whatever the header, Verify never panics and accepts only a
// header that carries a valid signature of the body; a header Sign made
// always verifies, and never for another body.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_764_090_000, 0)
	secret := Secret("whsec_fuzz")
	f.Add(Sign(now, []byte(`{}`), secret), []byte(`{}`), int64(0))
	f.Add("t=1764090000,v1=00", []byte(`{}`), int64(3))
	f.Add("t=,v1=", []byte{}, int64(-400))
	f.Add(",,,=,t=1", []byte("x"), int64(1<<40))
	f.Fuzz(func(t *testing.T, header string, body []byte, skew int64) {
		at, err := Verify(header, body, secret, 0, now)
		if err == nil {
			if at.Unix() < now.Unix()-300 || at.Unix() > now.Unix()+300 {
				t.Fatalf("accepted a timestamp %v out of tolerance", at)
			}
			if want := Sign(at, body, secret); !strings.Contains(strings.ToLower(header), want[strings.Index(want, "v1="):]) {
				t.Fatalf("accepted %q without the body's signature", header)
			}
		}
		sent := now.Add(time.Duration(skew%600) * time.Second)
		h := Sign(sent, body, secret)
		got, err := Verify(h, body, secret, 0, now)
		inTolerance := skew%600 >= -300 && skew%600 <= 300
		if inTolerance && (err != nil || !got.Equal(sent)) {
			t.Fatalf("Sign's own header at skew %ds: %v", skew%600, err)
		}
		if !inTolerance && !errors.Is(err, ErrSignatureTooOld) {
			t.Fatalf("Sign's header at skew %ds: %v, want too old", skew%600, err)
		}
		if inTolerance {
			if _, err := Verify(h, append(body, 'x'), secret, 0, now); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("another body verified: %v", err)
			}
		}
	})
}
