package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/strata-mq/strata/internal/checker"
)

// saramaMember is one Sarama consumer group member consuming in a
// goroutine until stopped.
type saramaMember struct {
	g    sarama.ConsumerGroup
	done chan error
	stop context.CancelFunc
}

// saramaHandler records every message and marks it, so Sarama commits
// exactly what was read.
type saramaHandler struct{ reads *groupReads }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.reads.add(checker.Record{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset, Key: msg.Key, Value: msg.Value})
		sess.MarkMessage(msg, "")
	}
	return nil
}

// startSaramaMember starts a member of group reading topic. With
// retryErrors, an error of Consume (the group's coordinator or the proxy
// away) is logged and Consume called again, as an application does;
// otherwise it ends the member and fails the test at close.
func startSaramaMember(t *testing.T, ctx context.Context, addr, group, topic string, reads *groupReads, retryErrors bool) *saramaMember {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "sarama-e2e"
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin(), sarama.NewBalanceStrategyRange()}
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
	g, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	m := &saramaMember{g: g, done: make(chan error, 1), stop: stop}
	go func() {
		failures := 0
		for cctx.Err() == nil {
			err := g.Consume(cctx, []string{topic}, saramaHandler{reads})
			if err == nil || cctx.Err() != nil {
				continue
			}
			if failures++; failures == 1 || !retryErrors {
				t.Logf("sarama consume: %v", err)
			}
			if !retryErrors {
				m.done <- err
				return
			}
			select {
			case <-cctx.Done():
			case <-time.After(100 * time.Millisecond): // the application's retry backoff
			}
		}
		if failures > 1 {
			t.Logf("sarama consume: %d errors, each retried", failures)
		}
		m.done <- nil
	}()
	t.Cleanup(func() { m.close(t) })
	return m
}

// close stops consuming, which commits what was marked, and leaves the
// group. It is safe to call twice.
func (m *saramaMember) close(t *testing.T) {
	if m.g == nil {
		return
	}
	m.stop()
	if err := <-m.done; err != nil {
		t.Error(err)
	}
	if err := m.g.Close(); err != nil {
		t.Error(err)
	}
	m.g = nil
}

// TestKafkaSaramaConsumerGroup consumes 100,000 records with a Sarama
// consumer group (classic protocol, roundrobin assignor) while members
// join and leave: every acknowledged record is read at its offset, and
// the group ends with zero lag in `strata group describe`.
func TestKafkaSaramaConsumerGroup(t *testing.T) {
	const topic, group = "kafka-sarama", "sarama-group"
	groupRun(t, groupScenario{
		topic: topic, group: group, assignor: "roundrobin", listDelete: true,
		join: func(t *testing.T, ctx context.Context, addr string, reads *groupReads) groupMember {
			return startSaramaMember(t, ctx, addr, group, topic, reads, false)
		},
	})
}

// TestKafkaSaramaGroupErrorCodes sends Sarama's own classic group
// requests with ids no member can have, through the real proxy, and checks
// the Kafka codes Sarama's consumer group acts on: INVALID_GROUP_ID for an
// empty group id, INVALID_SESSION_TIMEOUT for a session timeout out of
// range, UNKNOWN_MEMBER_ID (rejoin) for a member id the group never gave.
func TestKafkaSaramaGroupErrorCodes(t *testing.T) {
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 1})
	b := sarama.NewBroker(addr)
	if err := b.Open(saramaConfig()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	join := func(group string, session int32) sarama.KError {
		req := &sarama.JoinGroupRequest{Version: 5, GroupId: group, SessionTimeout: session, RebalanceTimeout: 10_000, ProtocolType: "consumer"}
		req.AddGroupProtocol("range", nil)
		resp, err := b.JoinGroup(req)
		if err != nil {
			t.Fatalf("JoinGroup of %q: %v", group, err)
		}
		return resp.Err
	}
	want := func(what string, got, want sarama.KError) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	want("JoinGroup of an empty group id", join("", 10_000), sarama.ErrInvalidGroupId)
	want("JoinGroup with a 0 ms session timeout", join("codes", 0), sarama.ErrInvalidSessionTimeout)
	want("JoinGroup with a 6 min session timeout", join("codes", 360_000), sarama.ErrInvalidSessionTimeout)

	hb, err := b.Heartbeat(&sarama.HeartbeatRequest{Version: 3, GroupId: "codes", GenerationId: 1})
	if err != nil {
		t.Fatal(err)
	}
	want("Heartbeat without a member id", hb.Err, sarama.ErrUnknownMemberId)
	sync, err := b.SyncGroup(&sarama.SyncGroupRequest{Version: 3, GroupId: "codes", GenerationId: 1})
	if err != nil {
		t.Fatal(err)
	}
	want("SyncGroup without a member id", sync.Err, sarama.ErrUnknownMemberId)
	hb, err = b.Heartbeat(&sarama.HeartbeatRequest{Version: 3, GroupId: "codes", GenerationId: 1, MemberId: "never-joined"})
	if err != nil {
		t.Fatal(err)
	}
	want("Heartbeat of a member the group never gave an id", hb.Err, sarama.ErrUnknownMemberId)
}
