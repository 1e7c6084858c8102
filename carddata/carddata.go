// Package carddata detects raw card numbers (PANs) in request bodies, so that
// the API can refuse them. The service never receives, stores or logs card
// data; clients send processor tokens instead. Detection only ever answers
// yes or no: the matched digits are not returned, logged or kept.
//
// # What counts as a card number
//
// The body is read as bytes, without decoding JSON, so numbers are found
// inside strings, metadata values, keys and bare JSON numbers alike. A digit
// run is a maximal sequence of ASCII digits in which consecutive digits may
// be separated by one space or one dash ("4242 4242 4242 4242",
// "4242-4242-4242-4242"). Two separators in a row, or any other byte, end the
// run. A run reports a card number when either
//
//  1. the whole run has RunDigitsMin to PANDigitsMax digits, starts with 2,
//     3, 4, 5 or 6 and passes the Luhn check; or
//  2. some contiguous window of its digits passes the Luhn check and has the
//     prefix and length of a card brand in the table brands: 16-digit Visa
//     and Mastercard numbers, 15-digit American Express numbers, and so on.
//
// Why these rules: the Luhn check alone lets one random number in ten
// through, so every extra window checked is an extra chance of refusing a
// harmless request. Rule 1 keeps a stand-alone run as suspect as possible
// but ignores runs starting with 0, 1, 7, 8 or 9: the payment brands'
// numbers start with 2 to 6, while zero-padded IDs, millisecond timestamps
// and snowflake IDs (13 to 19 digits starting with 1) are common in
// metadata. Rule 2 finds a card number glued to other digits
// ("4242424242424242 12 30 123" with expiry and security code, a number
// pasted into a longer ID, a stray digit typed before it) wherever it
// starts. That costs false positives on long numeric IDs, which the brand
// table keeps down: about 7% of random 16-digit IDs starting with 1 to 9 and
// about a quarter of random 20-digit IDs are refused, against nearly three
// quarters of them with the Luhn check alone on every window of 13 to 19
// digits starting with 3 to 6. Missing a card number puts the service in
// scope of card-data rules; a refused ID only costs the client a
// reformatting, since dots, slashes, letters or a double space break a run.
//
// The digits of the fraction and exponent of a JSON number outside any
// string ("52.51234567891234", "1.5e300") are never a card number: they are
// skipped, and the point ends the integer part's run, which is still
// checked. Coordinates written at full float precision carry long digit
// runs after the point, and no card number is written as a fraction.
// The scanner knows strings only well enough for that: a
// double quote not escaped by a backslash opens or closes one. Integers of
// any length, and every digit inside strings, are still checked.
//
// Digits written as JSON escapes ("\u0034") or in other scripts are not
// decoded; the check guards against mistakes, not against evasion.
package carddata

// Digit-count limits of the rules in the package documentation.
const (
	// RunDigitsMin is the fewest digits a stand-alone run needs to count.
	RunDigitsMin = 12
	// WindowDigitsMin is the fewest digits of a brand number that rule 2
	// finds inside a run (Diners Club, 14).
	WindowDigitsMin = 14
	// PANDigitsMax is the most digits a card number has.
	PANDigitsMax = 19
)

// luhnDoubled maps a digit to the digit sum of its double, as the Luhn check
// does for every second digit from the right.
var luhnDoubled = [10]uint8{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// Contains reports whether b holds a card number by the rules in the
// package documentation. It runs in time linear in len(b), reads each byte
// once and does not allocate.
func Contains(b []byte) bool {
	// Every window ends at the newest digit and is at most PANDigitsMax
	// long, so the ring of the run's latest digits is all the state needed.
	var ring digitRing
	n := 0           // digits in the current run
	sep := false     // one separator has followed the run's last digit
	wholeOK := false // the run so far is a whole-run match (rule 1)
	inString := false
	escapedAt := -1            // the index of the byte a backslash escapes
	skipFrom, skipTo := -1, -1 // the fraction and exponent of a JSON number
	for i := 0; i < len(b); i++ {
		c := b[i]
		if d := c - '0'; d <= 9 {
			if !inString && (i == 0 || !numberByte(b[i-1])) {
				skipFrom, skipTo = numberToken(b, i)
			}
			j := n % PANDigitsMax
			ring[j], ring[j+PANDigitsMax] = d, d
			n++
			sep = false
			if n >= RunDigitsMin && windowMatch(&ring, n, &wholeOK) {
				return true
			}
			continue
		}
		// Bytes other than digits: the byte-wise string state, the start
		// of a negative number, and the end of a run.
		switch {
		case i == skipFrom:
			// The point or exponent ends the integer part's run; the
			// rest of the number is skipped.
			if wholeOK {
				return true
			}
			n, sep, wholeOK = 0, false, false
			i = skipTo - 1
			continue
		case c == '"':
			if i != escapedAt {
				inString = !inString
			}
		case c == '\\':
			if inString && i != escapedAt {
				escapedAt = i + 1
			}
		case c == '-':
			if !inString && (i == 0 || !numberByte(b[i-1])) {
				skipFrom, skipTo = numberToken(b, i)
			}
		}
		if n == 0 {
			continue
		}
		if (c == ' ' || c == '-') && !sep {
			sep = true
			continue
		}
		// The run ends here.
		if wholeOK {
			return true
		}
		n, sep, wholeOK = 0, false, false
	}
	return wholeOK
}

// numberByte reports whether c may be part of a JSON number token or of a
// word that a number cannot start inside.
func numberByte(c byte) bool {
	return c-'0' <= 9 || c == '.' || c == '+' || c == '-' || c == '_' || (c|0x20)-'a' < 26
}

// numberToken looks at the number-like token starting at i (digits, signs,
// points and exponent letters). If it has a fraction or an exponent, it
// returns where they start and where the token ends; else -1, -1.
func numberToken(b []byte, i int) (fracAt, end int) {
	fracAt = -1
	for end = i; end < len(b); end++ {
		c := b[end]
		if c-'0' <= 9 || c == '-' || c == '+' {
			continue
		}
		if c != '.' && c != 'e' && c != 'E' {
			break
		}
		if fracAt < 0 {
			fracAt = end
		}
	}
	if fracAt < 0 {
		return -1, -1
	}
	return fracAt, end
}

// digitRing holds the most recent PANDigitsMax digits of a run. Every digit
// is stored twice, at its ring position and PANDigitsMax further, so that
// the newest digits always form one contiguous slice: no window ever wraps.
type digitRing [2 * PANDigitsMax]uint8

// windowMatch checks every window ending at the newest digit of a run of n
// digits (n >= RunDigitsMin) against rule 2, and records in wholeOK whether
// the whole run satisfies rule 1, which can only be decided when the run
// ends. The Luhn sums of all windows are built in one pass from the right,
// because a digit's doubling depends only on its distance from the end.
func windowMatch(ring *digitRing, n int, wholeOK *bool) bool {
	end := (n-1)%PANDigitsMax + PANDigitsMax + 1
	w := ring[end-min(n, PANDigitsMax) : end]
	sum := 0
	for l := 1; l <= len(w); l++ {
		d := w[len(w)-l]
		if l%2 == 0 {
			sum += int(luhnDoubled[d])
		} else {
			sum += int(d)
		}
		if l < WindowDigitsMin || sum%10 != 0 {
			continue
		}
		p := w[len(w)-l:]
		if brandMatch(int(p[0])*1000+int(p[1])*100+int(p[2])*10+int(p[3]), l) {
			return true
		}
	}
	*wholeOK = n <= PANDigitsMax && sum%10 == 0 && w[0] >= 2 && w[0] <= 6
	return false
}

// brand is one row of the table of card brands used by rule 2: a range of
// four-digit prefixes and the set of lengths its numbers have, as a bit
// mask with bit L set for length L.
type brand struct {
	prefixLow, prefixHigh int
	lengths               uint32
}

// lengthsOf returns the bit mask of the lengths lo to hi inclusive.
func lengthsOf(lo, hi int) uint32 {
	return (1<<(hi+1) - 1) &^ (1<<lo - 1)
}

// brands lists the issuer ranges of the card brands rule 2 looks for. It is
// deliberately narrower than every range ever issued: each extra range is a
// chance of refusing a harmless long ID. Numbers outside it are still found
// when they stand alone (rule 1). Visa's old 13-digit numbers are left out
// for the same reason.
var brands = [...]brand{
	{2200, 2204, lengthsOf(16, 19)},         // Mir
	{2221, 2720, lengthsOf(16, 16)},         // Mastercard 2-series
	{3000, 3059, lengthsOf(14, 19)},         // Diners Club International
	{3400, 3499, lengthsOf(15, 15)},         // American Express
	{3528, 3589, lengthsOf(16, 19)},         // JCB
	{3600, 3699, lengthsOf(14, 19)},         // Diners Club
	{3700, 3799, lengthsOf(15, 15)},         // American Express
	{3800, 3999, lengthsOf(16, 19)},         // Diners Club
	{4000, 4999, lengthsOf(16, 16) | 1<<19}, // Visa
	{5000, 5099, lengthsOf(16, 19)},         // Maestro, Verve, Elo, Dankort
	{5100, 5599, lengthsOf(16, 16)},         // Mastercard
	{6000, 6099, lengthsOf(16, 19)},         // Discover 6011, RuPay, Hipercard
	{6200, 6299, lengthsOf(16, 19)},         // UnionPay
	{6360, 6369, lengthsOf(16, 16)},         // Elo, InterPayment
	{6440, 6599, lengthsOf(16, 19)},         // Discover, RuPay, Elo
}

// brandMatch reports whether a number of length digits whose first four
// digits are prefix has the prefix and length of a card brand (rule 2).
func brandMatch(prefix, length int) bool {
	for _, b := range brands {
		if prefix < b.prefixLow {
			return false // the table is sorted
		}
		if prefix <= b.prefixHigh {
			return b.lengths&(1<<length) != 0
		}
	}
	return false
}
