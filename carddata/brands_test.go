package carddata

import "testing"

func TestBrandTableInvariants(t *testing.T) {
	t.Parallel()
	valid := lengthsOf(WindowDigitsMin, PANDigitsMax)
	for i, b := range brands {
		if b.prefixLow > b.prefixHigh || b.prefixLow < 1000 || b.prefixHigh > 9999 {
			t.Errorf("brands[%d] has range %d-%d", i, b.prefixLow, b.prefixHigh)
		}
		if b.lengths == 0 || b.lengths&^valid != 0 {
			t.Errorf("brands[%d] has lengths %b outside %d-%d", i, b.lengths, WindowDigitsMin, PANDigitsMax)
		}
		// brandMatch stops at the first range that holds the prefix, so
		// the ranges must be sorted and must not overlap.
		if i > 0 && b.prefixLow <= brands[i-1].prefixHigh {
			t.Errorf("brands[%d] overlaps or precedes brands[%d]", i, i-1)
		}
	}
}

func TestLengthsOf(t *testing.T) {
	t.Parallel()
	if got, want := lengthsOf(16, 16), uint32(1<<16); got != want {
		t.Errorf("lengthsOf(16, 16) = %b, want %b", got, want)
	}
	if got, want := lengthsOf(14, 19), uint32(0b111111<<14); got != want {
		t.Errorf("lengthsOf(14, 19) = %b, want %b", got, want)
	}
}
