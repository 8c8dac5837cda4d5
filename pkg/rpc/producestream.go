package rpc

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
)

// PartOutcome is the outcome of one produce answered inside a message of
// several (a ProduceMany part, a ProduceStream answer): its response, or
// its error as apierr.FromPart gives it, or Internal for an answer that
// has neither.
func PartOutcome(resp *stratav1.ProduceResponse, pe *stratav1.PartError) (*stratav1.ProduceResponse, error) {
	if err := apierr.FromPart(pe); err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, status.Error(codes.Internal, "a produce was answered with neither a response nor an error")
	}
	return resp, nil
}

// ProduceFunc serves one produce, as a broker's Produce does.
type ProduceFunc func(context.Context, *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error)

// HoldFunc holds back a broker's flush that would go at once, for a
// produce announced (a message marked more) and not yet received; release
// ends the hold, may be called more than once, and must be called. A
// broker bounds the hold itself (by its flush interval).
type HoldFunc func() (release func())

// ServeProduceStream serves a Broker.ProduceStream with produce: each
// request message runs as a produce of its own, with its own context (the
// stream's, bounded by the message's timeout, cancelled by a withdrawal),
// and its result is sent as soon as it is known.
//
// A message marked more takes a hold (when hold is not nil) that passes to
// the next message's produce: its produce ends it with ReleaseHold once it
// is counted as arriving, or it ends when that produce returns, or when
// the stream ends.
//
// It returns when the caller closes its side and every produce is
// answered, or when the stream's context ends: produces in progress are
// then cancelled, as their calls would be when the connection drops.
func ServeProduceStream(stream stratav1.Broker_ProduceStreamServer, produce ProduceFunc, hold HoldFunc) error {
	ctx, cancelAll := context.WithCancel(stream.Context())
	defer cancelAll()
	ps := &produceStream{produce: produce, hold: hold, ctx: ctx, cancels: map[uint64]context.CancelFunc{}, results: make(chan *stratav1.ProduceStreamResponse, 64)}
	sendDone := make(chan error, 1)
	go func() { sendDone <- ps.sendLoop(stream) }()
	err := ps.recvLoop(stream)
	if err != nil {
		cancelAll()
	}
	ps.wg.Wait()
	close(ps.results)
	if serr := <-sendDone; err == nil {
		err = serr
	}
	return err
}

// produceStream is one ProduceStream being served.
type produceStream struct {
	produce ProduceFunc
	hold    HoldFunc // nil: messages marked more take no hold
	ctx     context.Context
	wg      sync.WaitGroup // the produces in progress
	results chan *stratav1.ProduceStreamResponse

	mu      sync.Mutex // guards cancels
	cancels map[uint64]context.CancelFunc
}

// recvLoop starts a produce per request message until the proxy closes
// its side (nil) or the stream fails.
func (ps *produceStream) recvLoop(stream stratav1.Broker_ProduceStreamServer) error {
	held := func() {} // the hold a message marked more took for the next one
	defer func() { held() }()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if req.GetCancel() {
			ps.withdraw(req.GetId())
			continue
		}
		// The hold for the next produce is taken before this one starts,
		// so that the broker never sees a moment with neither counted.
		next := func() {}
		if req.GetMore() && ps.hold != nil {
			next = ps.hold()
		}
		ps.start(req, held)
		held = next
	}
}

// holdKey is the context key of the hold a produce ends (ReleaseHold).
type holdKey struct{}

// ReleaseHold ends the hold that the message before this produce's took
// for it, if any: a broker calls it once it counts the produce as
// arriving, so that the two holds overlap.
func ReleaseHold(ctx context.Context) {
	if release, ok := ctx.Value(holdKey{}).(func()); ok {
		release()
	}
}

// start runs one produce and queues its result. held is the hold taken
// for it, which ends by the time the produce returns.
func (ps *produceStream) start(req *stratav1.ProduceStreamRequest, held func()) {
	id := req.GetId()
	base := context.WithValue(ps.ctx, holdKey{}, held)
	ctx, cancel := context.WithCancel(base)
	if t := req.GetTimeoutMs(); t > 0 {
		cancel()
		ctx, cancel = context.WithTimeout(base, time.Duration(t)*time.Millisecond)
	}
	ps.mu.Lock()
	if _, dup := ps.cancels[id]; dup {
		ps.mu.Unlock()
		cancel()
		held()
		ps.results <- &stratav1.ProduceStreamResponse{Id: id, Error: apierr.ToPart(apierr.Errorf(apierr.ErrInvalidRequest, "produce id %d is already in progress on this stream", id))}
		return
	}
	ps.cancels[id] = cancel
	ps.mu.Unlock()
	ps.wg.Go(func() {
		defer held()
		var (
			resp *stratav1.ProduceResponse
			err  error
		)
		if req.GetProduce() == nil {
			err = apierr.Errorf(apierr.ErrInvalidRequest, "produce stream message %d has neither a produce nor a cancel", id)
		} else {
			resp, err = ps.produce(ctx, req.GetProduce())
		}
		ps.mu.Lock()
		_, live := ps.cancels[id]
		delete(ps.cancels, id)
		ps.mu.Unlock()
		cancel()
		if live { // a withdrawn produce gets no result
			ps.results <- &stratav1.ProduceStreamResponse{Id: id, Response: resp, Error: apierr.ToPart(err)}
		}
	})
}

// withdraw cancels the produce id, if it is in progress.
func (ps *produceStream) withdraw(id uint64) {
	ps.mu.Lock()
	cancel, ok := ps.cancels[id]
	delete(ps.cancels, id)
	ps.mu.Unlock()
	if ok {
		cancel()
	}
}

// sendLoop sends the results until the produces are done. After a failed
// send it drains the rest, so that no produce blocks on its result.
func (ps *produceStream) sendLoop(stream stratav1.Broker_ProduceStreamServer) error {
	var err error
	for r := range ps.results {
		if err == nil {
			err = stream.Send(r)
		}
	}
	return err
}
