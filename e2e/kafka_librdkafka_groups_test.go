//go:build cgo

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
)

// rdkMember is one librdkafka group consumer polling in a goroutine,
// which also closes it (a librdkafka consumer is not to be closed while
// another goroutine polls it). It stores each record's offset for the
// auto-commit only once the record is recorded (enable.auto.offset.store
// off): Close polls the consumer's queue itself and drops what it gets,
// and with the automatic store those dropped records' offsets would be
// committed as if the application had read them — the client's
// behaviour against any broker, not the group's.
type rdkMember struct {
	done chan error
	stop context.CancelFunc
}

func startRdkMember(t *testing.T, ctx context.Context, cfg kafka.ConfigMap, topic string, reads *groupReads) *rdkMember {
	t.Helper()
	c, err := kafka.NewConsumer(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	m := &rdkMember{done: make(chan error, 1), stop: stop}
	go func() {
		var failed error
		for pctx.Err() == nil && failed == nil {
			switch ev := c.Poll(100).(type) {
			case *kafka.Message:
				tp := ev.TopicPartition
				reads.add(checker.Record{Topic: *tp.Topic, Partition: tp.Partition, Offset: int64(tp.Offset), Key: ev.Key, Value: ev.Value})
				if _, err := c.StoreMessage(ev); err != nil {
					failed = err
				}
			case kafka.Error:
				if ev.IsFatal() {
					failed = ev
				}
			}
		}
		if err := c.Close(); failed == nil {
			failed = err
		}
		m.done <- failed
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops polling; the consumer commits what it returned and leaves.
// It is safe to call twice.
func (m *rdkMember) close(t *testing.T) {
	if m.done == nil {
		return
	}
	m.stop()
	if err := <-m.done; err != nil {
		t.Error(err)
	}
	m.done = nil
}

// TestKafkaLibrdkafkaGroups consumes 100,000 records with librdkafka
// group consumers, with the classic protocol (cooperative-sticky) and with
// group.protocol=consumer (KIP-848), while members join and leave: every
// acknowledged record is read at its offset and the group ends with zero
// lag.
func TestKafkaLibrdkafkaGroups(t *testing.T) {
	for _, tc := range []struct {
		protocol, assignor string
		extra              kafka.ConfigMap
	}{
		{"classic", "cooperative-sticky", kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky",
			"session.timeout.ms": 10000, "heartbeat.interval.ms": 300}},
		{"consumer", "sticky", kafka.ConfigMap{}},
	} {
		t.Run(tc.protocol, func(t *testing.T) { rdkGroupRun(t, tc.protocol, tc.assignor, tc.extra) })
	}
}

func rdkGroupRun(t *testing.T, protocol, assignor string, extra kafka.ConfigMap) {
	const (
		records = 100_000
		topic   = "kafka-rdk-group"
	)
	group := "rdk-" + protocol
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, topic, 8)
	chk := checker.New()
	reads := newGroupReads()
	producer := kgoClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	kgoProduceAll(t, ctx, producer, chk, topic, "first", records/2)

	cfg := kafka.ConfigMap{"bootstrap.servers": addr, "group.id": group, "group.protocol": protocol,
		"auto.offset.reset": "earliest", "enable.auto.commit": true, "enable.auto.offset.store": false,
		"auto.commit.interval.ms": 200, "log_level": 3}
	for k, v := range extra {
		cfg[k] = v
	}
	a := startRdkMember(t, ctx, cfg, topic, reads)
	b := startRdkMember(t, ctx, cfg, topic, reads)
	waitReads(t, ctx, reads, records/8)
	d, err := c.Client().DescribeGroup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d.Assignor != assignor || len(d.MemberInfo) == 0 {
		t.Fatalf("group while consuming: assignor %q with %d members, want %q", d.Assignor, len(d.MemberInfo), assignor)
	}
	cm := startRdkMember(t, ctx, cfg, topic, reads)
	kgoProduceAll(t, ctx, producer, chk, topic, "second", records/2)
	waitReads(t, ctx, reads, records*3/4)
	a.close(t)
	waitReads(t, ctx, reads, records)
	waitLagZero(t, ctx, c, group)
	b.close(t)
	cm.close(t)

	dups := reads.feed(chk)
	rep := chk.Verify(0)
	t.Logf("checker: %v; %d records read more than once", rep, dups)
	if !rep.OK() || rep.Acked != records {
		t.Fatalf("checker: %v (want %d acknowledged)", rep, records)
	}
	checkGroupCaughtUp(t, ctx, c, group, 8)
}
