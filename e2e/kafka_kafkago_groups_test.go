package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	const (
		records     = 100_000
		tailRecords = 1000 // one per key kgoProduceAll uses
		topic       = "kafka-kafkago"
		group       = "kafkago-group"
	)
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, topic, 8)
	chk := checker.New()
	reads := newGroupReads()
	producer := kgoClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	kgoProduceAll(t, ctx, producer, chk, topic, "first", records/2)

	a := startKafkagoMember(t, ctx, addr, group, topic, reads)
	b := startKafkagoMember(t, ctx, addr, group, topic, reads)
	waitReads(t, ctx, reads, records/8)
	d, err := c.Client().DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d.Assignor != "range" || len(d.MemberInfo) == 0 {
		t.Fatalf("group while consuming: assignor %q with %d members, want range", d.Assignor, len(d.MemberInfo))
	}
	cm := startKafkagoMember(t, ctx, addr, group, topic, reads)
	kgoProduceAll(t, ctx, producer, chk, topic, "second", records/2)
	waitReads(t, ctx, reads, records*3/4)
	a.close(t)
	waitReads(t, ctx, reads, records)
	// A kafka-go Reader hands a commit of a record it read just before a
	// rebalance to the next generation's commit loop, which commits it
	// for a partition another member now owns — with a valid generation,
	// so Kafka accepts it too. If the new owner had already committed
	// further and has nothing left to read, that commit would stand and
	// leave the group lagging. A record for every key after the last
	// rebalance makes every owner commit past it.
	kgoProduceAll(t, ctx, producer, chk, topic, "tail", tailRecords)
	waitReads(t, ctx, reads, records+tailRecords)
	waitLagZero(t, ctx, c, group)
	b.close(t)
	cm.close(t)

	dups := reads.feed(chk)
	rep := chk.Verify(0)
	t.Logf("checker: %v; %d records read more than once", rep, dups)
	if !rep.OK() || rep.Acked != records+tailRecords {
		t.Fatalf("checker: %v (want %d acknowledged)", rep, records+tailRecords)
	}
	checkGroupCaughtUp(t, ctx, c, group, 8)
	checkKadmListDelete(t, ctx, kadm.NewClient(kgoClient(t, addr)), c, group)
}
