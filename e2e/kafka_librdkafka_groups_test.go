//go:build cgo

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/strata-mq/strata/internal/checker"
)

// rdkClassic is the configuration of librdkafka's classic-protocol
// members beyond rdkGroupConfig.
var rdkClassic = kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky", "session.timeout.ms": 10000, "heartbeat.interval.ms": 300}

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
		{"classic", "cooperative-sticky", rdkClassic},
		{"consumer", "sticky", kafka.ConfigMap{}},
	} {
		t.Run(tc.protocol, func(t *testing.T) { rdkGroupRun(t, tc.protocol, tc.assignor, tc.extra) })
	}
}

func rdkGroupRun(t *testing.T, protocol, assignor string, extra kafka.ConfigMap) {
	const topic = "kafka-rdk-group"
	group := "rdk-" + protocol
	groupRun(t, groupScenario{
		topic: topic, group: group, assignor: assignor,
		join: func(t *testing.T, ctx context.Context, addr string, reads *groupReads) groupMember {
			return startRdkMember(t, ctx, rdkGroupConfig(addr, group, protocol, extra), topic, reads)
		},
	})
}

// rdkGroupConfig configures a librdkafka member of group with protocol
// ("classic" or "consumer"), committing every 200 ms what it recorded.
func rdkGroupConfig(addr, group, protocol string, extra kafka.ConfigMap) kafka.ConfigMap {
	cfg := kafka.ConfigMap{"bootstrap.servers": addr, "group.id": group, "group.protocol": protocol,
		"auto.offset.reset": "earliest", "enable.auto.commit": true, "enable.auto.offset.store": false,
		"auto.commit.interval.ms": 200, "log_level": 3}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// TestKafkaLibrdkafkaRegexGroup subscribes librdkafka's KIP-848 consumer
// with "^rx-.*", which it hands to the coordinator to resolve: the member
// reads every record of the topics the expression matches, then of a
// matching topic created while it runs, and nothing of a topic it does
// not match (checker: no record read that was not acknowledged to it).
func TestKafkaLibrdkafkaRegexGroup(t *testing.T) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, topic := range []string{"rx-1", "rx-2", "other"} {
		kgoCreateTopic(t, ctx, addr, topic, 2)
	}
	chk := checker.New()
	producer := kgoClient(t, addr)
	kgoProduceAll(t, ctx, producer, chk, "rx-1", "one", 1000)
	kgoProduceAll(t, ctx, producer, chk, "rx-2", "two", 1000)
	kgoProduceAll(t, ctx, producer, checker.New(), "other", "other", 500)
	reads := newGroupReads()
	m := startRdkMember(t, ctx, rdkGroupConfig(addr, "rdk-regex", "consumer", nil), "^rx-.*", reads)
	rctx, rcancel := context.WithTimeout(ctx, phaseTimeout)
	waitReads(t, rctx, reads, 2000)
	rcancel()
	kgoCreateTopic(t, ctx, addr, "rx-3", 2)
	kgoProduceAll(t, ctx, producer, chk, "rx-3", "three", 1000)
	rctx, rcancel = context.WithTimeout(ctx, phaseTimeout)
	waitReads(t, rctx, reads, 3000)
	rcancel()
	if lag := waitLagZero(t, ctx, c, "rdk-regex"); lag != "" {
		t.Errorf("group lags:%s", lag)
	}
	m.close(t)
	reads.feed(chk)
	if rep := chk.Verify(0); !rep.OK() || rep.Acked != 3000 || rep.ReadUnacked != 0 {
		t.Fatalf("%v (want 3000 acknowledged, none read from other)", rep)
	}
}
