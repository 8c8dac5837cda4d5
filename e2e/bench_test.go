package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// BenchmarkProduce1KiB produces 1 KiB records over 8 partitions through
// real processes (MinIO, etcd, a coordinator, one broker, a proxy) and
// reports records/s, MB/s and the produce-to-ack latency percentiles.
//
//	go test ./e2e -run '^$' -bench Produce1KiB -benchtime 200000x
func BenchmarkProduce1KiB(b *testing.B) {
	ctx, cl := benchSetup(b, "bench")
	p, err := cl.NewProducer()
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	value := make([]byte, 1024)
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		fail error
	)
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		sent := time.Now()
		p.Produce(ctx, &client.Record{Topic: "bench", Partition: -1, Key: fmt.Appendf(nil, "%d", i), Value: value}, func(_ *client.Record, err error) {
			d := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && fail == nil {
				fail = err
			}
			lat = append(lat, d)
		})
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if fail != nil {
		b.Fatal(fail)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	reportLatency(b, lat)
}

// BenchmarkProduceSerial1KiB sends one 1 KiB record at a time and waits
// for its acknowledgement: the produce-ack latency without queueing.
//
//	go test ./e2e -run '^$' -bench ProduceSerial1KiB -benchtime 2000x
func BenchmarkProduceSerial1KiB(b *testing.B) {
	ctx, cl := benchSetup(b, "serial")
	p, err := cl.NewProducer(client.Linger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close(ctx)
	value := make([]byte, 1024)
	lat := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for i := range b.N {
		sent := time.Now()
		if err := p.ProduceSync(ctx, &client.Record{Topic: "serial", Partition: -1, Key: fmt.Appendf(nil, "%d", i), Value: value}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(sent))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// benchSetup starts a one-broker cluster and creates an 8-partition topic.
func benchSetup(b *testing.B, topic string) (context.Context, *client.Client) {
	c := StartCluster(b, ClusterOptions{Brokers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, topic, 8); err != nil {
		b.Fatal(err)
	}
	return ctx, cl
}

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
