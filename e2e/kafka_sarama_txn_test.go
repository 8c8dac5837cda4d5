package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/strata-mq/strata/internal/checker"
)

// TestKafkaSaramaTransactions runs Sarama's transactional producer: 12
// transactions of 30 records over 3 partitions, every third aborted, one
// broker killed (SIGKILL) after the fourth. Sarama's consumer at
// read_committed, which drops aborted records itself from the aborted
// transactions a fetch lists, then reads every record of every committed
// transaction once, at the offset its producer was told, and none of an
// aborted one (checker).
func TestKafkaSaramaTransactions(t *testing.T) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic, txns, perTxn = "sarama-txn", 13, 30
	kgoCreateTopic(t, ctx, addr, topic, 3)
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-e2e"
	cfg.Producer.Retry.Max = 30
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	chk := checker.New()
	committed := 0
	for i := range txns {
		if i == 4 {
			c.Brokers[0].Kill()
		}
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		batch := make([]*sarama.ProducerMessage, perTxn)
		for j := range batch {
			batch[j] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", j)),
				Value: sarama.StringEncoder(fmt.Sprintf("sarama-txn-%03d-%03d", i, j))}
		}
		if err := p.SendMessages(batch); err != nil {
			t.Fatalf("transaction %d: send: %v", i, err)
		}
		if i%3 == 2 {
			if err := p.AbortTxn(); err != nil {
				t.Fatalf("abort %d: %v", i, err)
			}
			continue
		}
		if err := p.CommitTxn(); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		committed++
		for _, m := range batch {
			k, _ := m.Key.Encode()
			v, _ := m.Value.Encode()
			chk.Acked(checker.Record{Topic: topic, Partition: m.Partition, Offset: m.Offset, Key: k, Value: v})
		}
	}
	saramaReadCommitted(t, ctx, addr, topic, 3, chk)
	if rep := chk.VerifySkipping(0); !rep.OK() || rep.ReadUnacked != 0 || rep.Acked != committed*perTxn {
		t.Fatalf("%v (want %d records of committed transactions, none of aborted ones)", rep, committed*perTxn)
	}
}

// saramaReadCommitted reads every partition of topic from the start with
// Sarama's partition consumers at read_committed until it has read as
// many records as chk holds acknowledged.
func saramaReadCommitted(t *testing.T, ctx context.Context, addr, topic string, partitions int32, chk *checker.Checker) {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	msgs, done := make(chan *sarama.ConsumerMessage), make(chan struct{})
	var wg sync.WaitGroup
	var pcs []sarama.PartitionConsumer
	defer func() { // stop the readers, then close their consumers, then wait
		close(done)
		for _, pc := range pcs {
			pc.Close()
		}
		wg.Wait()
	}()
	for p := range partitions {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		wg.Go(func() {
			for m := range pc.Messages() {
				select {
				case msgs <- m:
				case <-done:
					return
				}
			}
		})
	}
	for read, want := 0, chk.AckedCount(); read < want; read++ {
		select {
		case m := <-msgs:
			chk.Read(checker.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
		case <-ctx.Done():
			t.Fatalf("read %d of %d records: %v", read, want, ctx.Err())
		}
	}
}
