package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/segment"
)

// produceN produces n records "0".."n-1" to partition 0 of "t" one by one
// and waits for all callbacks; it returns the records and their errors.
func produceN(t *testing.T, p *Producer, n int) ([]*Record, []error) {
	t.Helper()
	recs := make([]*Record, n)
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		order []int
	)
	wg.Add(n)
	for i := range recs {
		recs[i] = (&Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}).SetPartition(0)
		p.Produce(context.Background(), recs[i], func(_ *Record, err error) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			errs[i] = err
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("callbacks did not all run")
	}
	for i, j := range order {
		if i != j {
			t.Fatalf("callback %d was for record %d: callbacks out of produce order", i, j)
		}
	}
	return recs, errs
}

// checkStored checks that partition 0 of "t" holds exactly the records of
// want (their values), in order, at the offsets their callbacks reported.
func checkStored(t *testing.T, stored []segment.Record, recs []*Record, want []int) {
	t.Helper()
	if len(stored) != len(want) {
		t.Fatalf("stored %d records, want %d (lost or duplicated)", len(stored), len(want))
	}
	for i, idx := range want {
		if string(stored[i].Value) != fmt.Sprint(idx) {
			t.Fatalf("offset %d holds %q, want %d: out of order or duplicated", i, stored[i].Value, idx)
		}
		if recs[idx].Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d, stored at %d", idx, recs[idx].Offset, i)
		}
	}
}

// seqOf returns the producer id and first sequence of a request.
func seqOf(req *stratav1.ProduceRequest) (int64, int32) {
	h, err := segment.ParseBatchHeader(req.GetBatches())
	if err != nil {
		return -1, -1
	}
	return h.ProducerID, h.BaseSequence
}

// TestProducerPipelines holds the first request at the proxy until a
// later request of the same partition has arrived: they must be in
// flight at the same time, and still be written in order.
func TestProducerPipelines(t *testing.T) {
	f, c := setup(t, 1)
	firstIn, release := make(chan struct{}), make(chan struct{})
	var arrived atomic.Int32
	f.ProduceHook = func(req *stratav1.ProduceRequest) error {
		if arrived.Add(1) == 2 {
			close(release)
		}
		if _, seq := seqOf(req); seq == 0 {
			close(firstIn)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return apierr.Status(apierr.Errorf(apierr.ErrInvalidRequest, "no second request arrived while the first was in flight"))
			}
		}
		return nil
	}
	p := newProducer(t, c, Linger(0), MaxInflight(3))
	first := (&Record{Topic: "t", Value: []byte("0")}).SetPartition(0)
	var firstErr error
	var wg sync.WaitGroup
	wg.Add(1)
	p.Produce(context.Background(), first, func(_ *Record, err error) { firstErr = err; wg.Done() })
	<-firstIn
	recs, errs := produceN(t, p, 200)
	wg.Wait()
	if err := errors.Join(append(errs, firstErr)...); err != nil {
		t.Fatal(err)
	}
	stored := f.Records(t, "t", 0)
	if len(stored) != 201 || string(stored[0].Value) != "0" {
		t.Fatalf("stored %d records starting with %q", len(stored), stored[0].Value)
	}
	for i, r := range recs {
		if string(stored[i+1].Value) != fmt.Sprint(i) || r.Offset != int64(i+1) {
			t.Fatalf("offset %d holds %q; record %d acked at %d", i+1, stored[i+1].Value, i, r.Offset)
		}
	}
}

// TestProducerInflightRetries fails a third of the attempts (retriable,
// before they apply) and loses the acknowledgement of another share of
// the applied ones, with several requests in flight: every record must be
// written exactly once, in produce order, at the offset it was
// acknowledged with.
func TestProducerInflightRetries(t *testing.T) {
	tests := []struct {
		name     string
		inflight int
	}{{"one in flight", 1}, {"five in flight", 5}, {"eight in flight", 8}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := setup(t, 1)
			var calls, acks atomic.Int64
			f.ProduceHook = func(*stratav1.ProduceRequest) error {
				if calls.Add(1)%3 == 0 {
					return apierr.Status(apierr.Errorf(apierr.ErrStorageUnavailable, "injected"))
				}
				return nil
			}
			f.AckHook = func(*stratav1.ProduceRequest) error {
				if acks.Add(1)%4 == 0 {
					return apierr.Status(apierr.Errorf(apierr.ErrTimeout, "acknowledgement lost"))
				}
				return nil
			}
			p := newProducer(t, c, Linger(0), MaxInflight(tt.inflight))
			recs, errs := produceN(t, p, 300)
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			checkStored(t, f.Records(t, "t", 0), recs, seq(0, 300))
		})
	}
}

// TestProducerInflightPermanentFailure fails one request for good while
// later ones are in flight: only its records fail; the later ones, whose
// sequences follow the gap, are sent again under a new producer id and
// written in order.
func TestProducerInflightPermanentFailure(t *testing.T) {
	f, c := setup(t, 1)
	var (
		mu      sync.Mutex
		failPID int64 = -1
		pids          = map[int64]bool{}
	)
	f.ProduceHook = func(req *stratav1.ProduceRequest) error {
		pid, _ := seqOf(req)
		mu.Lock()
		defer mu.Unlock()
		pids[pid] = true
		if strings.Contains(string(req.GetBatches()), "poison") {
			failPID = pid
			return apierr.Status(apierr.Errorf(apierr.ErrRecordTooLarge, "injected"))
		}
		return nil
	}
	// One record per request: each is padded past half of MaxBatchBytes.
	p := newProducer(t, c, Linger(0), MaxInflight(5), MaxBatchBytes(1024))
	pad := strings.Repeat(".", 600)
	const n = 200
	recs := make([]*Record, 0, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		v := fmt.Sprint(i) + ":" + pad
		if i == 50 {
			v = "poison:" + pad
		}
		r := (&Record{Topic: "t", Value: []byte(v)}).SetPartition(0)
		recs = append(recs, r)
		p.Produce(context.Background(), r, func(_ *Record, err error) { errs[i] = err; wg.Done() })
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 50) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if !errors.Is(errs[50], ErrRecordTooLarge) {
		t.Fatalf("poisoned record: %v, want ErrRecordTooLarge", errs[50])
	}
	want := append(seq(0, 50), seq(51, n)...)
	stored := f.Records(t, "t", 0)
	if len(stored) != len(want) {
		t.Fatalf("stored %d records, want %d", len(stored), len(want))
	}
	for i, idx := range want {
		if got, _, _ := strings.Cut(string(stored[i].Value), ":"); got != fmt.Sprint(idx) || recs[idx].Offset != int64(i) {
			t.Fatalf("offset %d holds %q (acked record %d at %d)", i, stored[i].Value, idx, recs[idx].Offset)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if failPID < 0 || len(pids) < 2 {
		t.Fatalf("producer ids %v: want a new one after the failure of %d", pids, failPID)
	}
}

// seq returns lo, lo+1, …, hi-1.
func seq(lo, hi int) []int {
	out := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// TestMaxInflightValidation pins the option's range.
func TestMaxInflightValidation(t *testing.T) {
	_, c := setup(t, 0)
	for _, n := range []int{0, -1, MaxInflightLimit + 1} {
		if _, err := c.NewProducer(MaxInflight(n)); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("MaxInflight(%d): %v, want ErrInvalidRequest", n, err)
		}
	}
	for _, n := range []int{1, DefaultMaxInflight, MaxInflightLimit} {
		p, err := c.NewProducer(MaxInflight(n))
		if err != nil {
			t.Errorf("MaxInflight(%d): %v", n, err)
			continue
		}
		_ = p.Close(context.Background())
	}
}

// TestProducerForgottenProducer: the partition forgets the producer's
// sequences (a broker remembers 32 producers per partition); the next
// requests are refused as out of order and resent under a new producer
// id, nothing lost or duplicated.
func TestProducerForgottenProducer(t *testing.T) {
	f, c := setup(t, 1)
	p := newProducer(t, c, Linger(0), MaxInflight(5))
	recs, errs := produceN(t, p, 50)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	f.ForgetProducers(t, "t", 0)
	more, errs := produceN(t, p, 50)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	stored := f.Records(t, "t", 0)
	if len(stored) != 100 {
		t.Fatalf("stored %d records, want 100", len(stored))
	}
	for i, r := range append(recs, more...) {
		if want := fmt.Sprint(i % 50); string(stored[i].Value) != want || r.Offset != int64(i) {
			t.Fatalf("offset %d holds %q, want %q; acked at %d", i, stored[i].Value, want, r.Offset)
		}
	}
	pids := map[int64]bool{}
	for _, req := range f.ProduceRequests() {
		pid, _ := seqOf(req)
		pids[pid] = true
	}
	if len(pids) != 2 {
		t.Fatalf("%d producer ids, want 2 (a new one after the partition forgot the first)", len(pids))
	}
}

// TestProducerStallKeepsLaterRecords stalls storage for longer than the
// delivery timeout while records keep coming: the records produced early
// in the stall fail, but those produced late enough to outlive it are
// written, not failed with the older records queued before them (a
// request gathers only records produced within DeliveryTimeout/requestSpan
// of each other, and its deadline is its oldest record's), and not lost
// to a partition that falls behind resending requests after the sequence
// gaps of records that expired in the queue (those are failed unsent).
func TestProducerStallKeepsLaterRecords(t *testing.T) {
	for _, inflight := range []int{1, 5} {
		t.Run(fmt.Sprintf("%d in flight", inflight), func(t *testing.T) {
			stallThrough(t, inflight)
		})
	}
}

func stallThrough(t *testing.T, inflight int) {
	const (
		timeout = 4 * time.Second
		stall   = 5 * time.Second
		every   = 10 * time.Millisecond
	)
	f, c := setup(t, 1)
	var up atomic.Bool
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		if !up.Load() {
			return apierr.Status(apierr.Errorf(apierr.ErrStorageUnavailable, "injected stall"))
		}
		return nil
	}
	p := newProducer(t, c, Linger(5*time.Millisecond), MaxInflight(inflight), DeliveryTimeout(timeout),
		ProducerRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	start := time.Now()
	type result struct {
		at  time.Duration // when it was produced, after start
		err error
	}
	var (
		mu      sync.Mutex
		results []*result
		wg      sync.WaitGroup
	)
	for i := 0; time.Since(start) < stall-200*time.Millisecond; i++ {
		res := &result{at: time.Since(start)}
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
		wg.Add(1)
		p.Produce(context.Background(), (&Record{Topic: "t", Value: []byte(fmt.Sprint(i))}).SetPartition(0), func(_ *Record, err error) {
			mu.Lock()
			res.err = err
			mu.Unlock()
			wg.Done()
		})
		time.Sleep(every) // records keep coming through the stall
	}
	time.Sleep(time.Until(start.Add(stall))) // the rest of the stall
	up.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var failedEarly, written int
	for _, r := range results {
		switch {
		case r.err == nil:
			written++
		case r.at < stall-timeout:
			failedEarly++ // its deadline passed during the stall
		case r.at >= stall-timeout+timeout/requestSpan+time.Second:
			t.Errorf("record produced %v into a %v stall failed with %v; its %v delivery timeout outlives the stall", r.at.Round(time.Millisecond), stall, r.err, timeout)
		}
	}
	if failedEarly == 0 || written == 0 {
		t.Errorf("%d records failed early in the stall and %d were written; want both", failedEarly, written)
	}
	t.Logf("%d records: %d written, %d failed in the stall's first %v", len(results), written, failedEarly, stall-timeout)
}

// TestProducerExpiredInQueueNotSent: records whose delivery deadline
// passed while they queued are failed with ErrDeliveryTimeout (known not
// written, not ErrUnknownOutcome) in their turn, without being sent and
// without taking sequences; the records after them are sent with the next
// sequence of the same producer id, leaving no gap for the requests after
// them to be resent around.
func TestProducerExpiredInQueueNotSent(t *testing.T) {
	f, c := setup(t, 1)
	p := newProducer(t, c, MaxInflight(5))
	b := &partBuf{tp: topicPartition{"t", 0}, wake: make(chan struct{}, 1), pid: newProducerID()}
	var (
		mu   sync.Mutex
		errs = map[string]error{}
		wg   sync.WaitGroup
	)
	rec := func(v string, deadline time.Time) pending {
		wg.Add(1)
		if !p.buffered.TryAcquire(1) { // as Produce does; complete releases it
			t.Fatal("no buffer room")
		}
		p.mu.Lock()
		p.inflight++
		p.mu.Unlock()
		return pending{rec: (&Record{Topic: "t", Value: []byte(v)}).SetPartition(0), size: 1, deadline: deadline,
			cb: func(_ *Record, err error) {
				mu.Lock()
				errs[v] = err
				mu.Unlock()
				wg.Done()
			}}
	}
	past, future := time.Now().Add(-time.Second), time.Now().Add(time.Minute)
	b.sealed = [][]pending{
		{rec("old-0", past), rec("old-1", past)},
		{rec("old-2", past), rec("new-0", future)},
		{rec("new-1", future)},
	}
	window := p.fill(b, nil)
	if len(window) != 2 || window[0].msg != nil || len(window[0].recs) != 3 || window[1].msg == nil || len(window[1].recs) != 2 {
		t.Fatalf("window of %d requests, want the 3 expired records failed unsent, then one request of the 2 others", len(window))
	}
	if b.nextSeq != 2 {
		t.Errorf("next sequence %d after sending 2 records, want 2: the expired ones took sequences", b.nextSeq)
	}
	for _, r := range window {
		<-r.done
		p.resolve(b, &sendState{}, r)
		close(r.resolved)
	}
	wg.Wait()
	for _, v := range []string{"old-0", "old-1", "old-2"} {
		if err := errs[v]; !errors.Is(err, ErrDeliveryTimeout) || errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("%s: %v, want ErrDeliveryTimeout without ErrUnknownOutcome", v, err)
		}
	}
	for _, v := range []string{"new-0", "new-1"} {
		if errs[v] != nil {
			t.Errorf("%s: %v", v, errs[v])
		}
	}
	reqs := f.ProduceRequests()
	if pid, s := seqOf(reqs[len(reqs)-1]); len(reqs) != 1 || pid != b.pid || s != 0 {
		t.Errorf("%d requests, the last with producer %d sequence %d; want one, producer %d sequence 0", len(reqs), pid, s, b.pid)
	}
}
