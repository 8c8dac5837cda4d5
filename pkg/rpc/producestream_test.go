package rpc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
)

// streamBroker serves ProduceStream with rpc.ServeProduceStream: partition
// 1 waits for its context and reports why it ended, 2 is not owned, 3
// answers the time left before its deadline as its base offset, 6 answers
// the holds outstanding before and after it releases its own (as 10×before
// + after), and the others their partition.
type streamBroker struct {
	stratav1.UnimplementedBrokerServer
	ended chan error
	holds atomic.Int32 // taken and not released
}

// hold is the broker's rpc.HoldFunc: it counts the holds outstanding.
func (b *streamBroker) hold() func() {
	b.holds.Add(1)
	var once sync.Once
	return func() { once.Do(func() { b.holds.Add(-1) }) }
}

func (b *streamBroker) ProduceStream(s stratav1.Broker_ProduceStreamServer) error {
	return rpc.ServeProduceStream(s, func(ctx context.Context, r *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
		switch r.Partition {
		case 1:
			<-ctx.Done()
			b.ended <- ctx.Err()
			return nil, ctx.Err()
		case 2:
			return nil, apierr.Errorf(apierr.ErrNotOwner, "partition %d", r.Partition)
		case 3:
			d, ok := ctx.Deadline()
			if !ok {
				return nil, errors.New("no deadline")
			}
			return &stratav1.ProduceResponse{BaseOffset: time.Until(d).Milliseconds()}, nil
		case 6:
			before := b.holds.Load()
			rpc.ReleaseHold(ctx)
			return &stratav1.ProduceResponse{BaseOffset: int64(10*before + b.holds.Load())}, nil
		}
		return &stratav1.ProduceResponse{BaseOffset: int64(r.Partition)}, nil
	}, b.hold)
}

// startStreamBroker serves a streamBroker and returns it with a
// connection to it; both end with t.
func startStreamBroker(t *testing.T) (*streamBroker, *grpc.ClientConn) {
	t.Helper()
	l, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(slog.New(slog.DiscardHandler))
	b := &streamBroker{ended: make(chan error, 4)}
	stratav1.RegisterBrokerServer(srv, b)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	conn, err := rpc.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return b, conn
}

// openStream opens a ProduceStream to a new streamBroker, for the test's
// time at most, and returns them with a send that fails the test on error.
func openStream(t *testing.T) (*streamBroker, stratav1.Broker_ProduceStreamClient, func(*stratav1.ProduceStreamRequest)) {
	t.Helper()
	b, conn := startStreamBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := stratav1.NewBrokerClient(conn).ProduceStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b, s, func(m *stratav1.ProduceStreamRequest) {
		t.Helper()
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeProduceStream: each produce on the stream is answered on its
// own, by id, as soon as it is done, with its own deadline; a withdrawn
// produce is cancelled and not answered; malformed messages are refused
// alone; the stream ends once the caller closes its side.
func TestServeProduceStream(t *testing.T) {
	b, s, send := openStream(t)
	part := func(p int32) *stratav1.ProduceRequest { return &stratav1.ProduceRequest{Partition: p} }
	send(&stratav1.ProduceStreamRequest{Id: 10, Produce: part(1)}) // waits until withdrawn
	send(&stratav1.ProduceStreamRequest{Id: 11, Produce: part(5)})
	send(&stratav1.ProduceStreamRequest{Id: 12, Produce: part(2)})
	send(&stratav1.ProduceStreamRequest{Id: 13})                   // neither produce nor cancel
	send(&stratav1.ProduceStreamRequest{Id: 10, Produce: part(0)}) // id in progress
	send(&stratav1.ProduceStreamRequest{Id: 14, Produce: part(3), TimeoutMs: 5000})
	got := map[uint64]*stratav1.ProduceStreamResponse{}
	for range 5 {
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got[r.GetId()] = r
	}
	if r := got[11]; r.GetResponse().GetBaseOffset() != 5 || r.GetError() != nil {
		t.Fatalf("produce 11: %v", r)
	}
	if err := apierr.FromPart(got[12].GetError()); !errors.Is(err, apierr.ErrNotOwner) || !apierr.Retriable(err) {
		t.Fatalf("produce 12: %v, want a retriable NOT_OWNER", err)
	}
	for _, id := range []uint64{13, 10} {
		if err := apierr.FromPart(got[id].GetError()); !errors.Is(err, apierr.ErrInvalidRequest) {
			t.Fatalf("message %d: %v, want INVALID_REQUEST", id, err)
		}
	}
	if left := got[14].GetResponse().GetBaseOffset(); left <= 0 || left > 5000 {
		t.Fatalf("produce 14 saw %d ms before its deadline, want its 5 s timeout", left)
	}
	// Withdrawing 10 cancels it; it gets no answer, and the stream ends
	// once the caller closes its side.
	send(&stratav1.ProduceStreamRequest{Id: 10, Cancel: true})
	if err := <-b.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("withdrawn produce ended with %v, want Canceled", err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the withdrawal: %v, %v; want the stream to end without an answer", r, err)
	}
}

// TestServeProduceStreamCancelsOnEnd: when the caller goes away, the
// produces in progress are cancelled, as their calls would be.
func TestServeProduceStreamCancelsOnEnd(t *testing.T) {
	b, conn := startStreamBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := stratav1.NewBrokerClient(conn).ProduceStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(2) {
		if err := s.Send(&stratav1.ProduceStreamRequest{Id: id, Produce: &stratav1.ProduceRequest{Partition: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	// Both are waiting once a later produce has been answered.
	if err := s.Send(&stratav1.ProduceStreamRequest{Id: 9, Produce: &stratav1.ProduceRequest{Partition: 4}}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); err != nil || r.GetId() != 9 {
		t.Fatalf("first answer %v, %v; want produce 9's", r, err)
	}
	cancel()
	for range 2 {
		if err := <-b.ended; !errors.Is(err, context.Canceled) {
			t.Fatalf("produce ended with %v, want Canceled", err)
		}
	}
}

// TestServeProduceStreamHolds: a message marked more takes a hold before
// its own produce starts, and the next produce ends it once counted
// (ReleaseHold); a hold whose next message never comes ends with the
// stream.
func TestServeProduceStreamHolds(t *testing.T) {
	b, s, send := openStream(t)
	recv := func() *stratav1.ProduceStreamResponse {
		t.Helper()
		r, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	part := func(p int32) *stratav1.ProduceRequest { return &stratav1.ProduceRequest{Partition: p} }
	// 6 follows a message marked more: one hold stands for it until it
	// releases it.
	send(&stratav1.ProduceStreamRequest{Id: 1, Produce: part(5), More: true})
	send(&stratav1.ProduceStreamRequest{Id: 2, Produce: part(6)})
	got := map[uint64]int64{}
	for range 2 {
		r := recv()
		got[r.GetId()] = r.GetResponse().GetBaseOffset()
	}
	if got[2] != 10 {
		t.Fatalf("produce after a message marked more saw %d holds before releasing and %d after, want 1 and 0", got[2]/10, got[2]%10)
	}
	// Unmarked, 6 sees none.
	send(&stratav1.ProduceStreamRequest{Id: 3, Produce: part(6)})
	if r := recv(); r.GetResponse().GetBaseOffset() != 0 {
		t.Fatalf("produce after an unmarked message saw holds: %v", r)
	}
	// Marked more with nothing behind it: the hold lasts until the stream
	// ends.
	send(&stratav1.ProduceStreamRequest{Id: 4, Produce: part(5), More: true})
	recv()
	if n := b.holds.Load(); n != 1 {
		t.Fatalf("%d holds while the announced produce has not come, want 1", n)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after closing: %v, %v; want the stream to end", r, err)
	}
	if n := b.holds.Load(); n != 0 {
		t.Fatalf("%d holds after the stream ended, want 0", n)
	}
}
