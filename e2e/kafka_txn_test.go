//go:build cgo

package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/strata-mq/strata/internal/checker"
)

// TestKafkaTransactions runs librdkafka's transactional producer through
// a broker killed with SIGKILL and brought back, and the only proxy —
// every transaction coordinator there is — killed between a transaction's
// records and its commit: 31 transactions of 40 records over 4
// partitions, every third aborted (the last one commits, so a reader of
// every committed record passes every aborted one). A librdkafka consumer at
// read_committed (its default) then reads every record of every committed
// transaction exactly once, at the offset its producer was told, and no
// record of an aborted one (checker).
func TestKafkaTransactions(t *testing.T) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic, txns, perTxn = "txn", 31, 40
	kgoCreateTopic(t, ctx, addr, topic, 4)
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "transactional.id": "e2e-txn", "linger.ms": 5, "log_level": 3,
		"transaction.timeout.ms": 60000,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	chk := checker.New()
	committed, aborted := 0, 0
	for i := range txns {
		switch i {
		case 8:
			c.Brokers[0].Kill()
		case 12:
			if err := c.Brokers[0].Start(); err != nil {
				t.Fatal(err)
			}
		}
		recs := produceTxn(t, ctx, p, topic, i, perTxn, func() {
			if i == 20 { // the records are in; the coordinator goes away before the commit
				c.Proxy.Kill()
				restartProcess(t, c.Proxy, c.ProxyAddr)
			}
		})
		if endTxn(t, ctx, p, recs != nil && i%3 != 2) {
			committed++
			for _, r := range recs {
				chk.Acked(r)
			}
		} else {
			aborted++
		}
	}
	t.Logf("%d transactions committed, %d aborted", committed, aborted)
	if committed < txns/2 {
		t.Fatalf("only %d of %d transactions committed", committed, txns)
	}
	readCommitted(t, ctx, addr, topic, chk)
	if rep := chk.VerifySkipping(0); !rep.OK() || rep.ReadUnacked != 0 || rep.Acked != committed*perTxn {
		t.Fatalf("%v (want %d records of committed transactions, none of aborted ones)", rep, committed*perTxn)
	}
}

// produceTxn begins transaction i and produces n records in it, calls
// between once they are all delivered, and returns them with their
// offsets, or nil if a delivery failed (the transaction must abort).
func produceTxn(t *testing.T, ctx context.Context, p *kafka.Producer, topic string, i, n int, between func()) []checker.Record {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatalf("begin %d: %v", i, err)
	}
	dr := make(chan kafka.Event, n)
	for j := range n {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key: fmt.Appendf(nil, "k%d", j), Value: fmt.Appendf(nil, "txn-%03d-%03d", i, j)}
		if err := p.Produce(m, dr); err != nil {
			t.Fatalf("produce %d/%d: %v", i, j, err)
		}
	}
	var recs []checker.Record
	failed := false
	for range n {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				failed = true
				continue
			}
			recs = append(recs, checker.Record{Topic: topic, Partition: m.TopicPartition.Partition,
				Offset: int64(m.TopicPartition.Offset), Key: m.Key, Value: m.Value})
		case <-ctx.Done():
			t.Fatalf("transaction %d: deliveries: %v", i, ctx.Err())
		}
	}
	between()
	if failed {
		return nil
	}
	return recs
}

// endTxn commits (commit) or aborts the open transaction, retrying a
// commit whose outcome is not yet known, and reports whether it
// committed. A commit that must abort is aborted.
func endTxn(t *testing.T, ctx context.Context, p *kafka.Producer, commit bool) bool {
	t.Helper()
	for commit {
		err := p.CommitTransaction(ctx)
		if err == nil {
			return true
		}
		var kerr kafka.Error
		switch {
		case !errors.As(err, &kerr) || kerr.IsFatal():
			t.Fatalf("commit: %v", err)
		case kerr.TxnRequiresAbort():
			t.Logf("commit refused, aborting: %v", err)
			commit = false
		case !kerr.IsRetriable():
			t.Fatalf("commit: %v", err)
		}
	}
	for {
		err := p.AbortTransaction(ctx)
		if err == nil {
			return false
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) || !kerr.IsRetriable() {
			t.Fatalf("abort: %v", err)
		}
	}
}

// readCommitted reads every partition of topic from the start with a
// librdkafka consumer at read_committed until it has read every record
// chk holds as acknowledged.
func readCommitted(t *testing.T, ctx context.Context, addr, topic string, chk *checker.Checker) {
	t.Helper()
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": addr, "group.id": "txn-reader", "enable.auto.commit": false,
		"isolation.level": "read_committed", "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var parts []kafka.TopicPartition
	for p := range int32(4) {
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := cons.Assign(parts); err != nil {
		t.Fatal(err)
	}
	want := chk.AckedCount()
	for read := 0; read < want; {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", read, want, ctx.Err())
		}
		ev := cons.Poll(100)
		switch e := ev.(type) {
		case *kafka.Message:
			chk.Read(checker.Record{Topic: topic, Partition: e.TopicPartition.Partition,
				Offset: int64(e.TopicPartition.Offset), Key: e.Key, Value: e.Value})
			read++
		case kafka.Error:
			t.Logf("consumer: %v", e)
		}
	}
}
