package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// produceAll produces n keyed records to topic and records every
// acknowledgement in chk. It fails the test on any delivery error.
func produceAll(t *testing.T, ctx context.Context, p *client.Producer, chk *checker.Checker, topic string, n int) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		r := &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "key-%d", i%1000), Value: fmt.Appendf(nil, "value-%08d-%s", i, pad)}
		p.Produce(ctx, r, func(r *client.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
}

// pad makes each record about 100 bytes.
var pad = string(make([]byte, 80))

// consumeAll reads every partition of topic from the beginning until it
// has read up to each partition's high watermark, recording each record in
// chk.
func consumeAll(t *testing.T, ctx context.Context, cl *client.Client, chk *checker.Checker, topic string) int {
	t.Helper()
	info, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	total := int64(0)
	for _, p := range info.PartitionInfo {
		want[p.Partition] = p.HighWatermark
		total += p.HighWatermark
	}
	c, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Assign(topic); err != nil {
		t.Fatal(err)
	}
	read := int64(0)
	for read < total {
		recs, err := c.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d records: %v", read, total, err)
		}
		for _, r := range recs {
			chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			if r.Offset < want[r.Partition] {
				read++
			}
		}
	}
	return int(read)
}

// TestProduceConsume moves 200,000 records over 8 partitions through real
// processes — MinIO, etcd, a coordinator, two brokers and a proxy — and
// checks that every acknowledged record is read back exactly once, at its
// acknowledged offset, in dense offset order per partition.
func TestProduceConsume(t *testing.T) {
	const records = 200_000
	c := StartCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, "e2e", 8); err != nil {
		t.Fatal(err)
	}
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	chk := checker.New()
	start := time.Now()
	produceAll(t, ctx, p, chk, "e2e", records)
	t.Logf("produced %d records in %v", records, time.Since(start))
	if n := chk.AckedCount(); n != records {
		t.Fatalf("%d acknowledgements, want %d", n, records)
	}

	// Both brokers own partitions.
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Brokers) != 2 || len(st.Brokers[0].Partitions) == 0 || len(st.Brokers[1].Partitions) == 0 {
		t.Fatalf("partitions not spread over both brokers: %+v", st.Brokers)
	}

	start = time.Now()
	consumeAll(t, ctx, cl, chk, "e2e")
	t.Logf("consumed in %v", time.Since(start))
	if rep := chk.Verify(0); !rep.OK() || rep.Acked != records {
		t.Fatal(rep)
	} else {
		t.Log(rep)
	}
}
