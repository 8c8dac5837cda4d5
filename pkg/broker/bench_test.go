package broker

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/segment"
)

// BenchmarkProduce measures produce throughput through a real gRPC
// connection: 1 KiB records in batches of 64, 32 concurrent producers
// across 8 partitions, the filesystem store and a real etcd. Each
// iteration is one acknowledged produce request.
func BenchmarkProduce(b *testing.B) {
	const (
		partitions = 8
		producers  = 32
		perBatch   = 64
		recordSize = 1 << 10
	)
	e := newEnv(b, func(c *Config) { c.FlushInterval = DefaultFlushInterval })
	e.createTopic(b, "bench", partitions)
	recs := make([]segment.Record, perBatch)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Value: make([]byte, recordSize)}
	}
	proto, err := segment.EncodeBatch(recs, segment.BatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	var next atomic.Int64
	b.SetBytes(int64(len(proto)))
	b.SetParallelism(max(1, producers/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := int32(next.Add(1) % partitions)
			buf := append([]byte(nil), proto...)
			if _, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "bench", Partition: p, Batches: buf}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N*perBatch)/secs, "records/s")
	b.ReportMetric(float64(b.N*len(proto))/secs/1e6, "MB/s")
}
