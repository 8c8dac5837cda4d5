package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// TestKafkaSaramaExactlyOnce runs Sarama's consume-transform-produce
// pattern (a read_committed consumer group without auto-commit, and a
// transactional producer that adds the consumer's offsets with the
// session's group metadata, KIP-447, to the transaction of its output)
// through the faults of TestKafkaExactlyOnceThroughFaults: every input
// record must be in the output once.
func TestKafkaSaramaExactlyOnce(t *testing.T) {
	runEOSThroughFaults(t, "sarama-eos", sessionLoop(runSaramaEOSSession))
}

// runSaramaEOSSession copies records from in to out with transactional id
// "sarama-eos-<name>" until ctx ends or a transaction fails; the caller
// then starts a new session, whose producer fences this one's.
func runSaramaEOSSession(ctx context.Context, addr, name, in, out, group string) {
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-eos-" + name
	cfg.Producer.Transaction.Timeout = time.Minute
	cfg.Producer.Retry.Max = 30
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		return
	}
	defer cg.Close()
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		return
	}
	defer prod.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &saramaEOSHandler{prod: prod, group: group, out: out, fail: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{in}, h); err != nil {
			return
		}
	}
}

// saramaEOSHandler copies each claim's records in transactions of up to
// 500, one transaction at a time (the producer has one).
type saramaEOSHandler struct {
	prod  sarama.SyncProducer
	group string
	out   string
	// fail ends the session: a failed transaction's input must be read
	// again from the committed offsets, by a new consumer.
	fail context.CancelFunc
	mu   sync.Mutex // serializes the claims' transactions
}

func (h *saramaEOSHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaEOSHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaEOSHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		msgs := saramaPollBatch(sess.Context(), claim, 500)
		if len(msgs) == 0 {
			return nil // the session ended
		}
		if err := h.transform(sess, msgs); err != nil {
			h.fail()
			return err
		}
	}
}

// saramaPollBatch returns up to n messages of claim, as many as arrive
// before 100 ms pass without one; none once ctx ends.
func saramaPollBatch(ctx context.Context, claim sarama.ConsumerGroupClaim, n int) []*sarama.ConsumerMessage {
	var msgs []*sarama.ConsumerMessage
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for len(msgs) < n {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs = append(msgs, m)
			idle.Reset(100 * time.Millisecond)
		case <-idle.C:
			return msgs
		case <-ctx.Done():
			return nil
		}
	}
	return msgs
}

// transform copies msgs to out and commits them with the offset past
// them in one transaction. A partition revoked since msgs were read makes
// the offset commit fail (the group's generation moved on), and the
// transaction must abort.
func (h *saramaEOSHandler) transform(sess sarama.ConsumerGroupSession, msgs []*sarama.ConsumerMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.prod.BeginTxn(); err != nil {
		return err
	}
	batch := make([]*sarama.ProducerMessage, len(msgs))
	for i, m := range msgs {
		batch[i] = &sarama.ProducerMessage{Topic: h.out, Key: sarama.ByteEncoder(m.Key), Value: sarama.ByteEncoder(m.Value)}
	}
	last := msgs[len(msgs)-1]
	offsets := map[string][]*sarama.PartitionOffsetMetadata{
		last.Topic: {{Partition: last.Partition, Offset: last.Offset + 1}},
	}
	err := h.prod.SendMessages(batch)
	if err == nil {
		err = h.prod.AddOffsetsToTxnWithGroupMetadata(offsets, sarama.NewConsumerGroupMetadataFromSession(sess, h.group, nil))
	}
	if err == nil {
		err = h.prod.CommitTxn()
	}
	if err != nil {
		_ = h.prod.AbortTxn()
	}
	return err
}
