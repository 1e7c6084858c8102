package carddata_test

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/payments-api/payments/carddata"
)

// Test card numbers published by the processors; all pass the Luhn check.
var testCards = []string{
	"4242424242424242",    // Visa
	"4000056655665556",    // Visa debit
	"5555555555554444",    // Mastercard
	"2223003122003222",    // Mastercard 2-series
	"5200828282828210",    // Mastercard debit
	"378282246310005",     // American Express
	"371449635398431",     // American Express
	"6011111111111117",    // Discover
	"6011000990139424",    // Discover
	"3056930009020004",    // Diners Club
	"36227206271667",      // Diners Club, 14 digits
	"3566002020360505",    // JCB
	"6200000000000005",    // UnionPay
	"6205500000000000004", // UnionPay, 19 digits
}

func TestContainsCards(t *testing.T) {
	t.Parallel()
	for _, card := range testCards {
		spaced := group(card, " ")
		dashed := group(card, "-")
		bodies := []string{
			card,
			spaced,
			dashed,
			`{"card":"` + card + `"}`,
			`{"metadata":{"note":"card ` + spaced + ` exp 12/30"}}`,
			`{"amount":` + card + `}`,
			`{"n":` + card + `.5}`,
			"x" + card + "x",
			"order" + card,
			"\t" + dashed + "\n",
			card + " 12 30 123",                // expiry and security code glued on
			"7" + card,                         // a stray digit before
			card + "9",                         // a stray digit after
			"1234567890" + card + "0987654321", // inside a long numeric ID
			"00-" + dashed,
		}
		for _, body := range bodies {
			if !carddata.Contains([]byte(body)) {
				t.Errorf("Contains(%q) = false, want true", body)
			}
		}
	}
}

// group splits a card number into groups of four digits joined by sep.
func group(card, sep string) string {
	var parts []string
	for len(card) > 4 {
		parts = append(parts, card[:4])
		card = card[4:]
	}
	return strings.Join(append(parts, card), sep)
}

func TestContainsShortVisa(t *testing.T) {
	t.Parallel()
	// A 13-digit Visa number is found when it stands alone (rule 1) but not
	// inside a longer run: the brand table leaves the obsolete length out.
	const card = "4222222222222"
	for _, body := range []string{card, "4222 2222 2222 2", `{"n":"` + card + `"}`} {
		if !carddata.Contains([]byte(body)) {
			t.Errorf("Contains(%q) = false, want true", body)
		}
	}
	if body := "1" + card; carddata.Contains([]byte(body)) {
		t.Errorf("Contains(%q) = true, want false", body)
	}
}

func TestContainsNegatives(t *testing.T) {
	t.Parallel()
	bodies := []string{
		"",
		"4",
		"42424242424",                  // 11 digits
		"4242 4242 424",                // 11 digits, spaced
		"4242424242424241",             // Luhn-invalid
		"4242 4242 4242 4241",          // Luhn-invalid, spaced
		"42424242  42424242",           // two spaces break the run
		"42424242--42424242",           // two dashes break the run
		"42424242 -42424242",           // space then dash breaks the run
		"42424242- 42424242",           // dash then space breaks the run
		"4242 4242  4242 4242",         // the same, with groups
		"4242.4242.4242.4242",          // dots are not separators
		"4242/4242/4242/4242",          // nor slashes
		"4242_4242_4242_4242",          // nor underscores
		"4242\t4242\t4242\t4242",       // nor tabs
		"(415) 555-0123",               // phone number
		"+1 415-555-0123",              // 11 digits
		"+1.415.555.0123 ext 4242",     // other separators
		"+44 (0)20 7946 0958",          // parentheses break it
		"000000000000",                 // Luhn-valid but starts with 0
		"0000000000000000000000000000", // long zero padding
		"1700000000000",                // millisecond timestamp, Luhn-valid, starts with 1
		"1234567890123456789",          // 19 digits starting with 1
		"9999999999999995",             // Luhn-valid, starts with 9
		"2024-01-15T10:30:00Z",         // a date
		`{"amount":1000,"currency":"usd","metadata":{"order_id":"ord_2024_0001"}}`,
		"550e8400-e29b-41d4-a716-446655440000", // a UUID
		"4242424242424242"[:11],                // an 11-digit prefix of a card
	}
	for _, body := range bodies {
		if carddata.Contains([]byte(body)) {
			t.Errorf("Contains(%q) = true, want false", body)
		}
	}
}

func TestContainsStandaloneRun(t *testing.T) {
	t.Parallel()
	// Rule 1 accepts any length from 12 to 19 digits starting with 2 to 6,
	// even without a brand's prefix or length, such as this 12-digit number.
	twelve := withLuhnDigit("50000000000")
	if len(twelve) != 12 || !carddata.Contains([]byte(twelve)) {
		t.Errorf("Contains(%q) = false, want true", twelve)
	}
	// The same digits inside a longer run are not a brand-shaped window.
	if body := "1" + twelve + "1111111"; carddata.Contains([]byte(body)) {
		t.Errorf("Contains(%q) = true, want false", body)
	}
	// A Luhn-valid run of 20 digits is not a card number by rule 1.
	twenty := withLuhnDigit("9000000000000000000")
	if carddata.Contains([]byte(twenty)) {
		t.Errorf("Contains(%q) = true, want false", twenty)
	}
}

// withLuhnDigit appends the check digit that makes prefix pass the Luhn check.
func withLuhnDigit(prefix string) string {
	for d := range 10 {
		s := prefix + strconv.Itoa(d)
		if luhn(s) {
			return s
		}
	}
	panic("unreachable")
}

func luhn(digits string) bool {
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// containsReference is a direct, allocating transcription of the package
// documentation's rules, used to check Contains.
func containsReference(b []byte) bool {
	for _, run := range digitRuns(blankFractions(b)) {
		if len(run) >= 12 && len(run) <= 19 && run[0] >= '2' && run[0] <= '6' && luhn(run) {
			return true
		}
		for start := range len(run) {
			for l := 12; l <= 19 && start+l <= len(run); l++ {
				w := run[start : start+l]
				if brandReference(w) && luhn(w) {
					return true
				}
			}
		}
	}
	return false
}

// blankFractions returns b with the fraction and exponent of every number
// token outside strings replaced by 'x' bytes.
func blankFractions(b []byte) []byte {
	out := bytes.Clone(b)
	inString, escaped := false, false
	isNum := func(c byte) bool { return c >= '0' && c <= '9' || strings.IndexByte("-+.eE", c) >= 0 }
	isWord := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("._+-", c) >= 0
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString && (c >= '0' && c <= '9' || c == '-') && (i == 0 || !isWord(b[i-1])) {
			end := i
			for end < len(b) && isNum(b[end]) {
				end++
			}
			if at := bytes.IndexAny(b[i:end], ".eE"); at >= 0 {
				for j := i + at; j < end; j++ {
					out[j] = 'x'
				}
				i = end - 1
				continue
			}
		}
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		}
	}
	return out
}

// digitRuns splits b into digit runs, with separators removed.
func digitRuns(b []byte) []string {
	var runs []string
	var cur []byte
	isDigit := func(i int) bool { return i < len(b) && b[i] >= '0' && b[i] <= '9' }
	for i := 0; i < len(b); i++ {
		switch {
		case isDigit(i):
			cur = append(cur, b[i])
		case len(cur) > 0 && (b[i] == ' ' || b[i] == '-') && isDigit(i+1):
			// a single separator between two digits
		default:
			if len(cur) > 0 {
				runs = append(runs, string(cur))
				cur = nil
			}
		}
	}
	if len(cur) > 0 {
		runs = append(runs, string(cur))
	}
	return runs
}

func brandReference(w string) bool {
	l := len(w)
	in := func(lo, hi string) bool { p := w[:len(lo)]; return p >= lo && p <= hi }
	switch {
	case in("2200", "2204"), in("3528", "3589"), in("38", "39"), in("50", "50"),
		in("60", "60"), in("62", "62"), in("644", "659"):
		return l >= 16
	case in("2221", "2720"), in("51", "55"), in("636", "636"):
		return l == 16
	case in("300", "305"), in("36", "36"):
		return l >= 14
	case in("34", "34"), in("37", "37"):
		return l == 15
	case in("4", "4"):
		return l == 16 || l == 19
	}
	return false
}

// randomBody returns text rich in digits and separators, the inputs where
// the scanner's state matters.
func randomBody(rng *rand.Rand, n int) []byte {
	const alphabet = "0123456789012345678901234567890123456789 - x\"\\.e"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return b
}

func TestContainsMatchesReferenceProperty(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 100_000 {
		b := randomBody(rng, rng.IntN(60))
		if i%4 == 0 { // plant a card number, often enough to test positives
			card := testCards[rng.IntN(len(testCards))]
			at := rng.IntN(len(b) + 1)
			b = append(b[:at:at], append([]byte(card), b[at:]...)...)
		}
		if got, want := carddata.Contains(b), containsReference(b); got != want {
			t.Fatalf("Contains(%q) = %v, reference says %v", b, got, want)
		}
	}
}

// TestContainsCoordinates sends what GPS clients send: coordinates at full
// float precision, whose digits after the point once looked like cards.
func TestContainsCoordinates(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	refused := 0
	for range 10_000 {
		lat, lon := rng.Float64()*180-90, rng.Float64()*360-180
		body := `{"amount":2000,"currency":"usd","payment_method":"pm_card_visa","location":{"lat":` +
			strconv.FormatFloat(lat, 'f', -1, 64) + `,"lon":` + strconv.FormatFloat(lon, 'g', -1, 64) + `}}`
		if carddata.Contains([]byte(body)) {
			refused++
		}
	}
	if refused != 0 {
		t.Errorf("%d of 10000 bodies with precise coordinates refused, want 0", refused)
	}
}

func TestContainsJSONNumbers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		want bool
	}{
		{`{"lat":52.51234567891234}`, false},
		{`{"lat":-52.4242424242424242}`, false},
		{`{"lat":-4242424242424242.5}`, true}, // the integer part is still checked
		{`{"x":4242424242424242e0}`, true},
		{`{"x":1.4242424242424242E+3}`, false},
		{`[0.5,4242424242424242]`, true},                // an integer of 16 digits
		{`{"n":378282246310005}`, true},                 // 15 digits
		{`{"n":"52.4242424242424242"}`, true},           // inside a string
		{`{"n":"a\"b", "c":4242424242424242}`, true},    // an escaped quote does not end the string
		{`{"n":"x\\\\","c":1.4242424242424242}`, false}, // an escaped backslash ends no string
		{`{"n":"4242424242424242.5"}`, true},
	} {
		if got := carddata.Contains([]byte(tt.body)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

// TestFalsePositiveRate measures how often random numeric IDs are refused;
// it fails when a change makes the rates the package doc states untrue.
func TestFalsePositiveRate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tt := range []struct {
		digits  int
		rateMax float64
	}{
		{digits: 13, rateMax: 0.08}, // about 5.5%
		{digits: 16, rateMax: 0.09}, // about 7%
		{digits: 20, rateMax: 0.30}, // about 24%
	} {
		const samples = 20_000
		hits := 0
		buf := make([]byte, tt.digits)
		for range samples {
			buf[0] = byte('1' + rng.IntN(9))
			for i := 1; i < len(buf); i++ {
				buf[i] = byte('0' + rng.IntN(10))
			}
			if carddata.Contains(buf) {
				hits++
			}
		}
		rate := float64(hits) / samples
		t.Logf("random %d-digit IDs refused: %.2f%%", tt.digits, 100*rate)
		if rate > tt.rateMax {
			t.Errorf("random %d-digit IDs refused at %.3f, above %.3f", tt.digits, rate, tt.rateMax)
		}
	}
}

func FuzzContains(f *testing.F) {
	f.Add([]byte("4242 4242 4242 4242"), uint(0))
	f.Add([]byte(`{"metadata":{"k":"v"}}`), uint(14))
	f.Add([]byte("12-34 56-78 90 1"), uint(3))
	f.Add([]byte("9999999999999999999999999"), uint(7))
	f.Add([]byte{}, uint(0))
	const card = "4242424242424242"
	f.Fuzz(func(t *testing.T, b []byte, at uint) {
		got := carddata.Contains(b) // must not panic
		if want := containsReference(b); got != want {
			t.Fatalf("Contains(%q) = %v, reference says %v", b, got, want)
		}
		// The card is planted as a string: a bare one glued to a fraction
		// ("0.4242...") is part of a JSON number, which is never a card.
		pos := int(at % uint(len(b)+1))
		planted := make([]byte, 0, len(b)+len(card)+2)
		planted = append(append(append(planted, b[:pos]...), `"`+card+`"`...), b[pos:]...)
		if !carddata.Contains(planted) {
			t.Fatalf("Contains(%q) = false after planting a test card at %d", planted, pos)
		}
	})
}

// TestContainsDoesNotAllocate cannot call t.Parallel: testing.AllocsPerRun
// refuses to run in parallel tests, whose allocations it would count.
func TestContainsDoesNotAllocate(t *testing.T) {
	body := benchBody()
	if n := testing.AllocsPerRun(10, func() { carddata.Contains(body) }); n != 0 {
		t.Errorf("Contains allocates %v times per call, want 0", n)
	}
}

// benchBody is a 64 KiB JSON body without card numbers but with many digits.
func benchBody() []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"items":[`)
	for i := 0; buf.Len() < 64<<10; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":"item_` + strconv.Itoa(i) + `","amount":` + strconv.Itoa(i*137) +
			`,"created":1700000000000,"phone":"+1 415-555-0123","note":"2024-01-15 order 17 of 25"}`)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

func BenchmarkContains(b *testing.B) {
	bodies := map[string][]byte{
		"json64k":   benchBody(),
		"digits64k": bytes.Repeat([]byte("1"), 64<<10),
		"text64k":   bytes.Repeat([]byte("lorem ipsum dolor sit amet "), (64<<10)/27),
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				carddata.Contains(body)
			}
		})
	}
}
