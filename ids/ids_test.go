package ids

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRoundTripAndOrder(t *testing.T) {
	t.Parallel()
	prev := ""
	for i := 0; i < 1000; i++ {
		id := New()
		s := Format(PrefixPayment, id)
		got, ok := Parse(PrefixPayment, s)
		if !ok || got != id {
			t.Fatalf("round trip of %s failed", s)
		}
		if s <= prev && s[:14] != prev[:14] {
			t.Fatalf("ids not time ordered: %s after %s", s, prev)
		}
		prev = s
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good := Format(PrefixPayment, New())
	for _, s := range []string{
		"", "pay_", good[:len(good)-1], good + "0", "re_" + good[4:],
		"pay_" + "ABCDEFGHJKMNPQRSTVWXYZ0123", "pay_uuuuuuuuuuuuuuuuuuuuuuuuuu",
		good[:len(good)-1] + "z", // non-canonical trailing bits
	} {
		if s == good {
			continue
		}
		if _, ok := Parse(PrefixPayment, s); ok {
			t.Errorf("Parse accepted %q", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Format(PrefixPayment, New()))
	f.Add("pay_0000000000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := Parse(PrefixPayment, s)
		if ok && Format(PrefixPayment, id) != s {
			t.Fatalf("accepted non-canonical %q", s)
		}
	})
}

// TestBeforeBoundsIDsByTime: IDs minted before a millisecond sort below
// Before of it, and IDs minted at or after it sort above.
func TestBeforeBoundsIDsByTime(t *testing.T) {
	t.Parallel()
	earlier := New()
	time.Sleep(2 * time.Millisecond)
	bound := Before(time.Now())
	time.Sleep(2 * time.Millisecond)
	later := New()
	if bytes.Compare(earlier[:], bound[:]) >= 0 || bytes.Compare(bound[:], later[:]) >= 0 {
		t.Fatalf("want %s < %s < %s", earlier, bound, later)
	}
	if bound.Version() != 7 || bound.Variant() != uuid.RFC4122 {
		t.Fatalf("bound %s is not a UUIDv7", bound)
	}
	if got := Before(time.UnixMilli(0x0123456789ab)); got.String()[:13] != "01234567-89ab" {
		t.Fatalf("Before puts the milliseconds in the wrong place: %s", got)
	}
}
