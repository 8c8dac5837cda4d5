package meta_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// BenchmarkCommit measures fencing-commit transactions per second against
// the real etcd, with 1 and 16 committers each appending to a partition of
// its own (one partition per transaction, the worst case for batching).
func BenchmarkCommit(b *testing.B) {
	for _, committers := range []int{1, 16} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			s := newStore(b)
			ctx := testCtx(b)
			top := createTopic(b, s, "bench", int32(committers))
			for p := range committers {
				assign(b, s, top.ID, int32(p), "b1")
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range committers {
				n := b.N / committers
				if p < b.N%committers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						e := entry(top.ID, int32(p), int64(i)*10, 10)
						if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: e}}); errs[0] != nil {
							b.Error(errs[0])
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "txn/s")
		})
	}
}

// BenchmarkCommitBatched measures partition commits per second when one
// transaction carries many partitions, as a broker's flush does.
func BenchmarkCommitBatched(b *testing.B) {
	const partitions = 64
	s := newStore(b)
	ctx := testCtx(b)
	top := createTopic(b, s, "batched", partitions)
	for p := range partitions {
		assign(b, s, top.ID, int32(p), "b1")
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		commits := make([]meta.Commit, partitions)
		for p := range commits {
			commits[p] = meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(top.ID, int32(p), int64(i)*10, 10)}
		}
		for _, err := range s.CommitSegments(ctx, commits) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*partitions)/time.Since(start).Seconds(), "partition-commits/s")
}
