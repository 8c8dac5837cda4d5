// Package coalesce gathers concurrent Produce calls to one server into
// ProduceMany calls. A producer writing to many partitions then makes one
// call where it made one per partition, as a Kafka client sends one
// produce request per broker. Each Produce keeps its own result, its own
// context and its own error, exactly as a call of its own would have them;
// but a call is answered when its last part is, so a caller gathers only
// produces that should not wait long at the server.
//
// A Produce goes at once when no call to the server is in flight, so a
// lone produce waits for nothing. While calls are in flight it waits up to
// the window for company: the produces of partitions whose batches became
// ready together then travel in one call. A caller that knows a group of
// produces is on its way (a producer's linger sealing several partitions)
// says so with Expect, and the first of them then waits for the others,
// up to the window, even with no call in flight: the group goes as one
// call, not as the first alone and the rest after it.
package coalesce

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for New.
const (
	// DefaultWindow is how long a produce waits for others while a call
	// to the same server is in flight. The produces of one producer's
	// linger, or of one multi-partition request, arrive within tens of
	// microseconds of each other; half a millisecond gathers them and is
	// small against the flush (PUT and commit) every produce waits for.
	DefaultWindow = 500 * time.Microsecond
	// DefaultMaxBytes bounds the batches of one ProduceMany call; a
	// single larger request goes alone. 4 MiB is a full flush of a broker
	// (its default --flush-bytes) and well under the proxy's default
	// request limit (32 MiB). A call refused for its size under a lower
	// limit (ResourceExhausted) is sent again part by part.
	DefaultMaxBytes = 4 << 20
)

// ManyFunc makes one ProduceMany call; SingleFunc one Produce call, for a
// server that does not know ProduceMany yet (an older version during a
// rolling upgrade).
type (
	ManyFunc   func(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error)
	SingleFunc func(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error)
)

// Coalescer gathers the Produce calls to one server. It has no goroutine
// of its own: the caller that finds no one gathering gathers, and makes
// the call on its own goroutine. The zero value is not usable; use New.
type Coalescer struct {
	many     ManyFunc
	single   SingleFunc
	window   time.Duration
	maxBytes int
	// unimplemented is set once the server answered ProduceMany with
	// Unimplemented; every produce then goes as a call of its own.
	unimplemented atomic.Bool

	mu sync.Mutex // guards the fields below and every call's taken
	// queue are the produces not yet taken into a call, oldest first.
	queue []*call
	// leading is set while a caller gathers the next call; handoff is
	// closed when it has taken its produces from the queue.
	leading bool
	handoff chan struct{}
	// inflight counts the calls sent and not yet answered.
	inflight int
	// expect counts the produces announced by Expect and not yet queued,
	// until expectBy; expected is closed when the last of them is queued
	// or the announcement lapses (nil while none is announced).
	expect   int
	expectBy time.Time
	expected chan struct{}
}

// call is one Produce waiting for its part's result.
type call struct {
	ctx   context.Context
	req   *stratav1.ProduceRequest
	taken bool          // in a call; guarded by Coalescer.mu
	done  chan struct{} // closed once resp or err is set
	resp  *stratav1.ProduceResponse
	err   error
}

// New returns a Coalescer that calls many (or single, once the server
// turns out not to know ProduceMany), gathering for window (0:
// DefaultWindow) up to maxBytes of batches per call (0: DefaultMaxBytes).
func New(many ManyFunc, single SingleFunc, window time.Duration, maxBytes int) *Coalescer {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Coalescer{many: many, single: single, window: window, maxBytes: maxBytes}
}

// Produce sends req in a ProduceMany call, with the other produces
// waiting, and returns its part's result: the response, or the error a
// Produce call of its own would have returned (a part's error as
// apierr.FromPart gives it, a failed call's error as the call returned
// it). It returns as soon as ctx ends, with the status a call would have
// (Canceled or DeadlineExceeded); the produce may then still be written,
// as a call cut off in flight may be.
func (c *Coalescer) Produce(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	if c.unimplemented.Load() {
		return c.single(ctx, req)
	}
	cl := &call{ctx: ctx, req: req, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, cl)
	if c.expect > 0 {
		c.expectBy = time.Now().Add(c.window) // the group is still coming
		if c.expect--; c.expect == 0 {
			c.endExpectLocked()
		}
	}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if cl.taken {
			c.mu.Unlock()
			break
		}
		if c.leading {
			handoff := c.handoff
			c.mu.Unlock()
			select {
			case <-handoff:
			case <-ctx.Done():
				if c.abandon(cl) {
					return nil, ctxErr(ctx)
				}
			}
			continue
		}
		c.leading, c.handoff = true, make(chan struct{})
		busy := c.inflight > 0
		c.mu.Unlock()
		if busy {
			gather(ctx, c.window, nil)
		} else {
			c.awaitExpected(ctx)
		}
		// A gatherer whose context ended leaves, but still sends what
		// it gathered for the others.
		left := ctx.Err() != nil && c.abandon(cl)
		c.run(c.take())
		if left {
			return nil, ctxErr(ctx)
		}
	}
	select {
	case <-cl.done:
		if cl.err != nil && ctx.Err() != nil {
			return nil, ctxErr(ctx) // the call failed because its callers left
		}
		return cl.resp, cl.err
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	}
}

// ctxErr is the status error a gRPC call returns when ctx ends (Canceled
// or DeadlineExceeded), so that a produce cut off while gathering or in
// flight fails as a call of its own would.
func ctxErr(ctx context.Context) error {
	return status.FromContextError(ctx.Err()).Err()
}

// gather waits for d, for all of an expected group (if not nil), or until
// ctx ends.
func gather(ctx context.Context, d time.Duration, group <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-group:
	case <-ctx.Done():
	}
}

// awaitExpected waits while produces announced by Expect are on their
// way: until the last is queued, none has come for the window, or ctx
// ends.
func (c *Coalescer) awaitExpected(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		now := time.Now()
		live := c.expectingLocked(now)
		group, wait := c.expected, c.expectBy.Sub(now)
		c.mu.Unlock()
		if !live {
			return
		}
		gather(ctx, wait, group)
	}
}

// Expect announces n produces on their way: until they are all queued,
// or none has come for the window, the first of them to arrive waits for
// the others even when no call is in flight. An announcement whose
// produces do not all come (some went another way) costs the ones that
// did one window after the last of them.
func (c *Coalescer) Expect(n int) {
	if n <= 0 || c.unimplemented.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.expectingLocked(now) {
		c.expected = make(chan struct{})
	}
	c.expect += n
	c.expectBy = now.Add(c.window)
}

// expectingLocked reports whether an announcement is live at now, ending
// one that lapsed (some of its produces went another way). c.mu must be
// held.
func (c *Coalescer) expectingLocked(now time.Time) bool {
	if c.expect > 0 && now.Before(c.expectBy) {
		return true
	}
	c.endExpectLocked()
	return false
}

// endExpectLocked ends the current announcement. c.mu must be held.
func (c *Coalescer) endExpectLocked() {
	if c.expected != nil {
		close(c.expected)
	}
	c.expect, c.expected = 0, nil
}

// abandon removes cl from the queue if no call has taken it, and reports
// whether it did.
func (c *Coalescer) abandon(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.taken {
		return false
	}
	for i, q := range c.queue {
		if q == cl {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	return true
}

// take ends the leader's gathering: it takes the oldest produces, up to
// maxBytes (at least one) and rpc.MaxProduceParts, hands the lead on and
// counts the call in flight.
func (c *Coalescer) take() []*call {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, bytes := 0, 0
	for n < len(c.queue) && n < rpc.MaxProduceParts {
		size := len(c.queue[n].req.GetBatches())
		if n > 0 && bytes+size > c.maxBytes {
			break
		}
		c.queue[n].taken = true
		bytes += size
		n++
	}
	batch := append([]*call(nil), c.queue[:n]...)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	c.leading = false
	close(c.handoff)
	if len(batch) > 0 {
		c.inflight++
	}
	return batch
}

// run makes the call of batch and hands each produce its result.
func (c *Coalescer) run(batch []*call) {
	if len(batch) == 0 {
		return
	}
	defer func() {
		c.mu.Lock()
		c.inflight--
		c.mu.Unlock()
	}()
	ctx, cancel := callContext(batch)
	defer cancel()
	req := &stratav1.ProduceManyRequest{Parts: make([]*stratav1.ProduceRequest, len(batch))}
	for i, cl := range batch {
		req.Parts[i] = cl.req
	}
	resp, err := c.many(ctx, req)
	switch {
	case status.Code(err) == codes.Unimplemented:
		c.unimplemented.Store(true)
		c.runSingly(batch)
		return
	case status.Code(err) == codes.ResourceExhausted && len(batch) > 1:
		// The server refused the call's size before serving any part (a
		// request limit below what was gathered): each part alone is
		// what a call of its own would have sent.
		c.runSingly(batch)
		return
	}
	if err == nil && len(resp.GetResults()) != len(batch) {
		err = status.Errorf(codes.Internal, "ProduceMany answered %d results for %d parts", len(resp.GetResults()), len(batch))
	}
	for i, cl := range batch {
		if err != nil {
			cl.err = err
		} else {
			r := resp.GetResults()[i]
			cl.resp, cl.err = rpc.PartOutcome(r.GetResponse(), r.GetError())
		}
		close(cl.done)
	}
}

// runSingly sends each produce of batch as a call of its own, at once.
func (c *Coalescer) runSingly(batch []*call) {
	var wg sync.WaitGroup
	for _, cl := range batch {
		wg.Go(func() {
			cl.resp, cl.err = c.single(cl.ctx, cl.req)
			close(cl.done)
		})
	}
	wg.Wait()
}

// callContext is the context of one call of batch: it carries none of the
// callers' values, ends at the latest of their deadlines, and is cancelled
// once every caller's context has ended, since no one then waits for the
// answer.
func callContext(batch []*call) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, cl := range batch {
		d, ok := cl.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if !latest.IsZero() {
		var cancelCall context.CancelFunc
		ctx, cancelCall = context.WithDeadline(ctx, latest)
		cancelAll := cancel
		cancel = func() { cancelCall(); cancelAll() }
	}
	var left atomic.Int64
	left.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, cl := range batch {
		stops[i] = context.AfterFunc(cl.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
