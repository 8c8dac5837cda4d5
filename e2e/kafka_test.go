package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
)

// startKafkaCluster starts a cluster whose proxy also serves the Kafka
// protocol, and returns the Kafka address. The proxy starts its Kafka
// listener before its gRPC health turns SERVING, so the address is ready
// when StartCluster returns.
func startKafkaCluster(t *testing.T, opts ClusterOptions) (*Cluster, string) {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	opts.ProxyArgs = append(opts.ProxyArgs, "-kafka-addr", addr)
	return StartCluster(t, opts), addr
}

// kgoClient returns a franz-go client of a Kafka address, closed when the
// test ends.
func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kgoCreateTopic creates a topic through the Kafka protocol.
func kgoCreateTopic(t *testing.T, ctx context.Context, addr, topic string, partitions int32) {
	t.Helper()
	resp, err := kadm.NewClient(kgoClient(t, addr)).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// kgoProduceAll produces n records through a franz-go producer and records
// every acknowledgement in chk. Values carry tag and the record's number,
// so they are unique across calls with different tags.
func kgoProduceAll(t *testing.T, ctx context.Context, cl *kgo.Client, chk *checker.Checker, topic, tag string, n int) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "key-%d", i%1000), Value: fmt.Appendf(nil, "%s-%08d-%s", tag, i, pad)}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
}

// kgoConsumeAll reads every partition of topic from the start with a
// franz-go consumer until it has read up to each partition's end offset,
// recording each record in chk, and returns how many it read.
func kgoConsumeAll(t *testing.T, ctx context.Context, addr string, chk *checker.Checker, topic string) int {
	t.Helper()
	ends, err := kadm.NewClient(kgoClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		total += o.Offset
	})
	cl := kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	read := int64(0)
	for read < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", read, total, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			if r.Offset < want[r.Partition] {
				read++
			}
		})
	}
	return int(read)
}

// TestKafkaFranzGo produces 100,000 records through the Kafka listener of a
// real proxy with idempotent franz-go producers — 20,000 with each codec,
// which the brokers store untouched — and consumes them back with a
// franz-go consumer: every acknowledged record is read exactly once at its
// acknowledged offset, offsets dense per partition.
func TestKafkaFranzGo(t *testing.T) {
	const perCodec = 20_000
	_, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "kafka-franz"
	kgoCreateTopic(t, ctx, addr, topic, 8)
	chk := checker.New()
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		p := kgoClient(t, addr, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(5*time.Millisecond))
		kgoProduceAll(t, ctx, p, chk, topic, name, perCodec)
	}
	if got := chk.AckedCount(); got != 5*perCodec {
		t.Fatalf("%d records acknowledged, want %d", got, 5*perCodec)
	}
	read := kgoConsumeAll(t, ctx, addr, chk, topic)
	if rep := chk.Verify(0); !rep.OK() {
		t.Fatal(rep)
	}
	t.Logf("%d records produced with 5 codecs and read back", read)
}

// TestKafkaMixed shows one truth for both protocols: records produced with
// a Kafka client are read by the Strata SDK, and records produced with the
// SDK are read by a Kafka client, each checked record by record.
func TestKafkaMixed(t *testing.T) {
	const n = 20_000
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := c.Client()

	t.Run("kafka to sdk", func(t *testing.T) {
		kgoCreateTopic(t, ctx, addr, "from-kafka", 4)
		chk := checker.New()
		kgoProduceAll(t, ctx, kgoClient(t, addr), chk, "from-kafka", "kgo", n)
		if read := consumeAll(t, ctx, cl, chk, "from-kafka"); read != n {
			t.Fatalf("SDK read %d records, want %d", read, n)
		}
		if rep := chk.Verify(0); !rep.OK() {
			t.Fatal(rep)
		}
	})
	t.Run("sdk to kafka", func(t *testing.T) {
		if _, err := cl.CreateTopic(ctx, "from-sdk", 4); err != nil {
			t.Fatal(err)
		}
		p, err := cl.NewProducer()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		chk := checker.New()
		produceAll(t, ctx, p, chk, "from-sdk", n)
		if read := kgoConsumeAll(t, ctx, addr, chk, "from-sdk"); read != n {
			t.Fatalf("franz-go read %d records, want %d", read, n)
		}
		if rep := chk.Verify(0); !rep.OK() {
			t.Fatal(rep)
		}
	})
}
