//go:build cgo

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
)

// TestKafkaLibrdkafka produces 100,000 records with librdkafka (through
// confluent-kafka-go, whose static librdkafka needs cgo) with
// enable.idempotence=true and zstd, and reads them back with a librdkafka
// consumer on assigned partitions, checking every acknowledged record.
// librdkafka is the C client behind most non-Java Kafka clients and kcat,
// and checks broker answers more strictly than the Go clients.
func TestKafkaLibrdkafka(t *testing.T) {
	const n = 100_000
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "kafka-librdkafka"
	kgoCreateTopic(t, ctx, addr, topic, 4)
	chk := checker.New()

	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "enable.idempotence": true, "acks": "all",
		"compression.type": "zstd", "linger.ms": 5, "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	delivered := make(chan error, 1)
	go func() {
		var first error
		for got := 0; got < n; {
			select {
			case ev := <-p.Events():
				m, ok := ev.(*kafka.Message)
				if !ok {
					continue
				}
				got++
				if err := m.TopicPartition.Error; err != nil {
					if first == nil {
						first = err
					}
					continue
				}
				chk.Acked(checker.Record{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition,
					Offset: int64(m.TopicPartition.Offset), Key: m.Key, Value: m.Value})
			case <-ctx.Done():
				delivered <- ctx.Err()
				return
			}
		}
		delivered <- first
	}()
	tp := kafka.TopicPartition{Topic: new(string), Partition: kafka.PartitionAny}
	*tp.Topic = topic
	for i := range n {
		m := &kafka.Message{TopicPartition: tp, Key: fmt.Appendf(nil, "key-%d", i%1000), Value: fmt.Appendf(nil, "rdk-%08d-%s", i, pad)}
		for {
			err := p.Produce(m, nil)
			if err == nil {
				break
			}
			if kerr, ok := err.(kafka.Error); !ok || kerr.Code() != kafka.ErrQueueFull {
				t.Fatalf("produce %d: %v", i, err)
			}
			p.Flush(10) // the local queue is full: let deliveries drain
		}
	}
	if err := <-delivered; err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if got := chk.AckedCount(); got != n {
		t.Fatalf("%d records acknowledged, want %d", got, n)
	}

	ends, err := kadm.NewClient(kgoClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "group.id": "librdkafka-assign", "enable.auto.commit": false, "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var assign []kafka.TopicPartition
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		assign = append(assign, kafka.TopicPartition{Topic: tp.Topic, Partition: o.Partition, Offset: kafka.OffsetBeginning})
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if err := c.Assign(assign); err != nil {
		t.Fatal(err)
	}
	read := 0
	for len(remaining) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("read %d records; partitions not finished: %v", read, remaining)
		}
		switch ev := c.Poll(200).(type) {
		case *kafka.Message:
			m := ev
			chk.Read(checker.Record{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition,
				Offset: int64(m.TopicPartition.Offset), Key: m.Key, Value: m.Value})
			read++
			if end, ok := remaining[m.TopicPartition.Partition]; ok && int64(m.TopicPartition.Offset)+1 >= end {
				delete(remaining, m.TopicPartition.Partition)
			}
		case kafka.Error:
			t.Fatalf("consume: %v", ev)
		}
	}
	if rep := chk.Verify(0); !rep.OK() || read != n {
		t.Fatalf("read %d of %d: %v", read, n, rep)
	}
}

// startLibrdkafkaLoad is a kafkaLoad through librdkafka's idempotent
// producer, with its default retries (until message.timeout.ms, 5 min).
func startLibrdkafkaLoad(t *testing.T, addr, topic string) *kafkaLoad {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "enable.idempotence": true, "acks": "all", "linger.ms": 2, "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	l := newKafkaLoad("librdkafka", topic)
	reported := make(chan struct{})
	go func() { // until Close closes the events channel
		defer close(reported)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				l.done(string(m.Value), m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.TopicPartition.Error)
			}
		}
	}()
	flush := func(ctx context.Context) error {
		for p.Flush(100) > 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		p.Close()
		<-reported
		return nil
	}
	tp := kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}
	return l.start(func(v string) {
		if err := p.Produce(&kafka.Message{TopicPartition: tp, Value: []byte(v)}, nil); err != nil {
			l.done(v, -1, -1, err)
		}
	}, flush)
}

// TestKafkaLibrdkafkaDeleteRecords deletes records with librdkafka's admin
// client: the low watermark it answers is the new log start, OffsetEnd
// deletes every record, an offset past the high watermark fails alone,
// and librdkafka's own watermark query agrees.
func TestKafkaLibrdkafkaDeleteRecords(t *testing.T) {
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "librdkafka-trim"
	kgoCreateTopic(t, ctx, addr, topic, 2)
	cl := kgoClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 50 {
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": addr, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	tp := func(p int32, off kafka.Offset) kafka.TopicPartition {
		name := topic
		return kafka.TopicPartition{Topic: &name, Partition: p, Offset: off}
	}
	for _, tc := range []struct {
		name string
		tp   kafka.TopicPartition
		low  kafka.Offset
		code kafka.ErrorCode
	}{
		{"inside the log", tp(0, 20), 20, kafka.ErrNoError},
		{"every record (OffsetEnd)", tp(1, kafka.OffsetEnd), 50, kafka.ErrNoError},
		{"past the high watermark", tp(0, 60), 0, kafka.ErrOffsetOutOfRange},
	} {
		res, err := admin.DeleteRecords(ctx, []kafka.TopicPartition{tc.tp})
		if err != nil || len(res.DeleteRecordsResults) != 1 {
			t.Fatalf("%s: %v, %+v", tc.name, err, res)
		}
		r := res.DeleteRecordsResults[0]
		var code kafka.ErrorCode
		if r.TopicPartition.Error != nil {
			code = r.TopicPartition.Error.(kafka.Error).Code()
		}
		if code != tc.code || (code == kafka.ErrNoError && (r.DeletedRecords == nil || r.DeletedRecords.LowWatermark != tc.low)) {
			t.Fatalf("%s: error %v, deleted %+v; want %v, low watermark %d", tc.name, r.TopicPartition.Error, r.DeletedRecords, tc.code, tc.low)
		}
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": addr, "group.id": "librdkafka-trim", "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p, want := range map[int32]int64{0: 20, 1: 50} {
		low, high, err := c.QueryWatermarkOffsets(topic, p, 10_000)
		if err != nil || low != want || high != 50 {
			t.Fatalf("watermarks of partition %d: %d, %d, %v; want %d, 50", p, low, high, err, want)
		}
	}
}
