package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strata-mq/strata/internal/checker"
)

// saramaConfig is a Sarama configuration for Strata's Kafka listener.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "strata-e2e"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Return.Errors = true
	return cfg
}

// TestKafkaSarama produces 100,000 records with Sarama — 20,000 with its
// idempotent sync producer (snappy), 80,000 with its async producer (lz4) —
// and reads them all back with Sarama's partition consumers, checking
// every acknowledged record.
func TestKafkaSarama(t *testing.T) {
	const syncN, asyncN = 20_000, 80_000
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "kafka-sarama"
	kgoCreateTopic(t, ctx, addr, topic, 4)
	chk := checker.New()
	acked := func(m *sarama.ProducerMessage) {
		k, _ := m.Key.Encode()
		v, _ := m.Value.Encode()
		chk.Acked(checker.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: k, Value: v})
	}
	msg := func(tag string, i int) *sarama.ProducerMessage {
		return &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i%1000)),
			Value: sarama.StringEncoder(fmt.Sprintf("%s-%08d-%s", tag, i, pad))}
	}

	t.Run("sync idempotent producer", func(t *testing.T) {
		cfg := saramaConfig()
		cfg.Producer.Idempotent = true
		cfg.Net.MaxOpenRequests = 1
		cfg.Producer.Compression = sarama.CompressionSnappy
		p, err := sarama.NewSyncProducer([]string{addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := 0; i < syncN; i += 500 {
			batch := make([]*sarama.ProducerMessage, 500)
			for j := range batch {
				batch[j] = msg("sync", i+j)
			}
			if err := p.SendMessages(batch); err != nil {
				t.Fatalf("send messages %d..%d: %v", i, i+500, err)
			}
			for _, m := range batch {
				acked(m)
			}
		}
	})
	t.Run("async producer", func(t *testing.T) {
		cfg := saramaConfig()
		cfg.Producer.Compression = sarama.CompressionLZ4
		cfg.Producer.Flush.Frequency = 5 * time.Millisecond
		p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			var first error
			for range asyncN {
				select {
				case m := <-p.Successes():
					acked(m)
				case e := <-p.Errors():
					if first == nil {
						first = e.Err
					}
				case <-ctx.Done():
					done <- ctx.Err()
					return
				}
			}
			done <- first
		}()
		for i := range asyncN {
			select {
			case p.Input() <- msg("async", i):
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("async produce: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if got := chk.AckedCount(); got != syncN+asyncN {
		t.Fatalf("%d records acknowledged, want %d", got, syncN+asyncN)
	}

	t.Run("partition consumers", func(t *testing.T) {
		cons, err := sarama.NewConsumer([]string{addr}, saramaConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		ends, err := kadm.NewClient(kgoClient(t, addr)).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil || o.Offset == 0 {
				t.Fatalf("end offset of %s/%d: %d, %v", topic, o.Partition, o.Offset, o.Err)
			}
			pc, err := cons.ConsumePartition(topic, o.Partition, sarama.OffsetOldest)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			for next := int64(0); next < o.Offset; {
				select {
				case m := <-pc.Messages():
					chk.Read(checker.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
					read++
					next = m.Offset + 1
				case e := <-pc.Errors():
					t.Fatalf("consume %s/%d: %v", topic, o.Partition, e)
				case <-ctx.Done():
					t.Fatalf("consumed %d records: %v", read, ctx.Err())
				}
			}
		})
		if read != syncN+asyncN {
			t.Fatalf("read %d records, want %d", read, syncN+asyncN)
		}
		if rep := chk.Verify(0); !rep.OK() {
			t.Fatal(rep)
		}
	})
}

// startSaramaLoad is a kafkaLoad through Sarama's idempotent async
// producer, with retries for leaders that move: 30 attempts 250 ms apart,
// where Sarama's default (3 attempts 100 ms apart) is shorter than any
// Kafka cluster's leader election.
func startSaramaLoad(t *testing.T, ctx context.Context, addr, topic string) *kafkaLoad {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Flush.Frequency = 2 * time.Millisecond
	cfg.Producer.Retry.Max = 30
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := newKafkaLoad("Sarama", topic)
	reported := make(chan struct{})
	go func() { // until AsyncClose has reported every record
		defer close(reported)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case m, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				l.done(m.Metadata.(string), m.Partition, m.Offset, nil)
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				l.done(e.Msg.Metadata.(string), e.Msg.Partition, -1, e.Err)
			}
		}
	}()
	flush := func(ctx context.Context) error {
		p.AsyncClose()
		select {
		case <-reported:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.start(func(v string) {
		select {
		case p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v), Metadata: v}:
		case <-ctx.Done():
			l.done(v, -1, -1, ctx.Err())
		}
	}, flush)
}
