package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// headersOf parses the batches of b and fails the test if they are bad.
func headersOf(t *testing.T, b []byte) []segment.BatchHeader {
	t.Helper()
	hs, err := segment.SplitBatches(b)
	if err != nil {
		t.Fatalf("returned batches: %v", err)
	}
	return hs
}

func TestRecentBatches(t *testing.T) {
	key := meta.PartitionID{TopicID: "t", Partition: 0}
	r := newRecentBatches(1 << 20)

	// Nothing is kept for a partition without readers at its head.
	r.add(key, 3, 0, 1, batch(t, 2, 0))
	if _, ok := r.read(key, 0, 100, 1<<20); ok {
		t.Fatal("kept batches of a partition nobody reads at its head")
	}
	r.watch(key)

	// Acknowledgements out of order: 4..6 before 0..3 (two batches).
	r.add(key, 3, 4, 6, batch(t, 3, 40))
	r.add(key, 3, 0, 3, concat([][]byte{batch(t, 1, 0), batch(t, 3, 10)}))
	got, ok := r.read(key, 0, 7, 1<<20)
	if !ok {
		t.Fatal("no batches at offset 0")
	}
	hs := headersOf(t, got)
	if bases := []int64{hs[0].BaseOffset, hs[1].BaseOffset, hs[2].BaseOffset}; len(hs) != 3 || !slices.Equal(bases, []int64{0, 1, 4}) {
		t.Fatalf("batches at %v, want [0 1 4]", bases)
	}
	for _, h := range hs {
		if h.PartitionLeaderEpoch != 3 {
			t.Fatalf("batch at %d has leader epoch %d, want the owner's 3", h.BaseOffset, h.PartitionLeaderEpoch)
		}
	}

	tests := []struct {
		name     string
		off, hw  int64
		maxBytes int
		want     []int64 // base offsets; nil: not served
	}{
		{"inside a batch", 2, 7, 1 << 20, []int64{1, 4}},
		{"never at or past the high watermark", 0, 6, 1 << 20, []int64{0, 1}},
		{"the first batch whole within any budget", 1, 7, 1, []int64{1}},
		{"budget", 0, 7, len(batch(t, 1, 0)) + len(batch(t, 3, 10)), []int64{0, 1}},
		{"past what is kept", 7, 9, 1 << 20, nil},
		{"holding off needs the high watermark past it", 4, 5, 1 << 20, nil},
	}
	for _, tc := range tests {
		got, ok := r.read(key, tc.off, tc.hw, tc.maxBytes)
		var bases []int64
		if ok {
			for _, h := range headersOf(t, got) {
				bases = append(bases, h.BaseOffset)
			}
		}
		if !slices.Equal(bases, tc.want) {
			t.Errorf("%s: read(%d, hw %d, %d bytes) = %v, want %v", tc.name, tc.off, tc.hw, tc.maxBytes, bases, tc.want)
		}
	}

	// A gap (offsets produced through another proxy) ends a read; the
	// batches after it are served from their own offsets on.
	r.add(key, 3, 9, 9, batch(t, 1, 90))
	if got, _ := r.read(key, 4, 10, 1<<20); len(headersOf(t, got)) != 1 {
		t.Fatal("a read crossed the gap at 7..8")
	}
	if !r.covers(key, 0, 7) || r.covers(key, 0, 8) || !r.covers(key, 9, 10) || r.covers(key, 8, 10) {
		t.Fatal("covers disagrees with the kept offsets 0..6 and 9")
	}

	// A retry acknowledged twice, and acknowledgements that do not match
	// their batches, add nothing.
	before := r.size
	r.add(key, 3, 4, 6, batch(t, 3, 40))
	r.add(key, 3, 20, 25, batch(t, 3, 200)) // 3 records for 6 offsets
	r.add(key, 0, 30, 32, batch(t, 3, 300)) // a retry answered from committed state
	if r.size != before || r.covers(key, 20, 21) || r.covers(key, 30, 31) {
		t.Fatalf("size %d → %d after adds that should keep nothing", before, r.size)
	}
}

// TestRecentBatchesEvicts: past the byte budget the oldest acknowledged
// batches go first, across partitions.
func TestRecentBatchesEvicts(t *testing.T) {
	one := len(batch(t, 1, 0))
	a, b := meta.PartitionID{TopicID: "t", Partition: 0}, meta.PartitionID{TopicID: "t", Partition: 1}
	r := newRecentBatches(3 * one)
	r.watch(a)
	r.watch(b)
	r.add(a, 1, 0, 0, batch(t, 1, 0))
	r.add(b, 1, 0, 0, batch(t, 1, 0))
	r.add(a, 1, 1, 1, batch(t, 1, 0))
	r.add(b, 1, 1, 1, batch(t, 1, 0))
	if r.size > 3*one {
		t.Fatalf("holding %d bytes over a %d budget", r.size, 3*one)
	}
	if r.covers(a, 0, 1) || !r.covers(b, 0, 2) || !r.covers(a, 1, 2) {
		t.Fatal("eviction did not drop exactly the oldest batch (a@0)")
	}

	off := newRecentBatches(-1)
	off.watch(a)
	off.add(a, 1, 0, 0, batch(t, 1, 0))
	if _, ok := off.read(a, 0, 1, 1<<20); ok {
		t.Fatal("a disabled buffer kept a batch")
	}
}

// TestFetchTailBuffer: a reader at the high watermark is answered from the batches this proxy forwarded, stamped exactly as the
// owner stored them; offsets produced around the proxy are read from
// storage.
func TestFetchTailBuffer(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("tb", 1)
	b1 := e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	e.produce("tb", 0, batch(t, 2, 1000))
	e.waitView("high watermark 2", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 2 })

	// A reader at the head: from now on this proxy keeps what it forwards.
	// (Whether a long-poll is woken by the acknowledgement or by the
	// commit's watch event first is a race; reading after the produce
	// returned is not.)
	if r := e.fetch(&stratav1.FetchRequest{Topic: "tb", Offset: 2}); len(r.Batches) != 0 {
		t.Fatalf("fetch at the head returned %d bytes", len(r.Batches))
	}
	e.produce("tb", 0, batch(t, 3, 2000), batch(t, 4, 3000))
	res := e.fetch(&stratav1.FetchRequest{Topic: "tb", Offset: 2, MaxWaitMs: 20_000})
	if got := baseOffsets(t, res.Batches); !slices.Equal(got, []int64{2, 5}) || res.HighWatermark != 9 {
		t.Fatalf("long-poll returned batches at %v, high watermark %d; want [2 5], 9", got, res.HighWatermark)
	}
	if n := counterValue(e.srv.metrics.fetchRecent); n != 1 {
		t.Fatalf("%v fetches answered from the tail buffer, want 1", n)
	}
	stored, err := e.srv.fetcher.read(e.ctx, "tb", top.ID, 0, 2, 9, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, res.Batches) {
		t.Fatal("the tail buffer's bytes differ from the stored batches")
	}

	// Offsets 9..10 reach the owner without this proxy (another proxy's
	// produce); 11..12 come through it.
	if _, err := b1.Produce(e.ctx, &stratav1.ProduceRequest{Topic: "tb", Batches: batch(t, 2, 4000)}); err != nil {
		t.Fatal(err)
	}
	e.produce("tb", 0, batch(t, 2, 5000))
	e.waitView("high watermark 13", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 13 })
	r := e.fetch(&stratav1.FetchRequest{Topic: "tb", Offset: 9})
	if got := baseOffsets(t, r.Batches); !slices.Equal(got, []int64{9, 11}) {
		t.Fatalf("fetch across the gap returned batches at %v, want [9 11]", got)
	}
	if n := counterValue(e.srv.metrics.fetchRecent); n != 1 {
		t.Fatalf("a fetch of offsets this proxy never saw was answered from the tail buffer (%v hits)", n)
	}
	r = e.fetch(&stratav1.FetchRequest{Topic: "tb", Offset: 11})
	if got := baseOffsets(t, r.Batches); !slices.Equal(got, []int64{11}) || counterValue(e.srv.metrics.fetchRecent) != 2 {
		t.Fatalf("fetch at 11 returned %v with %v buffer hits; want [11] from the buffer", got, counterValue(e.srv.metrics.fetchRecent))
	}
}

// TestRecentBatchesAwaitCover: a warm waits for the acknowledgement of a
// produce this proxy forwards, and only then.
func TestRecentBatchesAwaitCover(t *testing.T) {
	ctx := context.Background()
	key := meta.PartitionID{TopicID: "t", Partition: 0}
	r := newRecentBatches(1 << 20)
	if r.begin(key) {
		t.Fatal("begin counted a forward to a partition nobody reads at its head")
	}
	r.watch(key)
	start := time.Now()
	if r.awaitCover(ctx, key, 0, 2, time.Hour) {
		t.Fatal("covered with nothing kept")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("waited %v with no forward in flight", d)
	}

	// Acknowledged while the warm waits: covered.
	if !r.begin(key) {
		t.Fatal("begin did not count a forward to a watched partition")
	}
	go func() {
		r.add(key, 1, 0, 1, batch(t, 2, 0))
		r.end(key)
	}()
	if !r.awaitCover(ctx, key, 0, 2, time.Hour) {
		t.Fatal("not covered after the acknowledgement")
	}

	// A forward that fails ends the wait without cover.
	r.begin(key)
	go r.end(key)
	if r.awaitCover(ctx, key, 2, 4, time.Hour) {
		t.Fatal("covered although the forward failed")
	}

	// A forward that never ends: the wait ends at its bound.
	r.begin(key)
	defer r.end(key)
	start = time.Now()
	if r.awaitCover(ctx, key, 2, 4, 20*time.Millisecond) {
		t.Fatal("covered with nothing acknowledged")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("gave up after %v, before its 20ms bound", d)
	}
}
