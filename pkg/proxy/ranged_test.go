package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// compactedRun is data shaped like compaction's output, on real MinIO:
// objects holding a 4 MiB chunk of 1 KiB records for each partition, every
// chunk committed as two entries (compaction cuts a partition's run into
// groups, one entry each, back to back in its chunk).
type compactedRun struct {
	e     *env
	store *countingStore // the proxy's store: MinIO, counted
	topic meta.Topic
	// records is the number of records per partition.
	records int64
}

// Shape of the compacted data.
const (
	compactedChunkBytes  = 4 << 20 // lifecycle's CompactEntryBytes
	compactedRecordBytes = 1 << 10
	compactedBatchRecs   = 16
)

// newCompactedRun starts a proxy on a fresh MinIO bucket and commits
// objects objects of compacted data of partitions partitions, all cold
// (committed long ago).
func newCompactedRun(t *testing.T, partitions int32, objects int) *compactedRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	minio := testenv.SharedMinIO(t)
	bucket := fmt.Sprintf("proxy-ranged-%d", time.Now().UnixNano())
	if err := minio.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	s3, err := objstore.NewS3(ctx, objstore.S3Config{
		Endpoint: minio.Endpoint, Region: testenv.MinIORegion, Bucket: bucket, PathStyle: true,
		AccessKeyID: testenv.MinIOAccessKey, SecretAccessKey: testenv.MinIOSecretKey,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &compactedRun{store: &countingStore{Store: s3}}
	r.e = newEnv(t, func(c *Config) { c.Store = r.store })
	r.topic = r.e.createTopic("compacted", partitions)
	states := make([]meta.PartitionState, partitions)
	for p := range partitions {
		r.e.assign(r.topic.ID, p, "b1")
		if states[p], err = r.e.meta.GetPartition(r.e.ctx, r.topic.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	for o := range objects {
		r.commitObject(t, s3, fmt.Sprintf("compacted/%d", o), states)
	}
	r.records = states[0].NextOffset
	r.e.waitView("all compacted data", func(v *meta.View) bool {
		for p := range partitions {
			if st, _ := v.Partition(r.topic.ID, p); st.NextOffset != r.records {
				return false
			}
		}
		return true
	})
	return r
}

// commitObject writes one object under key with a chunk of each partition
// from its next offset in states, and commits each chunk as two entries
// split at a batch boundary near its middle.
func (r *compactedRun) commitObject(t *testing.T, s3 objstore.Store, key string, states []meta.PartitionState) {
	t.Helper()
	value := make([]byte, compactedRecordBytes)
	w := segment.NewWriter(segment.WriterOptions{})
	firsts, mids := make([]int64, len(states)), make([]int64, len(states))
	for p := range states {
		st := &states[p]
		firsts[p] = st.NextOffset
		for w.Size() < (p+1)*compactedChunkBytes {
			if mids[p] == 0 && w.Size() >= p*compactedChunkBytes+compactedChunkBytes/2 {
				mids[p] = st.NextOffset
			}
			recs := make([]segment.Record, compactedBatchRecs)
			for i := range recs {
				recs[i] = segment.Record{Timestamp: 1_700_000_000_000 + st.NextOffset + int64(i), Value: value}
			}
			b, err := segment.EncodeBatch(recs, segment.BatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.NextOffset, err = segment.AssignOffsets(b, st.NextOffset); err != nil {
				t.Fatal(err)
			}
			if err := w.Add(r.topic.ID, int32(p), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	obj, footer, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(r.e.ctx, key, obj); err != nil {
		t.Fatal(err)
	}
	var firstHalves, secondHalves []meta.Commit // one commit holds one entry per partition
	for _, c := range footer.Chunks {
		p := c.Partition
		// The first entry's bytes: the batches below mids[p].
		var firstLen int64
		for at := c.Position; at < c.End(); {
			h, err := segment.ParseBatchHeader(obj[at:])
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset >= mids[p] {
				break
			}
			firstLen += int64(h.Size())
			at += int64(h.Size())
		}
		base := meta.SegmentEntry{TopicID: r.topic.ID, Partition: c.Partition, ObjectKey: key, ObjectSize: int64(len(obj)),
			MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp}
		one, two := base, base
		one.Pos, one.Len, one.FirstOffset, one.LastOffset = c.Position, firstLen, firsts[p], mids[p]-1
		two.Pos, two.Len, two.FirstOffset, two.LastOffset = c.Position+firstLen, c.Length-firstLen, mids[p], states[p].NextOffset-1
		firstHalves = append(firstHalves, meta.Commit{Broker: "b1", Epoch: states[p].Epoch, Entry: one})
		secondHalves = append(secondHalves, meta.Commit{Broker: "b1", Epoch: states[p].Epoch, Entry: two})
	}
	for _, commits := range [][]meta.Commit{firstHalves, secondHalves} {
		for i, err := range r.e.meta.CommitSegments(r.e.ctx, commits) {
			if err != nil {
				t.Fatalf("commit %d: %v", i, err)
			}
		}
	}
}

// fetch reads up to 1 MiB of partition p from off and returns the
// records at or past off and the bytes read from storage meanwhile (only
// meaningful when nothing else reads).
func (r *compactedRun) fetch(tb *testing.T, p int32, off int64) (records, next, stored int64) {
	before := r.store.bytes.Load()
	f, err := r.e.client.Fetch(r.e.ctx, &stratav1.FetchRequest{Topic: r.topic.Name, Partition: p, Offset: off, MaxBytes: 1 << 20})
	if err != nil {
		tb.Fatalf("fetch %d@%d: %v", p, off, err)
	}
	if offs := baseOffsets(tb, f.Batches); len(offs) == 0 || offs[0] > off {
		tb.Fatalf("fetch %d@%d: batches at %v", p, off, offs)
	}
	records, next = countRecords(tb, f.Batches, off)
	return records, next, r.store.bytes.Load() - before
}

// TestRangedReadOfCompactedData: a consumer reading 1 MiB from random
// offsets of cold compacted data (4 MiB chunks) reads at most 1.5 MiB
// from storage per fetch — footer included — rather than the whole chunk.
func TestRangedReadOfCompactedData(t *testing.T) {
	r := newCompactedRun(t, 1, 3)
	rng := rand.New(rand.NewPCG(16, 5))
	var total, most int64
	const fetches = 24
	for range fetches {
		off := rng.Int64N(r.records)
		recs, _, stored := r.fetch(t, 0, off)
		if recs == 0 {
			t.Fatalf("fetch at %d: no records", off)
		}
		total += stored
		most = max(most, stored)
	}
	t.Logf("%d random 1 MiB fetches: %.2f MiB from storage on average, %.2f MiB at most",
		fetches, float64(total)/fetches/(1<<20), float64(most)/(1<<20))
	if most > 3<<19 {
		t.Fatalf("a 1 MiB fetch read %d bytes from storage, want <= 1.5 MiB", most)
	}
}

// TestCatchUpReadOfCompactedData: consumers reading compacted data of 4
// partitions from the start, one per partition, 1 MiB at a time, see
// every record once and in order, and the proxy reads about the data's
// size from storage. It logs the records/s (docs/benchmarks.md).
func TestCatchUpReadOfCompactedData(t *testing.T) {
	const partitions = 4
	r := newCompactedRun(t, partitions, 6)
	var mu sync.Mutex
	var seen int64
	before, t0 := r.store.bytes.Load(), time.Now()
	var wg sync.WaitGroup
	for p := range int32(partitions) {
		wg.Go(func() {
			var n int64
			defer func() { mu.Lock(); seen += n; mu.Unlock() }()
			for off := int64(0); off < r.records; {
				f, err := r.e.client.Fetch(r.e.ctx, &stratav1.FetchRequest{Topic: r.topic.Name, Partition: p, Offset: off, MaxBytes: 1 << 20})
				if err != nil {
					t.Errorf("fetch %d@%d: %v", p, off, err)
					return
				}
				recs, next := countRecords(t, f.Batches, off)
				if recs == 0 || next != off+recs {
					t.Errorf("fetch %d@%d: %d records, next %d", p, off, recs, next)
					return
				}
				n, off = n+recs, next
			}
		})
	}
	wg.Wait()
	elapsed, stored := time.Since(t0), r.store.bytes.Load()-before
	data := partitions * r.records * compactedRecordBytes
	t.Logf("catch-up: %d records in %v = %.0f records/s; %.1f MiB from storage for %.1f MiB of record values",
		seen, elapsed.Round(time.Millisecond), float64(seen)/elapsed.Seconds(), float64(stored)/(1<<20), float64(data)/(1<<20))
	if seen != partitions*r.records || stored > data*5/4 {
		t.Fatalf("read %d of %d records with %d bytes from storage; want all, with at most 1.25x the data", seen, partitions*r.records, stored)
	}
}

// TestCorruptCompactedChunk: a flipped byte inside a compacted chunk gives
// the clear corrupt-data error on a ranged read too.
func TestCorruptCompactedChunk(t *testing.T) {
	r := newCompactedRun(t, 1, 1)
	e, err := r.e.meta.FindSegment(r.e.ctx, r.topic.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := r.store.Get(r.e.ctx, e.ObjectKey, 0, e.ObjectSize)
	if err != nil {
		t.Fatal(err)
	}
	obj[e.Pos+e.Len/2] ^= 0xFF
	if err := r.store.Put(r.e.ctx, e.ObjectKey, obj); err != nil {
		t.Fatal(err)
	}
	mid := (e.FirstOffset + e.LastOffset) / 2
	_, err = r.e.client.Fetch(r.e.ctx, &stratav1.FetchRequest{Topic: r.topic.Name, Offset: mid, MaxBytes: 64 << 10})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.Internal || !strings.Contains(msg, "corrupt stored data") || !strings.Contains(msg, e.ObjectKey) {
		t.Fatalf("fetch of a corrupt compacted chunk: %v; want Internal naming the corruption and object %s", err, e.ObjectKey)
	}
	t.Logf("reported: %v", err)
}
