package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// TestDeleteRecords deletes records through each door on a cluster of real
// processes: Sarama's ClusterAdmin (Kafka's DeleteRecords) on partition 0,
// `strata topic delete-records` on partition 1 and the SDK on partition 2
// (every record). Then the log starts are where each asked, and consumers
// from the earliest offset — the SDK's and franz-go's — start there and
// read every record above it, at its offset, with the value produced.
func TestDeleteRecords(t *testing.T) {
	const topic, perPartition = "trim", 100
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, topic, 3); err != nil {
		t.Fatal(err)
	}
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for part := range int32(3) {
		recs := make([]*client.Record, perPartition)
		for i := range recs {
			recs[i] = (&client.Record{Topic: topic, Value: fmt.Appendf(nil, "%d-%d", part, i)}).SetPartition(part)
		}
		if err := p.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
	}

	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 30}); err != nil {
		t.Fatalf("Sarama DeleteRecords: %v", err)
	}
	bin, err := testenv.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "strata"), "--server", c.ProxyAddr,
		"topic", "delete-records", topic, "--partition", "1", "--offset", "60").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Partition 1: log start 60.") {
		t.Fatalf("strata topic delete-records: %v\n%s", err, out)
	}
	starts, err := cl.DeleteRecords(ctx, topic, map[int32]int64{2: client.DeleteToEnd})
	if err != nil || starts[2] != perPartition {
		t.Fatalf("SDK DeleteRecords = %v, %v; want log start %d for partition 2", starts, err, perPartition)
	}

	want := map[int32]int64{0: 30, 1: 60, 2: perPartition}
	info, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range info.PartitionInfo {
		if pi.LogStartOffset != want[pi.Partition] || pi.HighWatermark != perPartition {
			t.Fatalf("partition %d: log start %d, high watermark %d; want %d, %d", pi.Partition, pi.LogStartOffset, pi.HighWatermark, want[pi.Partition], perPartition)
		}
	}
	next := map[int32]int64{0: 30, 1: 60}
	check := func(who string, part int32, offset int64, value []byte) {
		if offset != next[part] || string(value) != fmt.Sprintf("%d-%d", part, offset) {
			t.Fatalf("%s read partition %d offset %d %q, want offset %d", who, part, offset, value, next[part])
		}
		next[part]++
	}
	cons, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign(topic); err != nil {
		t.Fatal(err)
	}
	for next[0] < perPartition || next[1] < perPartition {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			check("SDK", r.Partition, r.Offset, r.Value)
		}
	}
	next = map[int32]int64{0: 30, 1: 60}
	kc := kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for next[0] < perPartition || next[1] < perPartition {
		fs := kc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { check("franz-go", r.Partition, r.Offset, r.Value) })
	}
}
