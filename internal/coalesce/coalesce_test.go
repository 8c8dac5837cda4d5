package coalesce

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
)

func TestMain(m *testing.M) { testenv.Main(m, nil) }

// server answers ProduceMany calls: each part gets base offset = its
// partition, or NOT_OWNER for partition -1. Calls wait for release while
// it is set.
type server struct {
	mu        sync.Mutex
	calls     [][]int32 // the partitions of each call
	release   chan struct{}
	arrived   chan struct{} // receives once per call, if set
	cancelled chan struct{} // receives once per call cancelled, if set
}

func (s *server) many(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
	var parts []int32
	resp := &stratav1.ProduceManyResponse{}
	for _, p := range req.GetParts() {
		parts = append(parts, p.GetPartition())
		r := &stratav1.ProducePartResult{Response: &stratav1.ProduceResponse{BaseOffset: int64(p.GetPartition())}}
		if p.GetPartition() < 0 {
			r = &stratav1.ProducePartResult{Error: apierr.ToPart(apierr.Errorf(apierr.ErrNotOwner, "moved"))}
		}
		resp.Results = append(resp.Results, r)
	}
	s.mu.Lock()
	s.calls = append(s.calls, parts)
	release := s.release
	s.mu.Unlock()
	if s.arrived != nil {
		s.arrived <- struct{}{}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			if s.cancelled != nil {
				s.cancelled <- struct{}{}
			}
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return resp, nil
}

func (s *server) single(context.Context, *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	return nil, errors.New("single must not be called")
}

func (s *server) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func produce(c *Coalescer, partition int32) (*stratav1.ProduceResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Produce(ctx, &stratav1.ProduceRequest{Topic: "t", Partition: partition, Batches: []byte("x")})
}

// TestGathersWhileInFlight: produces made while a call is in flight travel
// together in the next call, and each gets its own part's result.
func TestGathersWhileInFlight(t *testing.T) {
	s := &server{release: make(chan struct{}), arrived: make(chan struct{}, 10)}
	c := New(s.many, s.single, 50*time.Millisecond, 0)
	first := make(chan error, 1)
	go func() {
		_, err := produce(c, 1000)
		first <- err
	}()
	<-s.arrived // the first call is in flight, held by the server
	const n = 40
	var wg sync.WaitGroup
	for i := range int32(n) {
		wg.Go(func() {
			resp, err := produce(c, i)
			if err != nil || resp.GetBaseOffset() != int64(i) {
				t.Errorf("partition %d: %v, %v; want its own result", i, resp, err)
			}
		})
	}
	<-s.arrived // the gathered call
	close(s.release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The 40 produces started together, within the 50 ms window of the
	// first gatherer; a slow machine may split them, but never into one
	// call each.
	if got := s.callCount(); got > 4 {
		t.Fatalf("%d produces made %d calls, want them gathered", n+1, got)
	}
}

// TestLoneProduceGoesAtOnce: with no call in flight a produce does not
// wait for the window.
func TestLoneProduceGoesAtOnce(t *testing.T) {
	s := &server{}
	c := New(s.many, s.single, time.Hour, 0)
	for i := range int32(3) {
		if resp, err := produce(c, i); err != nil || resp.GetBaseOffset() != int64(i) {
			t.Fatalf("produce %d: %v, %v", i, resp, err)
		}
	}
	if got := s.callCount(); got != 3 {
		t.Fatalf("%d calls, want 3", got)
	}
}

// TestExpectedGroupGoesTogether: produces announced with Expect travel in
// one call even with none in flight; the first does not leave alone.
func TestExpectedGroupGoesTogether(t *testing.T) {
	s := &server{}
	// An hour's window: the group can only go once all of it is queued.
	c := New(s.many, s.single, time.Hour, 0)
	const n = 8
	c.Expect(n)
	var wg sync.WaitGroup
	for i := range int32(n) {
		wg.Go(func() {
			if resp, err := produce(c, i); err != nil || resp.GetBaseOffset() != int64(i) {
				t.Errorf("partition %d: %v, %v; want its own result", i, resp, err)
			}
		})
	}
	wg.Wait()
	if got := s.callCount(); got != 1 {
		t.Fatalf("%d announced produces made %d calls, want 1", n, got)
	}
	// The group is over: a lone produce goes at once again.
	if _, err := produce(c, 100); err != nil {
		t.Fatal(err)
	}
	if got := s.callCount(); got != 2 {
		t.Fatalf("%d calls after a lone produce, want 2", got)
	}
}

// TestExpectLapses: an announced produce that never comes holds the
// others for the window at most, and the announcement ends with it.
func TestExpectLapses(t *testing.T) {
	s := &server{}
	c := New(s.many, s.single, 20*time.Millisecond, 0)
	c.Expect(2)
	if _, err := produce(c, 1); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	expect, expected := c.expect, c.expected
	c.mu.Unlock()
	if expect != 0 || expected != nil {
		t.Fatalf("after the window: %d still expected (channel %v), want the announcement ended", expect, expected)
	}
	if got := s.callCount(); got != 1 {
		t.Fatalf("%d calls, want 1", got)
	}
}

// TestPartErrors: a part's error reaches its caller only, and matches the
// sentinels as a call's own error would.
func TestPartErrors(t *testing.T) {
	s := &server{release: make(chan struct{}), arrived: make(chan struct{}, 10)}
	c := New(s.many, s.single, 50*time.Millisecond, 0)
	errs := make(chan error, 3)
	go func() { _, err := produce(c, 7); errs <- err }()
	<-s.arrived
	go func() { _, err := produce(c, -1); errs <- err }()
	go func() { _, err := produce(c, 8); errs <- err }()
	<-s.arrived
	close(s.release)
	var notOwner, ok int
	for range 3 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, apierr.ErrNotOwner) && apierr.Retriable(err):
			notOwner++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 2 || notOwner != 1 {
		t.Fatalf("%d ok, %d NOT_OWNER; want 2 and 1", ok, notOwner)
	}
}

// TestCallErrorReachesEveryPart: a failed call fails each of its parts
// with the call's error; a malformed answer fails them as Internal.
func TestCallErrorReachesEveryPart(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "connection refused")
	c := New(func(context.Context, *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		return nil, unavailable
	}, nil, 0, 0)
	if _, err := produce(c, 1); status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want the call's Unavailable", err)
	}
	c = New(func(context.Context, *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		return &stratav1.ProduceManyResponse{}, nil
	}, nil, 0, 0)
	if _, err := produce(c, 1); status.Code(err) != codes.Internal {
		t.Fatalf("err = %v, want Internal for an answer without results", err)
	}
}

// TestFallsBackToProduce: a server without ProduceMany gets every produce
// as a Produce call, from the first one on.
func TestFallsBackToProduce(t *testing.T) {
	var manyCalls, singleCalls int
	c := New(func(context.Context, *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		manyCalls++
		return nil, status.Error(codes.Unimplemented, "unknown method ProduceMany")
	}, func(_ context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
		singleCalls++
		return &stratav1.ProduceResponse{BaseOffset: int64(req.GetPartition())}, nil
	}, 0, 0)
	for i := range int32(3) {
		if resp, err := produce(c, i); err != nil || resp.GetBaseOffset() != int64(i) {
			t.Fatalf("produce %d: %v, %v", i, resp, err)
		}
	}
	if manyCalls != 1 || singleCalls != 3 {
		t.Fatalf("%d ProduceMany and %d Produce calls, want 1 and 3", manyCalls, singleCalls)
	}
}

// TestTooLargeCallGoesPartByPart: a call refused for its size
// (ResourceExhausted, under a request limit lower than what was gathered)
// is sent again as one call per part; a single produce refused so keeps
// the error.
func TestTooLargeCallGoesPartByPart(t *testing.T) {
	s := &server{release: make(chan struct{}), arrived: make(chan struct{}, 10)}
	var (
		mu              sync.Mutex
		refused, single []int32
	)
	c := New(func(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		if len(req.GetParts()) > 1 {
			mu.Lock()
			for _, p := range req.GetParts() {
				refused = append(refused, p.GetPartition())
			}
			mu.Unlock()
			return nil, status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
		}
		if req.GetParts()[0].GetPartition() == 100 {
			return s.many(ctx, req) // held until released
		}
		return &stratav1.ProduceManyResponse{Results: []*stratav1.ProducePartResult{{Response: &stratav1.ProduceResponse{BaseOffset: int64(req.GetParts()[0].GetPartition())}}}}, nil
	}, func(_ context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
		mu.Lock()
		single = append(single, req.GetPartition())
		mu.Unlock()
		return &stratav1.ProduceResponse{BaseOffset: int64(req.GetPartition())}, nil
	}, time.Second, 0)
	held := make(chan error, 1)
	go func() { _, err := produce(c, 100); held <- err }()
	<-s.arrived // a lone produce goes at once, and is held in flight
	var wg sync.WaitGroup
	for i := range int32(5) {
		wg.Go(func() {
			if resp, err := produce(c, i); err != nil || resp.GetBaseOffset() != int64(i) {
				t.Errorf("partition %d: %v, %v", i, resp, err)
			}
		})
	}
	wg.Wait()
	close(s.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	slices.Sort(refused)
	slices.Sort(single)
	if len(refused) < 2 || !slices.Equal(refused, single) {
		t.Fatalf("parts of refused calls %v, sent alone %v; want the same, from at least one gathered call", refused, single)
	}
	tooBig := New(func(context.Context, *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		return nil, status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
	}, nil, 0, 0)
	if _, err := produce(tooBig, 1); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a lone produce refused for its size: %v, want ResourceExhausted", err)
	}
}

// TestMaxBytesSplits: produces beyond maxBytes go in the next call.
func TestMaxBytesSplits(t *testing.T) {
	s := &server{release: make(chan struct{}), arrived: make(chan struct{}, 10)}
	c := New(s.many, s.single, 50*time.Millisecond, 2) // two 1-byte batches per call
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = produce(c, 100) })
	<-s.arrived
	for i := range int32(6) {
		wg.Go(func() { _, _ = produce(c, i) })
	}
	for range 3 {
		<-s.arrived
	}
	close(s.release)
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, parts := range s.calls {
		if len(parts) > 2 {
			t.Fatalf("a call carried %d one-byte parts, want at most 2: %v", len(parts), s.calls)
		}
	}
}

// TestCallerLeaves: a caller whose context ends returns at once, in
// flight or still gathering; a call is cancelled once all its callers have
// left, and a produce abandoned before it was taken is never sent.
func TestCallerLeaves(t *testing.T) {
	s := &server{release: make(chan struct{}), arrived: make(chan struct{}, 10), cancelled: make(chan struct{}, 10)}
	c := New(s.many, s.single, time.Hour, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Produce(ctx, &stratav1.ProduceRequest{Partition: 1, Batches: []byte("x")})
		done <- err
	}()
	<-s.arrived
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("err = %v, want Canceled", err)
	}
	<-s.cancelled // its only caller left, so the call was cancelled

	// A call in flight that someone still waits for...
	held := make(chan error, 1)
	go func() { _, err := produce(c, 2); held <- err }()
	<-s.arrived
	// ...makes the next produce gather for the (hour-long) window; it
	// leaves at its deadline without a call.
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if _, err := c.Produce(short, &stratav1.ProduceRequest{Partition: 3, Batches: []byte("x")}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	close(s.release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if got := s.callCount(); got != 2 {
		t.Fatalf("%d calls, want 2: the abandoned produce was sent", got)
	}
}
