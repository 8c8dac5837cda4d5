package proxy

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/rpc"
)

// streamMaxBytes is the largest produce sent over a broker's produce
// stream; larger ones go as calls of their own, so that one large produce
// never holds up the small ones behind it on the stream. Per-call costs
// matter for small produces, not for large ones.
const streamMaxBytes = 256 << 10

// errStreamUnimplemented marks the produces of a stream that the broker
// does not serve (an older version): they are sent again as calls.
var errStreamUnimplemented = errors.New("proxy: broker has no ProduceStream")

// errStreamOpening sends a produce as a call while the stream opens.
var errStreamOpening = errors.New("proxy: produce stream opening")

// forwarder sends the produces for one broker. Small ones travel over one
// Broker.ProduceStream, each with an id, its deadline and, if the caller
// gives up, a withdrawal; their results come back as soon as each is
// known. A call per produce cost the proxy and the broker more than the
// produce when records are small and spread over many partitions. Large
// produces, and every produce to a broker without ProduceStream, go as
// Produce calls.
type forwarder struct {
	conn   *grpc.ClientConn
	client stratav1.BrokerClient
	ctx    context.Context // ends the streams when the forwarder closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the streams' send and receive loops

	mu            sync.Mutex // guards the fields below and every stream's waiting and queue
	stream        *fwdStream // the open stream, nil if none
	nextID        uint64
	unimplemented bool
	// opening is set while the stream opens; closed once close was
	// called: no stream opens after that.
	opening, closed bool
}

// fwdStream is one open ProduceStream. Its send loop sends what callers
// queue, so that no caller blocks on the stream's flow control (a frozen
// broker stops reading): a caller that gives up returns at once.
type fwdStream struct {
	s      stratav1.Broker_ProduceStreamClient
	ctx    context.Context
	cancel context.CancelFunc
	// waiting are the produces sent and not answered, by id; nil once the
	// stream broke.
	waiting map[uint64]chan fwdResult
	// queue are the messages to send, and notify wakes the send loop.
	queue  []*stratav1.ProduceStreamRequest
	notify chan struct{}
}

// fwdResult is a produce's answer on a stream.
type fwdResult struct {
	resp *stratav1.ProduceResponse
	err  error
}

func newForwarder(conn *grpc.ClientConn) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &forwarder{conn: conn, client: stratav1.NewBrokerClient(conn), ctx: ctx, cancel: cancel}
}

// close ends the open stream and waits for its loops.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// Produce sends req to the broker and returns its answer, with the
// errors a Produce call would return (statuses).
func (f *forwarder) Produce(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	// A stream is opened only on a ready connection.
	if len(req.GetBatches()) > streamMaxBytes || f.conn.GetState() != connectivity.Ready {
		GoAlone(ctx)
		return f.client.Produce(ctx, req)
	}
	st, id, ch, err := f.register()
	if err != nil {
		// No stream (the broker has none, or it is opening): a call
		// of its own fails or succeeds as it would have anyway.
		GoAlone(ctx)
		return f.client.Produce(ctx, req)
	}
	msg := &stratav1.ProduceStreamRequest{Id: id, Produce: req, TimeoutMs: timeoutMs(ctx)}
	if !hold(ctx, heldSend{f: f, st: st, msg: msg}) {
		f.send(st, msg)
	}
	select {
	case r := <-ch:
		if errors.Is(r.err, errStreamUnimplemented) {
			return f.client.Produce(ctx, req)
		}
		return r.resp, r.err
	case <-ctx.Done():
		if f.unregister(st, id) {
			f.send(st, &stratav1.ProduceStreamRequest{Id: id, Cancel: true})
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// register registers a new produce on the open stream. With none open,
// it starts opening one and returns errStreamOpening: the produce goes as
// a call, since opening waits for the connection, which may have dropped
// since the caller saw it ready, and a produce must not wait past its
// deadline, nor hold the lock that other produces take.
func (f *forwarder) register() (*fwdStream, uint64, chan fwdResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.unimplemented:
		return nil, 0, nil, errStreamUnimplemented
	case f.stream == nil:
		f.openLocked()
		return nil, 0, nil, errStreamOpening
	}
	f.nextID++
	ch := make(chan fwdResult, 1)
	f.stream.waiting[f.nextID] = ch
	return f.stream, f.nextID, ch, nil
}

// openLocked opens the stream in the background, unless that is under way
// or the forwarder closed. A failed open is tried again by the next
// produce. f.mu must be held.
func (f *forwarder) openLocked() {
	if f.opening || f.closed {
		return
	}
	f.opening = true
	f.wg.Go(func() {
		sctx, cancel := context.WithCancel(f.ctx)
		s, err := f.client.ProduceStream(sctx)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.opening = false
		if err != nil || f.closed {
			cancel()
			return
		}
		st := &fwdStream{s: s, ctx: sctx, cancel: cancel, waiting: map[uint64]chan fwdResult{}, notify: make(chan struct{}, 1)}
		f.stream = st
		f.wg.Go(func() { f.recvLoop(st) })
		f.wg.Go(func() { f.sendLoop(st) })
	})
}

// unregister removes the produce id from st and reports whether it was
// still waiting for its answer.
func (f *forwarder) unregister(st *fwdStream, id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := st.waiting[id]
	delete(st.waiting, id)
	return ok
}

// send queues msg for st's send loop. A message queued on a stream that
// broke is dropped: its produce gets the stream's error.
func (f *forwarder) send(st *fwdStream, msg *stratav1.ProduceStreamRequest) {
	f.mu.Lock()
	st.queue = append(st.queue, msg)
	f.mu.Unlock()
	st.wake()
}

// sendGroup queues msgs for st's send loop together, each but the last
// marked more (see ProduceGather). A message whose produce was withdrawn while
// it was held is dropped, as are all of them on a stream that broke: their
// produces got the stream's error.
func (f *forwarder) sendGroup(st *fwdStream, msgs []*stratav1.ProduceStreamRequest) {
	f.mu.Lock()
	var last *stratav1.ProduceStreamRequest
	for _, m := range msgs {
		if _, ok := st.waiting[m.GetId()]; !ok {
			continue
		}
		if last != nil {
			last.More = true
		}
		st.queue = append(st.queue, m)
		last = m
	}
	f.mu.Unlock()
	st.wake()
}

// wake wakes st's send loop, if it sleeps.
func (st *fwdStream) wake() {
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// sendLoop sends st's queued messages, in order, until st ends. A failed
// Send ends it: the stream is over, and its receive loop learns why.
func (f *forwarder) sendLoop(st *fwdStream) {
	for {
		select {
		case <-st.ctx.Done():
			return
		case <-st.notify:
		}
		for {
			f.mu.Lock()
			msgs := st.queue
			st.queue = nil
			f.mu.Unlock()
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				if st.s.Send(m) != nil {
					return
				}
			}
		}
	}
}

// recvLoop hands each answer on st to its produce until st breaks.
func (f *forwarder) recvLoop(st *fwdStream) {
	for {
		r, err := st.s.Recv()
		if err != nil {
			f.breakStream(st, err)
			return
		}
		var res fwdResult
		res.resp, res.err = rpc.PartOutcome(r.GetResponse(), r.GetError())
		f.mu.Lock()
		ch, ok := st.waiting[r.GetId()]
		delete(st.waiting, r.GetId())
		f.mu.Unlock()
		if ok {
			ch <- res
		}
	}
}

// breakStream fails every produce waiting on st with err (as a failed call
// would fail) and makes the next produce open a new stream.
func (f *forwarder) breakStream(st *fwdStream, err error) {
	f.mu.Lock()
	if f.stream == st {
		f.stream = nil
	}
	if status.Code(err) == codes.Unimplemented {
		f.unimplemented = true
		err = errStreamUnimplemented
	} else {
		err = streamErr(err)
	}
	waiting := st.waiting
	st.waiting = nil
	f.mu.Unlock()
	st.cancel()
	for _, ch := range waiting {
		ch <- fwdResult{err: err}
	}
}

// streamErr is the status a produce on a broken stream fails with: the
// stream's own status, or Unavailable when the broker ended the stream
// (io.EOF), which a call would have seen as a dropped connection.
func streamErr(err error) error {
	if errors.Is(err, io.EOF) {
		return status.Error(codes.Unavailable, "produce stream to the broker ended")
	}
	return err
}

// timeoutMs is the time left before ctx's deadline in whole milliseconds
// (at least 1), or 0 without a deadline.
func timeoutMs(ctx context.Context) int64 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(d).Milliseconds(), 1)
}
