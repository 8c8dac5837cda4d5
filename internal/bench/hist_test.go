package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// within reports whether got is within rel (a fraction) of want.
func within(got, want int64, rel float64) bool {
	return math.Abs(float64(got-want)) <= rel*math.Abs(float64(want))
}

func TestHistogramQuantilesKnownInputs(t *testing.T) {
	uniform := func() *Histogram {
		var h Histogram
		for v := int64(1); v <= 10000; v++ {
			h.Record(v)
		}
		return &h
	}
	// HdrHistogram's classic example: 10,000 values of 1ms and one stall
	// of 100s (in microseconds).
	stall := func() *Histogram {
		var h Histogram
		for range 10000 {
			h.Record(1000)
		}
		h.Record(100_000_000)
		return &h
	}
	small := func() *Histogram {
		var h Histogram
		for _, v := range []int64{5, 1, 4, 2, 3} {
			h.Record(v)
		}
		return &h
	}
	tests := []struct {
		name string
		h    *Histogram
		q    float64
		want int64
		rel  float64
	}{
		{"uniform p0", uniform(), 0, 1, 0},
		{"uniform p50", uniform(), 0.50, 5000, 0.002},
		{"uniform p95", uniform(), 0.95, 9500, 0.002},
		{"uniform p99", uniform(), 0.99, 9900, 0.002},
		{"uniform p99.9", uniform(), 0.999, 9990, 0.002},
		{"uniform p100", uniform(), 1, 10000, 0},
		{"stall p50", stall(), 0.50, 1000, 0},
		{"stall p99.99", stall(), 0.9999, 1000, 0},
		{"stall p99.999", stall(), 0.99999, 100_000_000, 0},
		{"exact small values p20", small(), 0.2, 1, 0},
		{"exact small values p50", small(), 0.5, 3, 0},
		{"exact small values p80", small(), 0.8, 4, 0},
		{"exact small values p100", small(), 1, 5, 0},
		{"empty", &Histogram{}, 0.99, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.h.Quantile(tt.q); !within(got, tt.want, tt.rel) {
				t.Errorf("Quantile(%v) = %d, want %d (±%.1f%%)", tt.q, got, tt.want, tt.rel*100)
			}
		})
	}
}

func TestHistogramStats(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	h.Record(-7) // counts as 0
	if h.Count() != 101 || h.Min() != 0 || h.Max() != 100 {
		t.Fatalf("count, min, max = %d, %d, %d; want 101, 0, 100", h.Count(), h.Min(), h.Max())
	}
	if want := 5050.0 / 101; math.Abs(h.Mean()-want) > 1e-9 {
		t.Fatalf("mean = %v, want %v", h.Mean(), want)
	}
	h.Reset()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Mean() != 0 {
		t.Fatalf("after Reset: count %d, p50 %d, mean %v", h.Count(), h.Quantile(0.5), h.Mean())
	}
}

// TestHistogramAgainstSort checks every quantile of random latencies, in
// nanoseconds from 10µs to 10s, against the exact answer of a sorted copy.
func TestHistogramAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 50000)
	for i := range vals {
		vals[i] = int64(math.Exp(r.Float64()*math.Log(1e6)) * 1e4)
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1} {
		rank := max(int(math.Ceil(q*float64(len(vals)))), 1)
		want := vals[rank-1]
		if got := h.Quantile(q); !within(got, want, 1.0/histHalf) {
			t.Errorf("Quantile(%v) = %d, want %d within %.2f%%", q, got, want, 100.0/histHalf)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for v := int64(1); v <= 1000; v++ {
		all.Record(v * 1000)
		if v%2 == 0 {
			a.Record(v * 1000)
		} else {
			b.Record(v * 1000)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged stats differ: %+v vs %+v", m, all)
	}
	for _, q := range []float64{0.1, 0.5, 0.99, 1} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %d, direct %d", q, m.Quantile(q), all.Quantile(q))
		}
	}
}

func TestHistogramBucketsRoundTrip(t *testing.T) {
	// Every value maps to a bucket whose highest value is at least the
	// value and within the precision bound, and buckets are contiguous.
	prev := -1
	for _, v := range []int64{0, 1, 511, 512, 1023, 1024, 1025, 2047, 2048, 1 << 20, 1<<20 + 1, 1<<40 - 1, 1 << 40, math.MaxInt64 / 2} {
		i := histIndex(v)
		hi := histHighest(i)
		if hi < v || float64(hi-v) > float64(v)/histHalf {
			t.Errorf("value %d: bucket %d highest %d", v, i, hi)
		}
		if i < prev {
			t.Errorf("value %d: bucket %d before previous %d", v, i, prev)
		}
		prev = i
	}
}
