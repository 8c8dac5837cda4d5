package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/strata-mq/strata/internal/checker"
)

// kafkagoMember is one segmentio/kafka-go Reader of a group, reading in a
// goroutine until stopped.
type kafkagoMember struct {
	r    *kafkago.Reader
	done chan error
	stop context.CancelFunc
}

func startKafkagoMember(t *testing.T, ctx context.Context, addr, group, topic string, reads *groupReads) *kafkagoMember {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: topic,
		MaxWait: 500 * time.Millisecond, StartOffset: kafkago.FirstOffset,
		CommitInterval: 200 * time.Millisecond, HeartbeatInterval: 300 * time.Millisecond,
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 20 * time.Second,
		GroupBalancers: []kafkago.GroupBalancer{kafkago.RangeGroupBalancer{}},
	})
	rctx, stop := context.WithCancel(ctx)
	m := &kafkagoMember{r: r, done: make(chan error, 1), stop: stop}
	go func() {
		for {
			msg, err := r.ReadMessage(rctx) // commits what it returned, every CommitInterval
			if err != nil {
				if rctx.Err() != nil || errors.Is(err, context.Canceled) {
					err = nil
				}
				m.done <- err
				return
			}
			reads.add(checker.Record{Topic: msg.Topic, Partition: int32(msg.Partition), Offset: msg.Offset, Key: msg.Key, Value: msg.Value})
		}
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops reading and closes the reader, which commits what it
// returned and leaves the group. It is safe to call twice.
func (m *kafkagoMember) close(t *testing.T) {
	if m.r == nil {
		return
	}
	m.stop()
	if err := <-m.done; err != nil {
		t.Error(err)
	}
	if err := m.r.Close(); err != nil {
		t.Error(err)
	}
	m.r = nil
}

// TestKafkaKafkagoReaderGroup consumes 100,000 records with
// segmentio/kafka-go Readers of one group (classic protocol, range
// assignor) while members join and leave: every acknowledged record is
// read at its offset, and the group ends with zero lag.
func TestKafkaKafkagoReaderGroup(t *testing.T) {
	const topic, group = "kafka-kafkago", "kafkago-group"
	groupRun(t, groupScenario{
		topic: topic, group: group, assignor: "range", listDelete: true,
		join: func(t *testing.T, ctx context.Context, addr string, reads *groupReads) groupMember {
			return startKafkagoMember(t, ctx, addr, group, topic, reads)
		},
	})
}
