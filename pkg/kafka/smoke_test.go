package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceConsume produces records with an idempotent franz-go producer
// through the Kafka listener and consumes them back from the start.
func TestProduceConsume(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("smoke", 3)
	prod := c.client(kgo.DefaultProduceTopic("smoke"))
	const n = 1000
	for i := range n {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "v%d", i)}
		prod.Produce(c.ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(c.ctx); err != nil {
		t.Fatal(err)
	}
	cons := c.client(kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got[string(r.Value)] {
				t.Errorf("duplicate %s", r.Value)
			}
			got[string(r.Value)] = true
		})
	}
}
