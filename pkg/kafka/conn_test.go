package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/semaphore"
)

// TestFramesBeforeAuthenticationTakeNoSharedBudget: a frame read after
// authentication holds its bytes in the server's request budget until
// released; one read before (ApiVersions, SASL) holds only its
// connection's, so clients without credentials cannot crowd out those
// with them by opening connections and sending frames slowly.
func TestFramesBeforeAuthenticationTakeNoSharedBudget(t *testing.T) {
	s := fuzzServer()
	budget := int64(s.cfg.MaxQueuedRequestBytes)
	s.queued = semaphore.NewWeighted(budget)
	stream := kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1)
	for _, authed := range []bool{false, true} {
		c := newConnForFuzz(s, stream)
		c.ctx, c.authed, c.inflight = context.Background(), authed, semaphore.NewWeighted(int64(s.maxFrame()))
		_, h, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if took := !s.queued.TryAcquire(budget); took != authed {
			t.Fatalf("authenticated %v: frame took the server's budget: %v", authed, took)
		} else if !took {
			s.queued.Release(budget)
		}
		c.release(h)
		if !s.queued.TryAcquire(budget) || !c.inflight.TryAcquire(int64(s.maxFrame())) {
			t.Fatalf("authenticated %v: release left bytes held", authed)
		}
		s.queued.Release(budget)
	}
}
