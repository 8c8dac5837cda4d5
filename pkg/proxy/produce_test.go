package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

func TestProduceRoutesToOwner(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("orders", 2)
	b1, b2 := e.startBroker("b1"), e.startBroker("b2")
	e.assign(top.ID, 0, "b1")
	e.assign(top.ID, 1, "b2")

	r := e.produce("orders", 0, batch(t, 2, 1000))
	if r.BaseOffset != 0 || r.LastOffset != 1 {
		t.Fatalf("first produce got %d..%d, want 0..1", r.BaseOffset, r.LastOffset)
	}
	r = e.produce("orders", 0, batch(t, 3, 1000), batch(t, 1, 2000))
	if r.BaseOffset != 2 || r.LastOffset != 5 {
		t.Fatalf("second produce got %d..%d, want 2..5", r.BaseOffset, r.LastOffset)
	}
	if r := e.produce("orders", 1, batch(t, 1, 1000)); r.BaseOffset != 0 {
		t.Fatalf("partition 1 base offset %d, want 0", r.BaseOffset)
	}
	if b1.calls.Load() != 2 || b2.calls.Load() != 1 {
		t.Fatalf("broker calls b1=%d b2=%d, want 2 and 1", b1.calls.Load(), b2.calls.Load())
	}
}

// TestProduceNotOwnerRetry moves a partition away from its owner while a
// produce is at it: the old owner answers NOT_OWNER and the proxy must
// deliver the produce to the new owner, with dense offsets.
func TestProduceNotOwnerRetry(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("moves", 1)
	b1, b2 := e.startBroker("b1"), e.startBroker("b2")
	e.assign(top.ID, 0, "b1")
	e.produce("moves", 0, batch(t, 3, 1000)) // 0..2 at b1

	var once sync.Once
	b1.setHook(func() { once.Do(func() { e.assign(top.ID, 0, "b2") }) })
	start := time.Now()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	r, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "moves", Partition: 0, Batches: batch(t, 2, 2000)})
	if err != nil {
		t.Fatalf("produce across the move: %v", err)
	}
	if r.BaseOffset != 3 || r.LastOffset != 4 {
		t.Fatalf("got %d..%d, want 3..4", r.BaseOffset, r.LastOffset)
	}
	if b1.calls.Load() != 2 || b2.calls.Load() != 1 {
		t.Fatalf("broker calls b1=%d b2=%d, want 2 and 1", b1.calls.Load(), b2.calls.Load())
	}
	if n := counterValue(e.srv.metrics.produceRetries); n < 1 {
		t.Fatalf("%v retries counted, want >= 1", n)
	}
	t.Logf("produce moved to the new owner in %v", time.Since(start))
}

// TestProduceWaitsForOwner: a produce to an unassigned partition, or to one
// whose owner is not alive, waits until the partition gets a live owner.
func TestProduceWaitsForOwner(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("waits", 2)
	e.assign(top.ID, 1, "ghost") // no such broker is registered
	e.waitView("ghost owner", func(v *meta.View) bool { st, _ := v.Partition(top.ID, 1); return st.Broker == "ghost" })
	b := e.startBroker("b1")

	type result struct {
		r   *stratav1.ProduceResponse
		err error
	}
	results := make(chan result, 2)
	for p := range int32(2) {
		go func() {
			ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
			defer cancel()
			r, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "waits", Partition: p, Batches: batch(t, 1, 1000)})
			results <- result{r, err}
		}()
	}
	// Both produces are waiting (each retried at least once) before the
	// partitions get their owner.
	e.waitCounter("produce retries", e.srv.metrics.produceRetries, 2)
	if b.calls.Load() != 0 {
		t.Fatal("broker called before it owned anything")
	}
	e.assign(top.ID, 0, "b1")
	e.assign(top.ID, 1, "b1")
	for range 2 {
		res := <-results
		if res.err != nil {
			t.Fatalf("waiting produce: %v", res.err)
		}
		if res.r.BaseOffset != 0 {
			t.Fatalf("base offset %d, want 0", res.r.BaseOffset)
		}
	}
}

// TestProduceDeadline: with no owner ever, the produce ends with TIMEOUT at
// the client's deadline.
func TestProduceDeadline(t *testing.T) {
	e := newEnv(t)
	e.createTopic("orphan", 1)
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "orphan", Batches: batch(t, 1, 1)})
	wantErr(t, "produce without an owner", err, apierr.ErrTimeout)
}

// TestProduceManyParts: each part of a ProduceMany call is answered on its
// own, as a Produce call of its own would be; a bad part fails alone.
func TestProduceManyParts(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("many", 2)
	b1, b2 := e.startBroker("b1"), e.startBroker("b2")
	e.assign(top.ID, 0, "b1")
	e.assign(top.ID, 1, "b2")
	e.produce("many", 1, batch(t, 4, 1000)) // partition 1 starts at 4
	resp, err := e.client.ProduceMany(e.ctx, &stratav1.ProduceManyRequest{Parts: []*stratav1.ProduceRequest{
		{Topic: "many", Partition: 0, Batches: batch(t, 2, 1000)},
		{Topic: "many", Partition: 1, Batches: batch(t, 3, 1000)},
		{Topic: "many", Partition: 2, Batches: batch(t, 1, 1000)},
		{Topic: "many", Partition: 0, Batches: []byte("not a record batch, not at all")},
		{Topic: "nope", Partition: 0, Batches: batch(t, 1, 1000)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		base, last int64
		err        error
	}{{0, 1, nil}, {4, 6, nil}, {0, 0, apierr.ErrPartitionRange}, {0, 0, apierr.ErrCorruptBatch}, {0, 0, apierr.ErrUnknownTopic}}
	if len(resp.Results) != len(want) {
		t.Fatalf("%d results for %d parts", len(resp.Results), len(want))
	}
	for i, w := range want {
		r := resp.Results[i]
		err := apierr.FromPart(r.GetError())
		if !errors.Is(err, w.err) || (w.err == nil) != (r.GetResponse() != nil) {
			t.Fatalf("part %d: %v, %v; want error %v", i, r.GetResponse(), err, w.err)
		}
		if w.err == nil && (r.GetResponse().GetBaseOffset() != w.base || r.GetResponse().GetLastOffset() != w.last) {
			t.Fatalf("part %d: offsets %d..%d, want %d..%d", i, r.GetResponse().GetBaseOffset(), r.GetResponse().GetLastOffset(), w.base, w.last)
		}
	}
	if b1.calls.Load() != 1 || b2.calls.Load() != 2 {
		t.Fatalf("broker produces b1=%d b2=%d, want 1 and 2", b1.calls.Load(), b2.calls.Load())
	}
	for _, n := range []int{0, rpc.MaxProduceParts + 1} {
		parts := make([]*stratav1.ProduceRequest, n)
		for i := range parts {
			parts[i] = &stratav1.ProduceRequest{Topic: "many", Batches: batch(t, 1, 1000)}
		}
		_, err := e.client.ProduceMany(e.ctx, &stratav1.ProduceManyRequest{Parts: parts})
		wantErr(t, fmt.Sprintf("%d parts", n), err, apierr.ErrInvalidRequest)
	}
}

// TestForwardsOverOneStream: the produces for one broker travel over one
// ProduceStream, each answered on its own with dense offsets per
// partition.
func TestForwardsOverOneStream(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("streamed", 4)
	b := e.startBroker("b1")
	for p := range int32(4) {
		e.assign(top.ID, p, "b1")
	}
	// The first produce goes as a call: a stream is opened only once the
	// connection to the broker is ready.
	e.produce("streamed", 0, batch(t, 1, 1000))
	var wg sync.WaitGroup
	offsets := make([][]int64, 4)
	offsets[0] = []int64{0}
	var mu sync.Mutex
	for i := range 20 {
		p := int32(i % 4)
		wg.Go(func() {
			r := e.produce("streamed", p, batch(t, 1, 1000))
			mu.Lock()
			offsets[p] = append(offsets[p], r.BaseOffset)
			mu.Unlock()
		})
	}
	wg.Wait()
	for p, offs := range offsets {
		slices.Sort(offs)
		want := []int64{0, 1, 2, 3, 4}
		if p == 0 {
			want = append(want, 5)
		}
		if !slices.Equal(offs, want) {
			t.Fatalf("partition %d: offsets %v, want %v", p, offs, want)
		}
	}
	if b.streams.Load() != 1 || b.calls.Load() != 21 {
		t.Fatalf("%d streams, %d produces at the broker; want 1 and 21", b.streams.Load(), b.calls.Load())
	}
}

// TestProduceManyGoesTogether: the parts of one ProduceMany reach each
// broker as consecutive stream messages, each but the last marked more,
// so that the broker holds a flush for the rest; every hold ends.
func TestProduceManyGoesTogether(t *testing.T) {
	defer func(w time.Duration) { gatherWait = w }(gatherWait)
	gatherWait = time.Hour // only the parts' arrival settles a gather
	e := newEnv(t)
	top := e.createTopic("together", 6)
	b1, b2 := e.startBroker("b1"), e.startBroker("b2")
	for p := range int32(6) {
		e.assign(top.ID, p, []string{"b1", "b2"}[p/3])
	}
	// A stream opens once a produce finds the connection ready.
	for _, b := range []*testBroker{b1, b2} {
		for p := int32(0); b.streamed.Load() == 0; p++ {
			if p == 100 {
				t.Fatalf("broker %s: no produce came over a stream", b.id)
			}
			e.produce("together", map[*testBroker]int32{b1: 0, b2: 3}[b], batch(t, 1, 1000))
		}
	}
	holds1, holds2 := b1.holds.Load(), b2.holds.Load()
	var parts []*stratav1.ProduceRequest
	for p := range int32(6) {
		parts = append(parts, &stratav1.ProduceRequest{Topic: "together", Partition: p, Batches: batch(t, 1, 1000)})
	}
	resp, err := e.client.ProduceMany(e.ctx, &stratav1.ProduceManyRequest{Parts: parts})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != nil {
			t.Fatalf("part %d: %v", i, r.GetError())
		}
	}
	if d1, d2 := b1.holds.Load()-holds1, b2.holds.Load()-holds2; d1 != 2 || d2 != 2 {
		t.Fatalf("holds taken for three parts per broker: %d and %d, want 2 and 2", d1, d2)
	}
	if h1, h2 := b1.held.Load(), b2.held.Load(); h1 != 0 || h2 != 0 {
		t.Fatalf("holds still standing after the call: %d and %d", h1, h2)
	}
}

// TestForwardsToLegacyBroker: a broker without ProduceStream gets each
// produce as a Produce call.
func TestForwardsToLegacyBroker(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("legacy", 1)
	b := e.startBroker("b1")
	b.legacy.Store(true)
	e.assign(top.ID, 0, "b1")
	for i := range 3 {
		if r := e.produce("legacy", 0, batch(t, 1, 1000)); r.BaseOffset != int64(i) {
			t.Fatalf("produce %d: base offset %d", i, r.BaseOffset)
		}
	}
	if b.calls.Load() != 3 || b.streams.Load() != 0 {
		t.Fatalf("%d produces, %d streams at the broker; want 3 and 0", b.calls.Load(), b.streams.Load())
	}
}
