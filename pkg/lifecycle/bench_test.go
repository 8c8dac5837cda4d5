package lifecycle_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
)

// BenchmarkLifecycleSteadyState produces a long run of flushes (one every
// simulated second, 4 partitions each) with retention by bytes, runs a
// lifecycle pass every 10 flushes, and reports the entry count per
// partition and object count at the end of each quarter of the run: they
// stay flat. Alongside, tailing consumers (3 per partition) read every new
// entry through a block cache with the proxy's policy (new entries warmed
// into the hot budget, old ones read in the cold budget) while a cold
// reader scans old data; it reports the consumers' hit ratio.
func BenchmarkLifecycleSteadyState(b *testing.B) {
	const (
		flushes    = 400
		perFlush   = 40 // records per partition per flush, ~5 KiB
		passEvery  = 10
		consumers  = 3
		scanPerTic = 4 // old entries the cold reader reads per flush
	)
	ctx := context.Background()
	for range b.N {
		e := newEnv(b, 4)
		if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(t *meta.Topic) error { t.RetentionBytes = 256 << 10; return nil }); err != nil {
			b.Fatal(err)
		}
		m := e.manager(nil)
		bc, err := cache.New(cache.Config{MaxBytes: 4 << 20, BlockSize: 64 << 10, ColdBytes: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		read := func(class cache.Class, en meta.SegmentEntry) {
			if _, err := bc.ReadRangeClass(ctx, class, en.ObjectKey, en.ObjectSize, en.Pos, en.Len,
				func(ctx context.Context, off, n int64) ([]byte, error) { return e.store.Get(ctx, en.ObjectKey, off, n) }); err != nil {
				b.Fatal(err)
			}
		}
		var tailHits, tailMisses int64
		scan := map[int32]int64{}
		for i := 1; i <= flushes; i++ {
			e.produce(perFlush)
			e.advance(time.Second)
			for p := range e.topic.Partitions {
				hw := int64(len(e.want[p]))
				en, err := e.meta.FindSegment(ctx, e.topic.ID, p, hw-1)
				if err != nil {
					b.Fatal(err)
				}
				read(cache.Hot, en) // the proxy warms the new entry
				before := bc.Stats()
				for range consumers {
					read(cache.Hot, en)
				}
				after := bc.Stats()
				tailHits += after.Hits - before.Hits
				tailMisses += after.Misses - before.Misses
				// The cold reader scans from the log start, wrapping around.
				for range scanPerTic {
					ce, err := e.meta.FindSegment(ctx, e.topic.ID, p, scan[p])
					if err != nil {
						l, _ := e.meta.ReadLayout(ctx, e.topic.ID, p)
						scan[p] = l.LogStart
						continue
					}
					read(cache.Cold, ce)
					scan[p] = ce.LastOffset + 1
					if scan[p] >= hw-int64(perFlush)*30 {
						l, _ := e.meta.ReadLayout(ctx, e.topic.ID, p)
						scan[p] = l.LogStart
					}
				}
			}
			if i%passEvery == 0 {
				e.advance(2 * time.Minute) // lets the GC grace pass in simulated time
				if err := m.RunOnce(ctx); err != nil {
					b.Fatal(err)
				}
			}
			if i%(flushes/4) == 0 {
				entries := 0
				for p := range e.topic.Partitions {
					l, _ := e.meta.ReadLayout(ctx, e.topic.ID, p)
					entries += len(l.Entries)
				}
				q := i / (flushes / 4)
				b.ReportMetric(float64(entries)/float64(e.topic.Partitions), fmt.Sprintf("entries/partition@q%d", q))
				b.ReportMetric(float64(len(e.objects())), fmt.Sprintf("objects@q%d", q))
			}
		}
		e.checkAll()
		e.referencedExist()
		b.ReportMetric(float64(tailHits)/float64(tailHits+tailMisses)*100, "tail-hit-%")
		st := bc.Stats()
		b.ReportMetric(float64(st.Hits)/float64(st.Hits+st.Misses)*100, "all-hit-%")
	}
}

// BenchmarkCompactManyPartitions compacts 256 partitions after 150
// flushes that each carried two records of every partition, against real
// MinIO, with the default sizes and throttle: each task of 64 partitions
// reads a small run from each of the 150 flush objects. It reports the
// pass's time and its GETs.
//
//	go test ./pkg/lifecycle -run '^$' -bench CompactManyPartitions -benchtime 1x
func BenchmarkCompactManyPartitions(b *testing.B) {
	const partitions, flushes = 256, 150
	for range b.N {
		b.StopTimer()
		e := newEnv(b, partitions)
		for range flushes {
			e.produce(2)
		}
		e.advance(time.Minute)
		gets := &overlapStore{Store: e.store}
		e.store = gets
		m := e.manager(nil, func(c *lifecycle.Config) {
			c.CompactEntryBytes, c.CompactObjectBytes = lifecycle.DefaultCompactEntryBytes, lifecycle.DefaultCompactObjectBytes
			c.CompactMinInputs, c.CompactBytesPerSec = lifecycle.DefaultCompactMinInputs, lifecycle.DefaultCompactBytesPerSec
		})
		b.StartTimer()
		start := time.Now()
		st, err := m.Compact(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "pass-s")
		b.ReportMetric(float64(gets.gets.Load()), "gets")
		b.ReportMetric(float64(gets.most.Load()), "most-in-flight")
		if st.Swaps != partitions {
			b.Fatalf("compaction %+v; want every partition swapped", st)
		}
	}
}
