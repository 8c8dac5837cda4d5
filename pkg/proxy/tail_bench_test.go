package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// tailRun sizes one run of the tail hit ratio workload.
type tailRun struct {
	partitions int32
	// consumers tail each partition.
	consumers int
	// preloadBatches of 1 MiB per partition are written before the
	// measured phase: the old data the cold reader scans.
	preloadBatches int
	// measure is how long the measured phase lasts.
	measure time.Duration
}

// tailResult is what a run measured.
type tailResult struct {
	tail, warm, cold cache.ClassStats
	// buffered counts fetches answered from the tail buffer, without the
	// block cache: tail reads that never reach storage either.
	buffered  int64
	records   int64 // records the tailing consumers read
	produced  int64 // records produced in the measured phase
	scanned   int64 // bytes the cold reader read
	laps      int   // complete scans of the old data
	elapsed   time.Duration
	evictions int64
}

// runTailWorkload runs a real broker (on MinIO and etcd) and a proxy with
// a 32 MiB block cache (1 MiB blocks, 8 MiB cold budget); preloads old
// data larger than the cache; then, for r.measure, one producer per
// partition writes continuously, r.consumers per partition long-poll at
// the head through the proxy's gRPC API, and one reader scans partition 0
// from offset 0 to the end of the old data, over and over. It returns the
// block cache's counters for the measured phase, split by class.
func runTailWorkload(tb testing.TB, r tailRun) tailResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), r.measure+3*time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	ms, err := meta.New(meta.Config{Endpoints: etcd.Endpoints(), Prefix: testenv.Prefix(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	defer ms.Close()
	minio := testenv.SharedMinIO(tb)
	bucket := fmt.Sprintf("proxy-tail-%d", time.Now().UnixNano())
	if err := minio.CreateBucket(ctx, bucket); err != nil {
		tb.Fatal(err)
	}
	store, err := objstore.NewS3(ctx, objstore.S3Config{
		Endpoint: minio.Endpoint, Region: testenv.MinIORegion, Bucket: bucket, PathStyle: true,
		AccessKeyID: testenv.MinIOAccessKey, SecretAccessKey: testenv.MinIOSecretKey,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}

	b, err := broker.New(broker.Config{Meta: ms, Store: store, LeaseTTL: 2 * time.Second, Logger: quiet, Registry: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	<-b.Ready()

	// Entries older than window are cold: the preloaded data is, once the
	// measured phase starts; what the consumers tail is not.
	const window = 2 * time.Second
	srv, err := New(Config{
		ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Logger: quiet, Registry: prometheus.NewRegistry(),
		Cache: cache.Config{MaxBytes: 32 << 20, BlockSize: 1 << 20, ColdBytes: 8 << 20}, TailWindow: window,
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	<-srv.Ready()
	conn, err := rpc.Dial(srv.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	client := stratav1.NewStrataClient(conn)

	top, err := ms.CreateTopic(ctx, meta.Topic{Name: "tail", Partitions: r.partitions, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		tb.Fatal(err)
	}
	for p := range r.partitions {
		st, err := ms.GetPartition(ctx, top.ID, p)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := ms.AssignPartition(ctx, st, b.ID()); err != nil {
			tb.Fatal(err)
		}
	}

	// Preload: old data, 1 MiB batches, all partitions at once so that
	// flush objects hold several partitions.
	big := tailBatch(tb, 1024, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, r.partitions+1)
	for p := range r.partitions {
		wg.Go(func() {
			for range r.preloadBatches {
				if _, err := client.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: p, Batches: big}); err != nil {
					errs <- fmt.Errorf("preload %d: %w", p, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	oldEnd, err := client.ListOffsets(ctx, &stratav1.ListOffsetsRequest{Topic: top.Name, Partition: 0, TimestampMs: OffsetLatest})
	if err != nil {
		tb.Fatal(err)
	}
	// The last preloaded entry becomes cold `window` after its commit;
	// the passing of time is the condition here.
	time.Sleep(window)

	run, stop := context.WithCancel(ctx)
	defer stop()
	var produced, consumed, scanned atomic.Int64
	var laps atomic.Int64
	fail := func(what string, err error) {
		if run.Err() == nil {
			select {
			case errs <- fmt.Errorf("%s: %w", what, err):
			default:
			}
			stop()
		}
	}
	small := tailBatch(tb, 512, 20) // ~10 KiB
	var workers sync.WaitGroup
	started := make(chan struct{}, int(r.partitions)*r.consumers)
	for p := range r.partitions {
		workers.Go(func() { // producer
			for run.Err() == nil {
				if _, err := client.Produce(run, &stratav1.ProduceRequest{Topic: top.Name, Partition: p, Batches: small}); err != nil {
					fail("produce", err)
					return
				}
				produced.Add(20)
			}
		})
		for range r.consumers {
			workers.Go(func() { // tailing consumer
				resp, err := client.ListOffsets(run, &stratav1.ListOffsetsRequest{Topic: top.Name, Partition: p, TimestampMs: OffsetLatest})
				if err != nil {
					fail("list offsets", err)
					return
				}
				started <- struct{}{}
				for off := resp.Offset; run.Err() == nil; {
					f, err := client.Fetch(run, &stratav1.FetchRequest{Topic: top.Name, Partition: p, Offset: off, MaxWaitMs: 1000})
					if err != nil {
						fail("tail fetch", err)
						return
					}
					n, next := countRecords(tb, f.Batches, off)
					consumed.Add(n)
					off = next
				}
			})
		}
	}
	workers.Go(func() { // cold reader
		for off := int64(0); run.Err() == nil; {
			f, err := client.Fetch(run, &stratav1.FetchRequest{Topic: top.Name, Partition: 0, Offset: off, MaxBytes: 1 << 20})
			if err != nil {
				fail("cold fetch", err)
				return
			}
			scanned.Add(int64(len(f.Batches)))
			if _, off = countRecords(tb, f.Batches, off); off >= oldEnd.Offset {
				laps.Add(1)
				off = 0
			}
		}
	})
	for range int(r.partitions) * r.consumers {
		<-started
	}
	before, t0, b0 := srv.fetcher.cache.Stats(), time.Now(), counterValue(srv.metrics.fetchRecent)
	p0, c0, s0 := produced.Load(), consumed.Load(), scanned.Load()
	select {
	case <-time.After(r.measure):
	case <-run.Done():
	}
	after, elapsed := srv.fetcher.cache.Stats(), time.Since(t0)
	res := tailResult{
		tail:      after.Classes[cache.Hot].Sub(before.Classes[cache.Hot]),
		warm:      after.Classes[cache.Warm].Sub(before.Classes[cache.Warm]),
		cold:      after.Classes[cache.Cold].Sub(before.Classes[cache.Cold]),
		buffered:  int64(counterValue(srv.metrics.fetchRecent) - b0),
		produced:  produced.Load() - p0,
		records:   consumed.Load() - c0,
		scanned:   scanned.Load() - s0,
		laps:      int(laps.Load()),
		elapsed:   elapsed,
		evictions: after.Evictions - before.Evictions,
	}
	stop()
	workers.Wait()
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	return res
}

// tailBatch encodes n records of size bytes each.
func tailBatch(tb testing.TB, size, n int) []byte {
	tb.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Value: make([]byte, size)}
	}
	b, err := segment.EncodeBatch(recs, segment.BatchOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// countRecords returns how many records at or past off the batches hold
// and the offset after the last one (off when there are none).
func countRecords(tb testing.TB, batches []byte, off int64) (int64, int64) {
	hs, err := segment.SplitBatches(batches)
	if err != nil {
		tb.Error(err)
		return 0, off
	}
	var n int64
	for _, h := range hs {
		if last := h.LastOffset(); last >= off {
			n += last - max(h.BaseOffset, off) + 1
			off = last + 1
		}
	}
	return n, off
}

// tailReads is the number of tail reads: from the tail buffer, or from
// the block cache's hot class.
func (r tailResult) tailReads() int64 {
	return r.buffered + r.tail.Hits + r.tail.Joined + r.tail.Loads
}

// tailHitRatio is the share of tail reads that did not wait for storage:
// answered from the tail buffer or a cached block.
func (r tailResult) tailHitRatio() float64 {
	if n := r.tailReads(); n > 0 {
		return float64(r.buffered+r.tail.Hits) / float64(n)
	}
	return 0
}

func (r tailResult) log(tb testing.TB) {
	tb.Logf("%v: tail reads %d from the tail buffer, %+v from the cache (hit ratio %.4f), warm %+v, cold %+v (hit ratio %.4f), %d evictions; "+
		"%d records produced, %d consumed (%.0f/s), cold reader %d MiB in %d laps",
		r.elapsed.Round(time.Millisecond), r.buffered, r.tail, r.tailHitRatio(), r.warm, r.cold, r.cold.HitRatio(), r.evictions,
		r.produced, r.records, float64(r.records)/r.elapsed.Seconds(), r.scanned>>20, r.laps)
}

// BenchmarkTailHitRatio measures the block cache hit ratio of tailing
// consumers (reads of entries younger than the tail window, warming
// excluded) while a cold reader scans old data larger than the cache, on a
// real proxy, broker, MinIO and etcd. See docs/lifecycle.md.
func BenchmarkTailHitRatio(b *testing.B) {
	for range b.N {
		r := runTailWorkload(b, tailRun{partitions: 4, consumers: 3, preloadBatches: 16, measure: 20 * time.Second})
		r.log(b)
		b.ReportMetric(r.tailHitRatio(), "tail-hit-ratio")
		b.ReportMetric(r.cold.HitRatio(), "cold-hit-ratio")
		b.ReportMetric(float64(r.records)/r.elapsed.Seconds(), "consumed-records/s")
		b.ReportMetric(float64(r.produced)/r.elapsed.Seconds(), "produced-records/s")
		b.ReportMetric(float64(r.scanned)/r.elapsed.Seconds()/(1<<20), "cold-MiB/s")
	}
}

// TestTailHitRatio is a short run of the benchmark's workload: tailing
// consumers hit the cache at least 95% of the time while a cold reader
// scans old data.
func TestTailHitRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	r := runTailWorkload(t, tailRun{partitions: 4, consumers: 2, preloadBatches: 10, measure: 4 * time.Second})
	r.log(t)
	if n := r.tailReads(); n < 100 {
		t.Fatalf("only %d tail block reads; the workload did not run", n)
	}
	if r.laps == 0 && r.cold.Loads == 0 {
		t.Fatal("the cold reader read nothing from storage")
	}
	if got := r.tailHitRatio(); got < 0.95 {
		t.Fatalf("tail hit ratio %.4f, want >= 0.95", got)
	}
}
