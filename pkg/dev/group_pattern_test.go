package dev_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/strata-mq/strata/pkg/client"
)

// TestGroupSubscribePattern: an SDK group consumer subscribed with
// SubscribePattern reads the topics whose whole names match — not one
// that merely contains a match — and a matching topic created while it
// runs, within PatternRefresh.
func TestGroupSubscribePattern(t *testing.T) {
	ctx, cl := startWithClient(t)
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produce := func(topic string, n int) {
		t.Helper()
		if _, err := cl.CreateTopic(ctx, topic, 2); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := p.ProduceSync(ctx, &client.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", topic, i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce("orders-eu", 20)
	produce("orders-us", 20)
	produce("old-orders-archive", 20)
	g, err := cl.NewGroupConsumer("pattern", client.SubscribePattern("orders-.*"),
		client.GroupConsumerOpts(client.ConsumeStart(client.StartEarliest)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	read := map[string]int{}
	pollUntil := func(want map[string]int) {
		t.Helper()
		for !maps.Equal(read, want) {
			recs, err := g.Poll(ctx)
			if err != nil {
				t.Fatalf("poll, having read %v (want %v): %v", read, want, err)
			}
			for _, r := range recs {
				read[r.Topic]++
			}
			if read["old-orders-archive"] != 0 {
				t.Fatal("read old-orders-archive, which orders-.* does not match as a whole")
			}
		}
	}
	pollUntil(map[string]int{"orders-eu": 20, "orders-us": 20})
	produce("orders-apac", 10)
	pollUntil(map[string]int{"orders-eu": 20, "orders-us": 20, "orders-apac": 10})
}
