package kafka_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strata-mq/strata/internal/bench"
	"github.com/strata-mq/strata/pkg/proxy"
)

// TestBenchKafka runs the load generator over the Kafka protocol
// (strata bench --protocol kafka): the produce run creates the topic and
// has every record acknowledged, the consume run reads exactly those, and
// an e2e run reads back what it produces.
func TestBenchKafka(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	cfg := bench.ProduceConfig{Server: c.kafka.Addr(), Protocol: bench.ProtocolKafka, Topic: "bench", Partitions: 4,
		RecordBytes: 256, Producers: 2, Linger: time.Millisecond, Codec: "lz4", Duration: time.Second, Rate: 2000}
	ps, err := bench.Produce(c.ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ps.Ops == 0 || ps.Errors != 0 {
		t.Fatalf("produce: %d records, %d errors", ps.Ops, ps.Errors)
	}
	cs, err := bench.Consume(c.ctx, bench.ConsumeConfig{Server: c.kafka.Addr(), Protocol: bench.ProtocolKafka, Topic: "bench", Duration: time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Ops != ps.Ops || cs.Errors != 0 {
		t.Fatalf("consumed %d records (%d errors), produced %d", cs.Ops, cs.Errors, ps.Ops)
	}

	// e2e: a franz-go consumer at the end reads every record a franz-go
	// producer gets acknowledged, with both latencies recorded.
	es, err := bench.E2E(c.ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if es.Ops == 0 || es.Errors != 0 || es.AckLatency == nil || es.AckLatency.P50 <= 0 || es.Latency.P50 <= 0 {
		t.Fatalf("e2e: %d records, %d errors (%s), latency %+v, acknowledged %+v", es.Ops, es.Errors, es.FirstError, es.Latency, es.AckLatency)
	}
}

// BenchmarkListOffsetsWide asks for the earliest offset of every partition
// of a topic of 10,000 partitions in one ListOffsets request, as a
// consumer group starting on it does, with the proxy's cache of log starts
// expired before each request.
//
//	go test ./pkg/kafka -run '^$' -bench ListOffsetsWide -benchtime 3x
func BenchmarkListOffsetsWide(b *testing.B) {
	const partitions = 10_000
	c := startCluster(b, clusterOpts{})
	adm := kadm.NewClient(c.client())
	if _, err := adm.CreateTopic(c.ctx, partitions, 1, nil, "wide"); err != nil {
		b.Fatal(err)
	}
	list := func() error {
		offs, err := adm.ListStartOffsets(c.ctx, "wide")
		if err == nil {
			err = offs.Error()
		}
		if n := len(offs["wide"]); err == nil && n != partitions {
			err = fmt.Errorf("%d partitions listed, want %d", n, partitions)
		}
		return err
	}
	for err := list(); err != nil; err = list() { // until every partition has an owner
		if c.ctx.Err() != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		time.Sleep(proxy.DefaultLogStartTTL) // expire the cached log starts
		b.StartTimer()
		if err := list(); err != nil {
			b.Fatal(err)
		}
	}
}
