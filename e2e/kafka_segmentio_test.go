package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strata-mq/strata/internal/checker"
)

// TestKafkaSegmentio produces 100,000 records with segmentio/kafka-go's
// async Writer (snappy, acks=all) and reads every partition back with its
// Reader, checking every acknowledged record. kafka-go encodes its own
// requests (no shared code with franz-go or Sarama), another dialect of
// the protocol to hold the front end to.
func TestKafkaSegmentio(t *testing.T) {
	const n = 100_000
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "kafka-segmentio"
	kgoCreateTopic(t, ctx, addr, topic, 4)
	chk := checker.New()

	failed := make(chan error, 1)
	// A Transport of its own: the default one is process-wide and keeps
	// a metadata goroutine per cluster until its connections are closed.
	tr := &segkafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &segkafka.Writer{
		Addr: segkafka.TCP(addr), Topic: topic, Balancer: &segkafka.RoundRobin{}, Transport: tr,
		RequiredAcks: segkafka.RequireAll, Compression: segkafka.Snappy,
		BatchSize: 1000, BatchTimeout: 5 * time.Millisecond, Async: true,
		Completion: func(msgs []segkafka.Message, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
				return
			}
			for _, m := range msgs {
				chk.Acked(checker.Record{Topic: topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value})
			}
		},
	}
	for i := 0; i < n; i += 1000 {
		msgs := make([]segkafka.Message, 1000)
		for j := range msgs {
			msgs[j] = segkafka.Message{Key: fmt.Appendf(nil, "key-%d", (i+j)%1000), Value: fmt.Appendf(nil, "seg-%08d-%s", i+j, pad)}
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("write %d..%d: %v", i, i+1000, err)
		}
	}
	if err := w.Close(); err != nil { // waits for every completion
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		t.Fatalf("delivery: %v", err)
	default:
	}
	if got := chk.AckedCount(); got != n {
		t.Fatalf("%d records acknowledged, want %d", got, n)
	}

	ends, err := kadm.NewClient(kgoClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	ends.Each(func(o kadm.ListedOffset) {
		r := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: int(o.Partition), MaxWait: time.Second})
		defer r.Close()
		for next := int64(0); next < o.Offset; {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d at %d: %v", topic, o.Partition, next, err)
			}
			chk.Read(checker.Record{Topic: topic, Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value})
			read++
			next = m.Offset + 1
		}
	})
	if rep := chk.Verify(0); !rep.OK() || read != n {
		t.Fatalf("read %d of %d: %v", read, n, rep)
	}
}
