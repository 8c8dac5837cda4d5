package proxy

import (
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// fill produces three requests of two 5-record batches each to topic/0,
// so the partition holds three segment entries, 0..9, 10..19 and 20..29.
// Batch k (offsets 5k..5k+4) has timestamps 1000(k+1)+j. It returns each
// batch's size.
func fill(t *testing.T, e *env, topic string) []int {
	t.Helper()
	top := e.createTopic(topic, 1)
	e.startBroker("b-" + topic)
	e.assign(top.ID, 0, "b-"+topic)
	var sizes []int
	for r := range 3 {
		b0, b1 := batch(t, 5, int64(1000*(2*r+1))), batch(t, 5, int64(1000*(2*r+2)))
		sizes = append(sizes, len(b0), len(b1))
		e.produce(topic, 0, b0, b1)
	}
	e.waitView("high watermark 30", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 30 })
	return sizes
}

func TestFetch(t *testing.T) {
	e := newEnv(t)
	sizes := fill(t, e, "logs")
	tests := []struct {
		name     string
		offset   int64
		maxBytes int32
		want     []int64 // base offsets of the returned batches
	}{
		{"from the start", 0, 0, []int64{0, 5, 10, 15, 20, 25}},
		{"middle of a batch", 7, 0, []int64{5, 10, 15, 20, 25}},
		{"middle of a later entry", 23, 0, []int64{20, 25}},
		{"one byte still returns one batch", 0, 1, []int64{0}},
		{"budget across an entry boundary", 0, int32(sizes[0] + sizes[1] + sizes[2]), []int64{0, 5, 10}},
		{"budget one byte short", 0, int32(sizes[0] + sizes[1] + sizes[2] - 1), []int64{0, 5}},
		{"budget from the middle", 12, int32(sizes[2] + sizes[3]), []int64{10, 15}},
		{"last batch", 29, 0, []int64{25}},
		{"at the high watermark", 30, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.fetch(&stratav1.FetchRequest{Topic: "logs", Offset: tc.offset, MaxBytes: tc.maxBytes})
			if got := baseOffsets(t, r.Batches); !slices.Equal(got, tc.want) {
				t.Fatalf("batches at %v, want %v", got, tc.want)
			}
			if r.HighWatermark != 30 || r.LogStartOffset != 0 {
				t.Fatalf("high watermark %d, log start %d; want 30, 0", r.HighWatermark, r.LogStartOffset)
			}
		})
	}

	// The records come back as produced.
	r := e.fetch(&stratav1.FetchRequest{Topic: "logs", Offset: 10, MaxBytes: 1})
	recs, err := segment.DecodeRecords(r.Batches)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].Offset != 10 || recs[0].Timestamp != 3000 || string(recs[0].Value) != "value-3000-0" {
		t.Fatalf("records %+v", recs)
	}
}

// TestFetchCache: a second fetch of the same data is served by the block
// cache and the entry cache, without reading object storage.
func TestFetchCache(t *testing.T) {
	e := newEnv(t)
	fill(t, e, "cached")
	first := e.fetch(&stratav1.FetchRequest{Topic: "cached", Offset: 0})
	gets := e.store.gets.Load()
	if gets == 0 {
		t.Fatal("first fetch read nothing from the store")
	}
	second := e.fetch(&stratav1.FetchRequest{Topic: "cached", Offset: 0})
	if n := e.store.gets.Load(); n != gets {
		t.Fatalf("second fetch made %d store reads, want 0", n-gets)
	}
	if !slices.Equal(first.Batches, second.Batches) {
		t.Fatal("cached fetch returned different bytes")
	}
}

// TestFetchListsEntriesAhead: a fetch that misses the entry cache lists
// the entries after the one it reads in the same etcd read, so that a
// reader working through the log (one behind the tail, or on a proxy that
// did not forward the records) does not pay an etcd round trip per entry.
func TestFetchListsEntriesAhead(t *testing.T) {
	e := newEnv(t)
	fill(t, e, "ahead") // six entries of five records: 0..29
	top, _ := e.srv.view.Topic("ahead")
	key := meta.PartitionID{TopicID: top.ID, Partition: 0}
	e.fetch(&stratav1.FetchRequest{Topic: "ahead", Offset: 0, MaxBytes: 1}) // reads the first entry only
	for off := int64(5); off < 30; off += 5 {
		if _, ok := e.srv.fetcher.entries.find(key, off); !ok {
			t.Fatalf("after a fetch at 0, the entry cache lacks the entry holding %d", off)
		}
	}
	// Past the high watermark nothing is found, and nothing is invented.
	if _, err := e.srv.fetcher.listEntries(e.ctx, key, 30); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("listing at the high watermark: %v, want ErrNotFound", err)
	}
}

// TestFetchLongPoll: a fetch at the high watermark waits for the next
// commit and returns it; with nothing committed it returns empty after its
// max wait.
func TestFetchLongPoll(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("tail", 1)
	e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	e.produce("tail", 0, batch(t, 2, 1000))
	e.waitView("high watermark 2", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 2 })

	type result struct {
		r       *stratav1.FetchResponse
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r, err := e.client.Fetch(e.ctx, &stratav1.FetchRequest{Topic: "tail", Offset: 2, MaxWaitMs: 20_000})
		done <- result{r, err, time.Since(start)}
	}()
	e.waitCounter("long polls", e.srv.metrics.longPolls, 1)
	select {
	case res := <-done:
		t.Fatalf("long-poll returned before any commit: %+v", res)
	default:
	}
	e.produce("tail", 0, batch(t, 3, 2000))
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := baseOffsets(t, res.r.Batches); !slices.Equal(got, []int64{2}) || res.r.HighWatermark != 5 {
		t.Fatalf("long-poll returned batches at %v, high watermark %d; want [2], 5", got, res.r.HighWatermark)
	}
	if res.elapsed > 10*time.Second {
		t.Fatalf("long-poll took %v after the commit", res.elapsed)
	}

	// Nothing new: empty after max_wait_ms, not before.
	const wait = 200 * time.Millisecond
	start := time.Now()
	r := e.fetch(&stratav1.FetchRequest{Topic: "tail", Offset: 5, MaxWaitMs: int32(wait / time.Millisecond)})
	if elapsed := time.Since(start); elapsed < wait {
		t.Fatalf("empty long-poll returned after %v, before its %v wait", elapsed, wait)
	}
	if len(r.Batches) != 0 || r.HighWatermark != 5 {
		t.Fatalf("empty long-poll returned %d bytes, high watermark %d", len(r.Batches), r.HighWatermark)
	}
}

func TestListOffsets(t *testing.T) {
	e := newEnv(t)
	fill(t, e, "times")
	tests := []struct {
		name string
		ts   int64
		want int64
	}{
		{"earliest", OffsetEarliest, 0},
		{"latest", OffsetLatest, 30},
		{"time zero", 0, 0},
		{"first record", 1000, 0},
		{"inside a batch", 3002, 12},
		{"between batches", 3005, 15},
		{"first record of a later entry", 5000, 20},
		{"after everything", 99_999, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.client.ListOffsets(e.ctx, &stratav1.ListOffsetsRequest{Topic: "times", TimestampMs: tc.ts})
			if err != nil {
				t.Fatal(err)
			}
			if r.Offset != tc.want || r.HighWatermark != 30 || r.LogStartOffset != 0 {
				t.Fatalf("offset %d (hw %d, start %d), want %d (30, 0)", r.Offset, r.HighWatermark, r.LogStartOffset, tc.want)
			}
		})
	}
}

// TestReadPartitions reads many partitions in one go from etcd, not from
// the view or the log-start cache, leaving out those out of range and
// unknown topics, and ListOffsets answers from etcd too.
func TestReadPartitions(t *testing.T) {
	e := newEnv(t)
	fill(t, e, "warm")
	e.createTopic("wide", 3)
	e.waitView("topic wide", func(v *meta.View) bool { _, ok := v.Topic("wide"); return ok })
	f := e.srv.fetcher
	wt, err := e.meta.GetTopic(e.ctx, "warm")
	if err != nil {
		t.Fatal(err)
	}
	read := func(topic string, ps ...int32) map[int32]meta.PartitionState {
		t.Helper()
		sts, err := f.ReadPartitions(e.ctx, topic, ps)
		if err != nil {
			t.Fatalf("read %s %v: %v", topic, ps, err)
		}
		return sts
	}
	if sts := read("nope", 0, 1); len(sts) != 0 {
		t.Fatalf("unknown topic: %d partitions read", len(sts))
	}
	if sts := read("warm", 0, 1, -1); len(sts) != 1 {
		t.Fatalf("one partition in range: %d read", len(sts))
	}
	if sts := read("wide", 0, 1, 2, 3); len(sts) != 3 || sts[2].Partition != 2 {
		t.Fatalf("wide: read %+v, want partitions 0-2", sts)
	}
	if _, err := e.meta.SetLogStart(e.ctx, wt.ID, 0, 10); err != nil {
		t.Fatal(err)
	}
	if sts := read("warm", 0, 0); sts[0].LogStart != 10 || sts[0].NextOffset != 30 {
		t.Fatalf("warm/0 read as %+v, want log start 10, next offset 30", sts[0])
	}
	if _, err := e.meta.SetLogStart(e.ctx, wt.ID, 0, 20); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.ListOffsets(e.ctx, &stratav1.ListOffsetsRequest{Topic: "warm", TimestampMs: OffsetEarliest})
	if err != nil || r.Offset != 20 || r.LogStartOffset != 20 {
		t.Fatalf("earliest of warm/0 = %+v, %v; want 20, read from etcd", r, err)
	}
}

// TestReadPartitionsEtcdAway: with etcd not answering, ReadPartitions
// fails once, with STORAGE_UNAVAILABLE, for the whole request, which a
// Kafka ListOffsets then answers for every partition (rather than one
// read, and one timeout, per partition).
func TestReadPartitionsEtcdAway(t *testing.T) {
	e := newEnv(t)
	e.createTopic("away", 3)
	e.waitView("topic away", func(v *meta.View) bool { _, ok := v.Topic("away"); return ok })
	gone, err := meta.New(meta.Config{Endpoints: etcd.Endpoints(), Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	gone.Close() // every request fails
	f := &Fetcher{view: e.srv.view, meta: gone, logStarts: map[meta.PartitionID]cachedLogStart{}}
	sts, err := f.ReadPartitions(e.ctx, "away", []int32{0, 1, 2})
	if !errors.Is(err, apierr.ErrStorageUnavailable) || sts != nil {
		t.Fatalf("read with etcd away: %v, %v; want STORAGE_UNAVAILABLE", sts, err)
	}
}

// TestBadInput sends malformed requests through a real gRPC client and
// checks each gets its API error.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("in", 2)
	e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	e.produce("in", 0, batch(t, 5, 1000))
	e.waitView("high watermark 5", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 5 })
	ok := batch(t, 1, 1)

	produce := func(topic string, p int32, b []byte) func() error {
		return func() error {
			_, err := e.client.Produce(e.ctx, &stratav1.ProduceRequest{Topic: topic, Partition: p, Batches: b})
			return err
		}
	}
	fetch := func(req *stratav1.FetchRequest) func() error {
		return func() error { _, err := e.client.Fetch(e.ctx, req); return err }
	}
	list := func(topic string, p int32, ts int64) func() error {
		return func() error {
			_, err := e.client.ListOffsets(e.ctx, &stratav1.ListOffsetsRequest{Topic: topic, Partition: p, TimestampMs: ts})
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"produce unknown topic", produce("nope", 0, ok), apierr.ErrUnknownTopic},
		{"produce partition out of range", produce("in", 2, ok), apierr.ErrPartitionRange},
		{"produce negative partition", produce("in", -1, ok), apierr.ErrPartitionRange},
		{"produce no batches", produce("in", 0, nil), apierr.ErrInvalidRequest},
		{"produce corrupt batch", produce("in", 0, []byte("not a batch at all, just bytes of text......................")), apierr.ErrCorruptBatch},
		{"fetch unknown topic", fetch(&stratav1.FetchRequest{Topic: "nope"}), apierr.ErrUnknownTopic},
		{"fetch partition out of range", fetch(&stratav1.FetchRequest{Topic: "in", Partition: 2}), apierr.ErrPartitionRange},
		{"fetch negative partition", fetch(&stratav1.FetchRequest{Topic: "in", Partition: -1}), apierr.ErrPartitionRange},
		{"fetch negative offset", fetch(&stratav1.FetchRequest{Topic: "in", Offset: -1}), apierr.ErrOffsetOutOfRange},
		{"fetch past the high watermark", fetch(&stratav1.FetchRequest{Topic: "in", Offset: 6}), apierr.ErrOffsetOutOfRange},
		{"fetch negative max bytes", fetch(&stratav1.FetchRequest{Topic: "in", MaxBytes: -1}), apierr.ErrInvalidRequest},
		{"fetch negative max wait", fetch(&stratav1.FetchRequest{Topic: "in", MaxWaitMs: -1}), apierr.ErrInvalidRequest},
		{"list offsets unknown topic", list("nope", 0, OffsetLatest), apierr.ErrUnknownTopic},
		{"list offsets partition out of range", list("in", 5, OffsetLatest), apierr.ErrPartitionRange},
		{"list offsets bad spec", list("in", 0, -3), apierr.ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.name, tc.call(), tc.want) })
	}
}

// TestFetchCorruptObject: a segment entry whose bytes are not record
// batches yields an Internal error that says so, never a panic or data.
func TestFetchCorruptObject(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("rot", 1)
	e.assign(top.ID, 0, "b1")
	junk := []byte("this is not a segment object; it is 64 bytes of plain text junk")
	if err := e.store.Put(e.ctx, "junk/1", junk); err != nil {
		t.Fatal(err)
	}
	st, err := e.meta.GetPartition(e.ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	entry := meta.SegmentEntry{TopicID: top.ID, ObjectKey: "junk/1", ObjectSize: int64(len(junk)), Len: int64(len(junk)), LastOffset: 4}
	if err := e.meta.CommitSegments(e.ctx, []meta.Commit{{Broker: "b1", Epoch: st.Epoch, Entry: entry}})[0]; err != nil {
		t.Fatal(err)
	}
	e.waitView("high watermark 5", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 5 })
	for _, call := range []func() error{
		func() error { _, err := e.client.Fetch(e.ctx, &stratav1.FetchRequest{Topic: "rot"}); return err },
		func() error {
			_, err := e.client.ListOffsets(e.ctx, &stratav1.ListOffsetsRequest{Topic: "rot", TimestampMs: 0})
			return err
		},
	} {
		err := call()
		if status.Code(err) != codes.Internal {
			t.Fatalf("corrupt chunk: %v, want an Internal error", err)
		}
		t.Logf("corrupt chunk: %v", err)
	}
}

// TestCloseEndsLongPolls: Close does not wait out a long-poll's max wait;
// the waiting fetch answers at once with what there is.
func TestCloseEndsLongPolls(t *testing.T) {
	e := newEnv(t)
	e.createTopic("quiet", 1)
	done := make(chan error, 1)
	go func() {
		r, err := e.client.Fetch(e.ctx, &stratav1.FetchRequest{Topic: "quiet", MaxWaitMs: 30_000})
		if err == nil && len(r.Batches) != 0 {
			t.Errorf("long-poll on an empty partition returned %d bytes", len(r.Batches))
		}
		done <- err
	}()
	e.waitCounter("long polls", e.srv.metrics.longPolls, 1)
	start := time.Now()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("long-poll at shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with a long-poll in flight", d)
	}
}
