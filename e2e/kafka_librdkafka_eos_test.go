//go:build cgo

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestKafkaLibrdkafkaExactlyOnce runs librdkafka's consume-transform-produce
// pattern (a read_committed group consumer without auto-commit, and a
// transactional producer that sends the consumer's offsets with its group
// metadata, KIP-447, in the transaction of its output) through the faults
// of TestKafkaExactlyOnceThroughFaults: every input record must be in the
// output once.
func TestKafkaLibrdkafkaExactlyOnce(t *testing.T) {
	runEOSThroughFaults(t, "rdk-eos", sessionLoop(runRdkEOSSession))
}

// runRdkEOSSession copies records from in to out with transactional id
// "rdk-eos-<name>" until ctx ends or a transaction fails; the caller then
// starts a new session, whose producer fences this one's.
func runRdkEOSSession(ctx context.Context, addr, name, in, out, group string) {
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "group.id": group, "enable.auto.commit": false,
		"auto.offset.reset": "earliest", "isolation.level": "read_committed",
		"session.timeout.ms": 10000, "log_level": 3,
	})
	if err != nil {
		return
	}
	defer cons.Close()
	prod, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "transactional.id": "rdk-eos-" + name,
		"transaction.timeout.ms": 60000, "linger.ms": 5, "log_level": 3,
	})
	if err != nil {
		return
	}
	defer prod.Close()
	// rebalances counts the group's rebalances; the callback runs inside
	// Poll, on this goroutine, and leaves the (eager) assignment to the
	// library.
	rebalances := 0
	counted := func(*kafka.Consumer, kafka.Event) error { rebalances++; return nil }
	if err := prod.InitTransactions(ctx); err != nil || cons.Subscribe(in, counted) != nil {
		return
	}
	for ctx.Err() == nil {
		msgs := rdkPollBatch(cons, 500, &rebalances)
		if len(msgs) == 0 {
			continue
		}
		if err := rdkTransform(ctx, cons, prod, out, msgs); err != nil {
			// Abort even when stopping (ctx ended), as an application
			// shutting down does: an open transaction would hold the
			// group's staged offsets until it timed out.
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = prod.AbortTransaction(actx)
			cancel()
			return
		}
	}
}

// rdkPollBatch returns up to n messages, as many as arrive before a poll
// of 100 ms finds none. The messages polled before a rebalance (a Poll
// that moved *rebalances) are dropped, as a transactional application
// must drop them: their partitions may be another member's now, and it
// reads them from the committed offsets; those that stay this member's
// are fetched again from the committed offsets too. Kept, they would be
// committed with the new generation's metadata, which the group
// coordinator accepts, Kafka's as Strata's.
func rdkPollBatch(cons *kafka.Consumer, n int, rebalances *int) []*kafka.Message {
	var msgs []*kafka.Message
	for len(msgs) < n {
		before := *rebalances
		ev := cons.Poll(100)
		if *rebalances != before {
			msgs = nil
		}
		if ev == nil {
			break
		}
		if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error == nil {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// rdkTransform copies msgs to out and commits them with the consumer's
// offsets past them in one transaction. A member the group dropped
// meanwhile (its generation moved on without it) fails the offset commit,
// and the transaction must abort; a rebalance this member takes part in
// waits for its next Poll (rdkPollBatch).
func rdkTransform(ctx context.Context, cons *kafka.Consumer, prod *kafka.Producer, out string, msgs []*kafka.Message) error {
	if err := prod.BeginTransaction(); err != nil {
		return err
	}
	dr := make(chan kafka.Event, len(msgs))
	next := map[int32]kafka.TopicPartition{}
	for _, m := range msgs {
		if err := prod.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &out, Partition: kafka.PartitionAny},
			Key: m.Key, Value: m.Value}, dr); err != nil {
			return err
		}
		tp := m.TopicPartition
		tp.Offset++
		next[tp.Partition] = tp
	}
	for range msgs {
		select {
		case ev := <-dr:
			if err := ev.(*kafka.Message).TopicPartition.Error; err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	offsets := make([]kafka.TopicPartition, 0, len(next))
	for _, tp := range next {
		offsets = append(offsets, tp)
	}
	meta, err := cons.GetConsumerGroupMetadata()
	if err != nil {
		return err
	}
	if err := prod.SendOffsetsToTransaction(ctx, offsets, meta); err != nil {
		return err
	}
	return prod.CommitTransaction(ctx)
}
