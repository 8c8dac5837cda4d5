//go:build cgo

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/auth"
)

// TestKafkaSCRAM signs Kafka clients in with SASL/SCRAM against a real
// proxy whose token file was written by auth.TokenLine (what `strata acl
// token` prints), the token as password: librdkafka produces with
// SCRAM-SHA-512 and idempotence, Sarama with SCRAM-SHA-256, franz-go reads
// everything back with SCRAM-SHA-512 (checker: every acknowledged record
// once, at its offset). A wrong password is refused.
func TestKafkaSCRAM(t *testing.T) {
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("app", tok)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Anonymous callers are let in too, so that the test's own helpers
	// can create the topic and list offsets without credentials.
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2, ProxyArgs: []string{"-auth-token-file", tokens, "-auth-allow-anonymous"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "kafka-scram"
	kgoCreateTopic(t, ctx, addr, topic, 4)
	chk := checker.New()

	rdkProduceSCRAM(t, ctx, addr, tok, topic, chk, 2000)
	saramaProduceSCRAM(t, addr, tok, topic, chk, 500)
	if got := chk.AckedCount(); got != 2500 {
		t.Fatalf("%d records acknowledged, want 2500", got)
	}
	ends := make(chan map[int32]int64, 1)
	ends <- kgoEndOffsets(t, ctx, addr, topic)
	reader := kgoClient(t, addr, kgo.SASL(scram.Auth{User: "app", Pass: tok}.AsSha512Mechanism()),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if _, err := kgoConsume(ctx, reader, chk, ends); err != nil {
		t.Fatal(err)
	}
	if rep := chk.Verify(0); !rep.OK() {
		t.Fatal(rep)
	}

	wrong, err := kafka.NewProducer(rdkSCRAMConfig(addr, "SCRAM-SHA-512", tok+"x"))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, err := wrong.GetMetadata(nil, true, 5000); err == nil {
		t.Fatal("librdkafka with a wrong SCRAM password got metadata")
	}
}

// rdkSCRAMConfig is a librdkafka configuration that signs in as app.
func rdkSCRAMConfig(addr, mech, password string) *kafka.ConfigMap {
	return &kafka.ConfigMap{"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
		"sasl.mechanism": mech, "sasl.username": "app", "sasl.password": password, "log_level": 3}
}

// rdkProduceSCRAM produces n records with an idempotent librdkafka
// producer signed in with SCRAM-SHA-512, recording each acknowledgement.
func rdkProduceSCRAM(t *testing.T, ctx context.Context, addr, tok, topic string, chk *checker.Checker, n int) {
	t.Helper()
	cfg := rdkSCRAMConfig(addr, "SCRAM-SHA-512", tok)
	_ = cfg.SetKey("enable.idempotence", true)
	p, err := kafka.NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	acks := make(chan kafka.Event, n)
	for i := range n {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "rdk-scram-%06d", i)}
		if err := p.Produce(m, acks); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	for range n {
		select {
		case ev := <-acks:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				t.Fatalf("librdkafka delivery: %v", m.TopicPartition.Error)
			}
			chk.Acked(checker.Record{Topic: topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), Key: m.Key, Value: m.Value})
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// saramaProduceSCRAM produces n records with a Sarama sync producer
// signed in with SCRAM-SHA-256, recording each acknowledgement.
func saramaProduceSCRAM(t *testing.T, addr, tok, topic string, chk *checker.Checker, n int) {
	t.Helper()
	cfg := saramaConfig()
	cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLTypeSCRAMSHA256
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "app", tok
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xscram.SHA256} }
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i)), Value: sarama.StringEncoder(fmt.Sprintf("sarama-scram-%06d", i))}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("sarama: %v", err)
	}
	for i, m := range msgs {
		chk.Acked(checker.Record{Topic: topic, Partition: m.Partition, Offset: m.Offset, Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "sarama-scram-%06d", i)})
	}
}

// saramaSCRAM is Sarama's SCRAM client on xdg-go/scram, as Sarama's
// documentation shows.
type saramaSCRAM struct {
	hash xscram.HashGeneratorFcn
	conv *xscram.ClientConversation
}

func (s *saramaSCRAM) Begin(user, password, authz string) error {
	c, err := s.hash.NewClient(user, password, authz)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *saramaSCRAM) Done() bool { return s.conv.Done() }
