package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/segment"
)

// The sender of a partition keeps up to MaxInflight produce requests in
// flight and completes them strictly in order.
//
// Order with several requests in flight rests on the idempotent
// producer's sequences: the broker accepts a producer's requests only in
// sequence order (one that arrives early waits for its predecessor, then
// fails with the retriable OUT_OF_ORDER_SEQUENCE), so records are written
// in the order their requests were built whatever order the requests
// arrive in. Each request retries on its own goroutine, but a failed one
// is sent again only after every request before it is resolved, so a
// failure resends the requests from the first failed one on, in order.
//
// Retries never risk a second copy: a request is always resent with its
// producer id and sequences, so a broker that already committed it
// answers with the original offsets (it remembers a producer's recent
// requests, and the last committed one in etcd across failovers). Every
// retriable failure is retried until the request's DeliveryTimeout.
//
// A request's outcome is known only when the server refused it without
// writing it (refused). Any other failure — an unreachable or vanished
// proxy, a deadline, TIMEOUT, STORAGE_UNAVAILABLE, SHUTTING_DOWN — may
// have come after the broker wrote it, so it leaves the outcome unknown,
// and a request whose outcome was ever unknown is never sent under
// another producer id. When the producer gives up on it (DeliveryTimeout,
// Close) its records fail with ErrUnknownOutcome.
//
// When a request fails for good while known not to be written (a
// non-retriable refusal), the sequences after it leave a gap the broker
// never fills, and none of the requests after it can have been written:
// the partition switches to a new producer id, the requests after it
// that did not succeed are rebuilt with the new id's sequences and sent
// again, in order, and nothing new is sent until they are. When it fails
// with an unknown outcome, the requests after it keep their id and
// sequences (they may have been written too) and run to their own end;
// nothing new is sent until they are resolved, then the partition
// continues under a new id.
//
// A request refused as out of order with nothing before it in flight was
// not written: the partition forgot the producer (brokers remember 32 per
// partition), or the request before it ended with an unknown outcome and
// was not written. It is rebuilt under a new producer id, with the
// requests after it — unless its own outcome was ever unknown: then it
// may have been written before the partition forgot the producer, and it
// fails with ErrUnknownOutcome.
//
// Without idempotence there are no sequences, so MaxInflight is 1.

// gatherFollowBytes bounds the follow-up requests that are gathered (see
// attempt): a call costs about the same whatever it carries, so gathering
// pays for small requests, many partitions' few records each; a large
// request amortizes its own call, and gathered with others it would wait
// for their bytes to arrive before the proxy forwards any part. Under
// full load, requests at 8 partitions carry up to a batch (1 MiB) each;
// at 1,000 partitions, tens of KiB.
const gatherFollowBytes = 256 << 10

// seqHeadroom is how close a partition's sequence may come to the int32
// limit before the partition switches to a new producer id (which it does
// only with no request in flight, so the two ids' requests cannot be
// reordered). It exceeds the records of any request.
const seqHeadroom = 1 << 24

// request is one produce request of a partition.
type request struct {
	// batches are the request's records as sealed, for rebuilding it;
	// recs are the same records in one slice.
	batches [][]pending
	recs    []pending
	// msg is the request sent; nil for a request that failed to build.
	msg *stratav1.ProduceRequest
	// deadline is the earliest delivery deadline of its records.
	deadline time.Time
	// prevResolved is the resolved channel of the request sent before it,
	// if that was still in flight (nil otherwise).
	prevResolved <-chan struct{}

	// done is closed by the request's goroutine once base or err is set.
	done chan struct{}
	base int64
	err  error
	// unknown is set by the request's goroutine (before done is closed)
	// once an attempt failed in a way that may have followed a write: the
	// request may be stored, so it is never rebuilt under another id.
	unknown bool

	// stale is set by the sender when a request before this one failed for
	// good: its sequences follow a gap, so instead of retrying it is
	// rebuilt with a new producer id. Set before resolved is closed.
	stale atomic.Bool
	// resolved is closed by the sender once the request's outcome is
	// final (completed, or taken back to be rebuilt).
	resolved chan struct{}
	// reseq is set with err when the broker refused the request as out of
	// order although nothing before it is in flight: the partition does
	// not know the producer any more (it remembers 32 per partition), so
	// the request is rebuilt under a new producer id. It was not written.
	reseq bool
}

// maxInflight is the requests a partition keeps in flight.
func (p *Producer) maxInflight() int {
	if p.cfg.noIdempotence {
		return 1
	}
	return p.cfg.maxInflight
}

// sendLoop is the sender of one partition: it sends b's sealed batches in
// requests, up to maxInflight at a time, and completes them in order,
// until the producer is closed.
func (p *Producer) sendLoop(b *partBuf) {
	defer p.wg.Done()
	var st sendState
	for {
		if len(st.window) == 0 && st.retire {
			b.pid, b.nextSeq, st.retire = newProducerID(), 0, false
		}
		if !st.draining && p.ctx.Err() == nil {
			st.window = p.fill(b, st.window)
		}
		b.sending.Store(len(st.window) > 0)
		if len(st.window) == 0 {
			if len(st.rebuild) > 0 {
				p.mu.Lock()
				b.sealed = append(st.rebuild, b.sealed...)
				p.mu.Unlock()
				st.rebuild, st.draining = nil, false
				continue
			}
			st.draining = false
			if p.ctx.Err() != nil {
				p.mu.Lock()
				p.sealLocked(b)
				batches := b.sealed
				b.sealed = nil
				p.mu.Unlock()
				for _, batch := range batches {
					p.complete(batch, 0, ErrClosed)
				}
				return
			}
			select {
			case <-b.wake:
			case <-p.ctx.Done():
			}
			continue
		}
		head := st.window[0]
		select {
		case <-head.done:
		case <-b.wake:
			continue
		case <-p.ctx.Done():
			<-head.done // its attempts end with ErrClosed
		}
		st.window = st.window[1:]
		p.resolve(b, &st, head)
		close(head.resolved)
	}
}

// sendState is a partition sender's bookkeeping.
type sendState struct {
	window []*request // sent and not yet resolved, in order
	// rebuild collects the batches of stale requests while the window
	// drains; they go back to the front of the queue.
	rebuild [][]pending
	// draining is set after a request failed for good: nothing new is
	// sent until the requests after it are resolved.
	draining bool
	// retire is set after a request failed with an unknown outcome: once
	// the window is empty, the partition takes a new producer id.
	retire bool
}

// resolve settles head, the oldest request of the window, once it is
// done: it completes its records, or takes them back to be rebuilt, and
// decides what becomes of the producer id and the requests after it.
func (p *Producer) resolve(b *partBuf, st *sendState, head *request) {
	switch {
	case head.err == nil:
		p.complete(head.recs, head.base, nil)
	case head.stale.Load() && p.ctx.Err() == nil:
		st.rebuild = append(st.rebuild, head.batches...)
	case head.reseq && p.ctx.Err() == nil:
		b.pid, b.nextSeq = newProducerID(), 0
		for _, r := range st.window {
			r.stale.Store(true)
		}
		st.rebuild = append(st.rebuild, head.batches...)
		st.draining = true
	default:
		p.complete(head.recs, 0, head.err)
		switch {
		case head.msg == nil || p.cfg.noIdempotence:
		case head.unknown:
			// It may be stored: the requests after it keep their id and
			// sequences; new records wait for a new id.
			st.retire = true
			st.draining = len(st.window) > 0
		default:
			// Its sequences will never be written, so neither will those
			// after it: continue with a new producer id, and rebuild what
			// was sent after it.
			b.pid, b.nextSeq = newProducerID(), 0
			for _, r := range st.window {
				r.stale.Store(true)
			}
			st.draining = len(st.window) > 0
		}
	}
}

// fill sends b's sealed batches until maxInflight requests are in flight
// or nothing is sealed, and returns the window with them appended.
func (p *Producer) fill(b *partBuf, window []*request) []*request {
	for len(window) < p.maxInflight() {
		if !p.cfg.noIdempotence && int64(b.nextSeq) > math.MaxInt32-seqHeadroom {
			if len(window) > 0 {
				return window // switch ids only with nothing in flight
			}
			b.pid, b.nextSeq = newProducerID(), 0
		}
		batches, expired := p.take(b)
		if len(batches) == 0 {
			return window
		}
		var reqs []*request
		if expired {
			// Failed in its turn, so callbacks still run in produce order.
			r := newRequest(batches)
			r.fail(ErrDeliveryTimeout, 0, nil)
			close(r.done)
			reqs = []*request{r}
		} else {
			reqs = p.build(b, batches)
		}
		for _, r := range reqs {
			if len(window) > 0 {
				r.prevResolved = window[len(window)-1].resolved
			}
			window = append(window, r)
			if r.msg != nil {
				p.goAttempts(r)
			}
		}
	}
	return window
}

// build encodes batches into one produce request, stamping the partition's
// next sequences. A batch that cannot be encoded becomes a request of its
// own that has already failed (and takes no sequence), so that callbacks
// still run in produce order.
func (p *Producer) build(b *partBuf, batches [][]pending) []*request {
	var (
		out     []*request
		cur     *request
		payload []byte
		segRecs []segment.Record
	)
	flush := func() {
		if cur != nil {
			cur.msg = &stratav1.ProduceRequest{Topic: b.tp.topic, Partition: b.tp.partition, Batches: payload}
			out = append(out, cur)
			cur, payload = nil, nil
		}
	}
	for _, batch := range batches {
		segRecs = segRecs[:0]
		for _, r := range batch {
			segRecs = append(segRecs, toSegment(r.rec))
		}
		enc, err := segment.EncodeBatch(segRecs, p.batchOptions(b, len(segRecs)))
		if err != nil {
			if errors.Is(err, segment.ErrTooLarge) {
				err = fmt.Errorf("%w: %w", ErrRecordTooLarge, err)
			}
			flush()
			failed := newRequest([][]pending{batch})
			failed.err = err
			close(failed.done)
			out = append(out, failed)
			continue
		}
		p.advanceSeq(b, len(segRecs))
		if cur == nil {
			cur = newRequest(nil)
		}
		if payload == nil {
			payload = enc
		} else {
			payload = append(payload, enc...)
		}
		cur.batches = append(cur.batches, batch)
		cur.recs = append(cur.recs, batch...)
		if cur.deadline.IsZero() || batch[0].deadline.Before(cur.deadline) {
			cur.deadline = batch[0].deadline
		}
	}
	flush()
	return out
}

// newRequest returns an unsent request of batches.
func newRequest(batches [][]pending) *request {
	r := &request{batches: batches, done: make(chan struct{}), resolved: make(chan struct{})}
	for _, batch := range batches {
		r.recs = append(r.recs, batch...)
		if r.deadline.IsZero() || batch[0].deadline.Before(r.deadline) {
			r.deadline = batch[0].deadline
		}
	}
	return r
}

// attemptWorkers is how many goroutines a producer keeps for running
// requests' attempts; requests beyond them get a goroutine of their own.
// A fresh goroutine per request grew its stack (copied it) several times
// in the gRPC call, on the path of every produce; a worker's stack stays
// grown. Four cover a producer with one request in flight per partition
// to a few partitions at once.
const attemptWorkers = 4

// goAttempts runs r's attempts on an idle worker, a new worker while
// fewer than attemptWorkers exist, or else a goroutine of its own. Workers
// live until the producer is closed.
func (p *Producer) goAttempts(r *request) {
	p.wg.Add(1) // done by attempts
	select {
	case p.work <- r:
		return
	default:
	}
	p.wg.Add(1) // done by the goroutine
	if p.workers.Add(1) <= attemptWorkers {
		go p.attemptWorker(r)
		return
	}
	p.workers.Add(-1)
	go func() {
		defer p.wg.Done()
		p.attempts(r)
	}()
}

// attemptWorker runs r's attempts, then those of the requests handed to
// it, until the producer is closed.
func (p *Producer) attemptWorker(r *request) {
	defer p.wg.Done()
	for {
		p.attempts(r)
		select {
		case r = <-p.work:
		case <-p.ctx.Done():
			return
		}
	}
}

// attempts sends r until it succeeds, fails with a non-retriable error,
// runs out of time, or becomes stale; then it closes r.done.
func (p *Producer) attempts(r *request) {
	defer p.wg.Done()
	defer close(r.done)
	var lastErr error
	tries := 0
	for {
		if !time.Now().Before(r.deadline) {
			r.fail(ErrDeliveryTimeout, tries, lastErr)
			return
		}
		// An early request's predecessor may still be on its way.
		predecessorOpen := r.prevResolved != nil && !closed(r.prevResolved)
		err := p.attempt(r)
		tries++
		if err == nil {
			return
		}
		if p.ctx.Err() != nil {
			r.unknown = true // cut off in flight
			r.fail(ErrClosed, tries, err)
			return
		}
		lastErr = err
		if !refused(err) {
			r.unknown = true
		}
		// Arriving before a predecessor still in flight is no failure of
		// this request: resend it as soon as the predecessor is resolved.
		early := predecessorOpen && errors.Is(err, ErrOutOfOrderSequence)
		if !apierr.Retriable(err) && !errors.Is(err, errNotSent) {
			r.fail(nil, tries, err)
			return
		}
		// Resend only once the requests before it are resolved: one of
		// them may have to be written first, or may have failed for good.
		if r.prevResolved != nil {
			select {
			case <-r.prevResolved:
			case <-p.ctx.Done():
				r.fail(ErrClosed, tries, err)
				return
			}
		}
		switch {
		case r.stale.Load():
			r.err = err // not written: the sender rebuilds it
			return
		case early:
			continue
		case errors.Is(err, ErrOutOfOrderSequence) && r.unknown:
			r.fail(nil, tries, err)
			return
		case errors.Is(err, ErrOutOfOrderSequence):
			r.err, r.reseq = err, true
			return
		}
		wait := min(backoff.Delay(p.cfg.backoffMin, p.cfg.backoffMax, tries), time.Until(r.deadline))
		if backoff.Sleep(p.ctx, wait) != nil {
			r.fail(ErrClosed, tries, err)
			return
		}
	}
}

// attempt sends r once, bounded by the client's RequestTimeout and r's
// deadline, and returns the error converted with apierr.FromStatus. It
// waits for a connection to a proxy instead of failing at once while none
// is up, so a request goes out as soon as a proxy is reachable again
// rather than after a retry backoff; if none becomes reachable in time it
// returns errNotSent, having sent nothing. (The call itself waits for a
// connection too — gRPC's wait-for-ready — in case the one seen drops.)
// Requests of several partitions that are ready together travel in one
// ProduceMany call (p.calls); each keeps its own result. A call is
// answered when all its parts are, and a request sent while an earlier one
// of its partition is still on its way may wait at the broker for that one
// (up to 2 s when they were reordered), so such requests are gathered
// apart, in calls of their own (p.follow): under load, when most
// partitions have a request in flight, they still travel many to a call,
// as a Kafka client's batches share one produce request per broker,
// without holding up the requests of partitions that had nothing in
// flight.
func (p *Producer) attempt(r *request) error {
	deadline := time.Now().Add(p.c.cfg.requestTimeout)
	if r.deadline.Before(deadline) {
		deadline = r.deadline
	}
	ctx, cancel := context.WithDeadline(p.ctx, deadline)
	defer cancel()
	if !p.c.waitConnected(ctx) {
		return errNotSent
	}
	var (
		resp *stratav1.ProduceResponse
		err  error
	)
	switch {
	case r.prevResolved == nil || closed(r.prevResolved):
		resp, err = p.calls.Produce(ctx, r.msg)
	case len(r.msg.Batches) < gatherFollowBytes:
		resp, err = p.follow.Produce(ctx, r.msg)
	default:
		resp, err = p.c.api.Produce(ctx, r.msg, grpc.WaitForReady(true))
	}
	if err == nil {
		r.base = resp.GetBaseOffset()
		return nil
	}
	err = apierr.FromStatus(err)
	if errors.Is(err, ErrPartitionRange) || errors.Is(err, ErrUnknownTopic) {
		p.topicsMu.Lock()
		ts := p.topics[r.msg.Topic]
		p.topicsMu.Unlock()
		if ts != nil {
			p.invalidate(r.msg.Topic, ts)
		}
	}
	return err
}

// refused reports whether a failed produce attempt was certainly not
// written: it was never sent (errNotSent), or the server refused it (a
// non-retriable error, or OUT_OF_ORDER_SEQUENCE or NOT_OWNER from the
// broker). Every other failure may have followed a write whose answer
// was lost.
func refused(err error) bool {
	return !apierr.Retriable(err) || errors.Is(err, ErrOutOfOrderSequence) || errors.Is(err, ErrNotOwner)
}

// fail sets r's final error: why the producer gave up (cause, which may
// be nil) and the last attempt's error, wrapped in ErrUnknownOutcome when
// r may have been written.
func (r *request) fail(cause error, tries int, last error) {
	err := last
	switch {
	case cause != nil && last != nil:
		err = fmt.Errorf("%w after %d attempts: %w", cause, tries, last)
	case cause != nil:
		err = cause
	}
	if r.unknown {
		err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
	r.err = err
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
