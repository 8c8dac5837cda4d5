package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// startKafkaCluster starts a cluster whose proxy also serves the Kafka
// protocol, and returns the Kafka address. The proxy starts its Kafka
// listener before its gRPC health turns SERVING, so the address is ready
// when StartCluster returns.
func startKafkaCluster(t testing.TB, opts ClusterOptions) (*Cluster, string) {
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
func kgoClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kgoCreateTopic creates a topic through the Kafka protocol.
func kgoCreateTopic(t testing.TB, ctx context.Context, addr, topic string, partitions int32) {
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
	ends := make(chan map[int32]int64, 1)
	ends <- kgoEndOffsets(t, ctx, addr, topic)
	read, err := kgoConsume(ctx, kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), chk, ends)
	if err != nil {
		t.Fatal(err)
	}
	return read
}

// kgoEndOffsets returns the end offset of every partition of topic.
func kgoEndOffsets(t *testing.T, ctx context.Context, addr, topic string) map[int32]int64 {
	t.Helper()
	ends, err := kadm.NewClient(kgoClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// kgoConsume polls a franz-go consumer, recording each record in chk, until
// it has read up to the end offsets it receives on ends (once they are
// known), and returns how many records below them it read. It may run in
// its own goroutine.
func kgoConsume(ctx context.Context, cl *kgo.Client, chk *checker.Checker, ends <-chan map[int32]int64) (int, error) {
	var want map[int32]int64
	next := map[int32]int64{} // per partition, the offset after the last read
	read := 0
	done := func() bool {
		if want == nil {
			return false
		}
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		select {
		case want = <-ends:
			continue
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return read, fmt.Errorf("consumed %d records: %w", read, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return read, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			if want == nil || r.Offset < want[r.Partition] {
				read++
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	return read, nil
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
	t.Run("SIGTERM stops the proxy within 2s with Kafka clients connected", func(t *testing.T) {
		cons := kgoClient(t, addr, kgo.ConsumeTopics("from-sdk"), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
			kgo.FetchMaxWait(30*time.Second))
		polled := make(chan struct{})
		go func() { defer close(polled); cons.PollFetches(ctx) }()
		if err := kgoClient(t, addr).Ping(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Proxy.Stop()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("proxy took %v to exit after SIGTERM, want under 2s", d)
		}
		cons.Close()
		<-polled
	})
}

// TestKafkaFailover keeps an idempotent franz-go producer and a franz-go
// consumer (reading from the start all along, following the leader epochs
// as partitions move) running through the Kafka port while one broker is
// killed with SIGKILL (its partitions move at once), another is drained,
// and then the only proxy is killed and restarted 15 s later: no
// acknowledged record is lost, none is stored twice, and offsets stay
// dense.
func TestKafkaFailover(t *testing.T) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "kafka-failover"
	kgoCreateTopic(t, ctx, addr, topic, 8)
	cl := c.Client(client.AdminAttempts(20))
	waitStatus(t, ctx, cl, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })

	chk := checker.New()
	prod := kgoClient(t, addr, kgo.RecordDeliveryTimeout(5*time.Minute), kgo.ProducerLinger(2*time.Millisecond))
	var (
		acked, failed atomic.Int64
		firstErr      atomic.Value
		stop          = make(chan struct{})
		produced      = make(chan struct{})
	)
	go func() {
		defer close(produced)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 8 {
				r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "v-%09d", i)}
				i++
				prod.Produce(ctx, r, func(r *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					acked.Add(1)
					chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
				})
			}
		}
	}()
	waitFor(t, "first acknowledgements", func() bool { return acked.Load() >= 2000 })
	// A consumer reads from the start throughout the faults.
	ends := make(chan map[int32]int64, 1)
	type result struct {
		read int
		err  error
	}
	consumed := make(chan result, 1)
	cons := kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	go func() {
		n, err := kgoConsume(ctx, cons, chk, ends)
		consumed <- result{n, err}
	}()

	c.Brokers[0].Kill()
	waitStatus(t, ctx, cl, "broker-0's partitions moved", func(st *client.ClusterStatus) bool {
		return !live(st, "broker-0") && len(st.Unassigned) == 0
	})
	before := acked.Load()
	waitFor(t, "acknowledgements after the kill", func() bool { return acked.Load() >= before+2000 })
	if _, err := cl.DrainBroker(ctx, "broker-1"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, "broker-1 drained", func(st *client.ClusterStatus) bool { return owned(st, "broker-1") == 0 && len(st.Unassigned) == 0 })
	before = acked.Load()
	waitFor(t, "acknowledgements after the drain", func() bool { return acked.Load() >= before+2000 })

	// The only proxy is killed and comes back on the same address 15 s
	// later. The producer resends what was in flight with the same
	// producer id and sequence numbers, which the brokers deduplicate;
	// the consumer reconnects and goes on from its position.
	c.Proxy.Kill()
	time.Sleep(15 * time.Second) // the outage itself
	restartProcess(t, c.Proxy, c.ProxyAddr)
	before = acked.Load()
	waitFor(t, "acknowledgements after the proxy came back", func() bool { return acked.Load() >= before+2000 })

	close(stop)
	<-produced
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d records failed, first: %v", n, firstErr.Load())
	}
	ends <- kgoEndOffsets(t, ctx, addr, topic)
	res := <-consumed
	if res.err != nil {
		t.Fatal(res.err)
	}
	read := res.read
	rep := chk.Verify(0)
	t.Logf("acked %d, read %d: %v", acked.Load(), read, rep)
	if !rep.OK() || rep.Acked != int(acked.Load()) {
		t.Fatalf("invariants violated: %v", rep)
	}
	if read != int(acked.Load()) {
		t.Fatalf("read %d records, acknowledged %d: the idempotent producer stored %d records more than once or unacknowledged",
			read, acked.Load(), read-int(acked.Load()))
	}
}
