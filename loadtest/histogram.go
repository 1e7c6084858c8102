package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits gives 2^histSubBits buckets per power of two: a quantile is
// off by at most 1/64 (1.6%) of its value, like an HDR histogram with two
// significant digits.
const histSubBits = 6

// histBucketsMax covers 1 µs to 2^38 µs, far beyond any request timeout.
const histBucketsMax = (38 + 1) << histSubBits

// Histogram counts latencies in log-linear buckets of microseconds. It keeps
// no samples, so a long run at a high rate costs a fixed 20 KB. The zero
// value is empty and ready; it is not safe for concurrent use.
type Histogram struct {
	counts [histBucketsMax]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

// histIndex is the bucket of v microseconds: values below 2^histSubBits
// have a bucket each, above that each power of two is split in
// 2^histSubBits equal parts.
func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	exp := bits.Len64(v) - 1 - histSubBits
	i := (exp+1)<<histSubBits + int(v>>uint(exp)) - 1<<histSubBits
	return min(i, histBucketsMax-1)
}

// histUpper is the largest value in bucket i, so that quantiles never
// understate a latency.
func histUpper(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	exp := i>>histSubBits - 1
	mant := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	return (mant+1)<<uint(exp) - 1
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d/time.Microsecond))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average latency, exactly.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile is the latency below which a fraction q of the latencies fall,
// rounded up to its bucket's upper bound and never above Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(histUpper(i))*time.Microsecond, h.max)
		}
	}
	return h.max
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}
