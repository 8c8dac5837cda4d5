package bench

import (
	"math"
	"math/bits"
)

// histSubBits sets a Histogram's precision: each power-of-two range of
// values is split into 2^(histSubBits-1) equal buckets, so a recorded value
// is known to within 1/2^(histSubBits-1) (about 0.2%) of itself, the way
// HdrHistogram with three significant digits does.
const histSubBits = 10

// histHalf is the number of buckets per power of two above the linear range.
const histHalf = 1 << (histSubBits - 1)

// Histogram counts non-negative integer values (latencies in nanoseconds)
// in log-linear buckets, in the manner of HdrHistogram: values below
// 2^histSubBits are kept exactly, larger ones with a relative error below
// 0.2%. Memory grows with the largest value, not with the number of values
// (about 8 KiB per power of two). The zero value is an empty histogram.
//
// A Histogram is not safe for concurrent use.
type Histogram struct {
	counts   []uint64
	total    uint64
	min, max int64
	sum      float64
}

// histIndex is the bucket of v ≥ 0.
func histIndex(v int64) int {
	e := bits.Len64(uint64(v)) - histSubBits
	if e <= 0 {
		return int(v)
	}
	return e*histHalf + int(v>>e)
}

// histHighest is the largest value that falls into bucket i.
func histHighest(i int) int64 {
	e := i/histHalf - 1
	if e <= 0 {
		return int64(i)
	}
	sub := int64(i - e*histHalf)
	return sub<<e + (1<<e - 1)
}

// Record adds v; a negative v counts as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	i := histIndex(v)
	if i >= len(h.counts) {
		n := make([]uint64, i+1+histHalf)
		copy(n, h.counts)
		h.counts = n
	}
	h.counts[i]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

// Merge adds every value counted by o.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		n := make([]uint64, len(o.counts))
		copy(n, h.counts)
		h.counts = n
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.total += o.total
	h.sum += o.sum
}

// Reset empties h, keeping its memory.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.min, h.max, h.sum = 0, 0, 0, 0
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Min is the smallest recorded value (0 when empty).
func (h *Histogram) Min() int64 { return h.min }

// Max is the largest recorded value (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean is the mean of the recorded values (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value below or at which the fraction q of the
// recorded values lie: the highest value of the bucket that holds the
// value of rank ceil(q·Count), clamped to [Min, Max]. Quantile(0.5) is the
// median, Quantile(1) the maximum; an empty histogram returns 0.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(histHighest(i), h.min), h.max)
		}
	}
	return h.max
}
