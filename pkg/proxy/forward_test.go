package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

type produceResult struct {
	r   *stratav1.ProduceResponse
	err error
}

// produceAsync sends one produce of a 1-record batch through the proxy
// with a 20 s deadline and delivers the result on the returned channel.
func (e *env) produceAsync(topic string) <-chan produceResult {
	out := make(chan produceResult, 1)
	batches := batch(e.t, 1, 1000)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		r, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: 0, Batches: batches})
		out <- produceResult{r, err}
	}()
	return out
}

// blockFirst makes b's first Produce wait until release is called (at
// the end of the test at the latest); it reports on entered when that
// call has arrived.
func blockFirst(t *testing.T, b *testBroker) (entered <-chan struct{}, release func()) {
	in, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.setHook(func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(in)
			<-rel
		}
	})
	var closeOnce sync.Once
	release = func() { closeOnce.Do(func() { close(rel) }) }
	t.Cleanup(release)
	return in, release
}

// TestProduceFrozenOwnerMoves: the owner holds a produce without ever
// answering (a SIGSTOPped broker). When the partition moves to another
// broker, the proxy must give up the attempt at once and deliver the
// produce to the new owner, instead of waiting for the client's deadline
// or the forward timeout.
func TestProduceFrozenOwnerMoves(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("frozen", 1)
	b1, b2 := e.startBroker("b1"), e.startBroker("b2")
	e.assign(top.ID, 0, "b1")
	entered, _ := blockFirst(t, b1)
	res := e.produceAsync("frozen")
	<-entered
	moved := time.Now()
	e.assign(top.ID, 0, "b2")
	r := <-res
	if r.err != nil {
		t.Fatalf("produce across the move: %v", r.err)
	}
	took := time.Since(moved)
	t.Logf("delivered to the new owner %v after the move", took)
	if r.r.BaseOffset != 0 || b2.calls.Load() != 1 {
		t.Fatalf("base offset %d, new owner called %d times; want 0 and 1", r.r.BaseOffset, b2.calls.Load())
	}
	if took > 5*time.Second {
		t.Fatalf("delivered %v after the move; the attempt at the frozen owner was not cut off", took)
	}
	e.srv.router.forwards.mu.Lock()
	defer e.srv.router.forwards.mu.Unlock()
	if n := len(e.srv.router.forwards.m); n != 0 {
		t.Fatalf("%d partitions still list forwards in progress", n)
	}
}

// TestProduceForwardTimeout: the owner holds a produce and keeps the
// partition. After ForwardTimeout the proxy gives up that attempt and
// asks again; the owner answers the second attempt, and the record is
// written once (the first attempt, cut off, writes nothing).
func TestProduceForwardTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ForwardTimeout = 300 * time.Millisecond })
	top := e.createTopic("slow", 1)
	b1 := e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	entered, release := blockFirst(t, b1)
	res := e.produceAsync("slow")
	<-entered
	// The first attempt timed out and the proxy retries (the second call
	// waits for the first, which holds the test broker's lock). Retries
	// before the broker was entered (the view had not shown the owner
	// yet) do not count.
	before := counterValue(e.srv.metrics.produceRetries)
	e.waitCounter("produce retries", e.srv.metrics.produceRetries, before+1)
	release()
	r := <-res
	if r.err != nil {
		t.Fatalf("produce after a forward timeout: %v", r.err)
	}
	if r.r.BaseOffset != 0 || r.r.LastOffset != 0 || b1.calls.Load() != 2 {
		t.Fatalf("offsets %d..%d after %d broker calls, want 0..0 after 2", r.r.BaseOffset, r.r.LastOffset, b1.calls.Load())
	}
}
