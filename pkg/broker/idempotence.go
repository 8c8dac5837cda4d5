package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// Idempotent producers (docs/elasticity.md): a batch that carries a
// producer ID (not segment.NoProducerID) also carries the producer's epoch
// and the sequence number of its first record; sequences count records per
// producer and partition. A request's batches must all belong to one
// producer and have consecutive sequences.
//
// A producer keeps several requests in flight per partition, so the broker
// accepts a producer's requests only in sequence order: a request must
// start right after the last one accepted. One that arrives early (the
// requests travel on separate streams, or the one before it failed and is
// being resent) waits up to gapWait for the gap to fill, then fails with
// the retriable OUT_OF_ORDER_SEQUENCE; the producer resends it after the
// earlier request is resolved. Offsets therefore follow sequences, and
// records of a partition are written in produce order.
//
// The broker remembers, per partition and producer, the last seqHistory
// requests it accepted (their sequences and offsets). A request whose
// sequences lie at or below the last accepted one is a retry: if it lies
// within a remembered request that is committed, it is answered with the
// original offsets and not written again; if that request is still in
// flight, the retry is refused with a retriable TIMEOUT so the client asks
// again after the outcome is known. The last committed request of each
// producer travels in the partition's metadata
// (meta.PartitionState.Producers), written by the fencing commit, so a new
// owner after failover deduplicates a retry of it too.
//
// Epochs only grow (a Kafka client's KIP-360 bump, the transaction
// coordinator's bump when it fences a producer), and a request of an
// epoch below the one the partition holds for its producer comes from an
// instance that was replaced: it is refused with ErrProducerFenced
// (fencedLocked). A newer epoch starts its sequences from 0.

// seqHistory is how many accepted requests per producer and partition the
// broker remembers for deduplication: at least the producer's requests in
// flight (client.DefaultMaxInflight).
const seqHistory = 8

// gapWait bounds how long a request that arrived before its predecessor
// waits for it. Requests forwarded side by side arrive out of order by
// milliseconds; a predecessor that fails (a reset to the committed state
// after an outage) comes back only once the producer has resent it, and
// the requests after it, each waiting the whole gapWait before
// OUT_OF_ORDER_SEQUENCE and then resent, held partitions for 8-48 s after
// etcd returned with 2 s (race-enabled servers, TestDependencyOutages);
// with 200 ms, 0.3-1.6 s.
const gapWait = 250 * time.Millisecond

// seqRange is the producer identity and sequence range of one request.
type seqRange struct {
	pid         int64 // segment.NoProducerID when not idempotent
	epoch       int16
	first, last int32 // segment.NoSequence for a marker
	// txn is set for transactional batches (txn.go).
	txn bool
	// marker is set for an end-transaction marker, which has no sequences.
	marker markerKind
}

// idempotent reports whether the request carries producer sequences.
func (r seqRange) idempotent() bool { return r.pid != segment.NoProducerID }

// requestSeqs reads the producer identity of a request's batches.
func requestSeqs(hs []segment.BatchHeader) (seqRange, error) {
	r := seqRange{pid: hs[0].ProducerID, epoch: hs[0].ProducerEpoch, first: hs[0].BaseSequence}
	if !r.idempotent() {
		for _, h := range hs[1:] {
			if h.ProducerID != segment.NoProducerID {
				return r, apierr.Errorf(apierr.ErrInvalidRequest, "a request mixes idempotent and plain batches")
			}
		}
		return r, nil
	}
	if r.pid < 0 || r.first < 0 {
		return r, apierr.Errorf(apierr.ErrInvalidRequest, "producer id %d / sequence %d must not be negative", r.pid, r.first)
	}
	next := int64(r.first)
	for _, h := range hs {
		switch {
		case h.ProducerID != r.pid || h.ProducerEpoch != r.epoch:
			return r, apierr.Errorf(apierr.ErrInvalidRequest, "a request mixes producers (%d/%d and %d/%d)", r.pid, r.epoch, h.ProducerID, h.ProducerEpoch)
		case int64(h.BaseSequence) != next:
			return r, apierr.Errorf(apierr.ErrInvalidRequest, "batch sequence %d, want %d (sequences must be consecutive)", h.BaseSequence, next)
		}
		next += int64(h.RecordCount)
	}
	if next-1 > int64(^uint32(0)>>1) {
		return r, apierr.Errorf(apierr.ErrInvalidRequest, "sequence %d overflows", next-1)
	}
	r.last = int32(next - 1)
	return r, nil
}

// prodSeq is a partition's memory of one accepted request of a producer.
type prodSeq struct {
	meta.ProducerState
	// pending is the produce while it is not committed; nil once it is (or
	// when the state came from metadata).
	pending *produce
}

// loadProducers turns a partition's committed producer state into the
// broker's working copy: per producer, its accepted requests, oldest
// first.
func loadProducers(m map[int64]meta.ProducerState) map[int64][]*prodSeq {
	out := make(map[int64][]*prodSeq, len(m))
	for id, ps := range m {
		out[id] = []*prodSeq{{ProducerState: ps}}
	}
	return out
}

// seqCheck is what dedupLocked decided about a request.
type seqCheck int

const (
	// seqNew: the request follows the last accepted one; accept it.
	seqNew seqCheck = iota
	// seqGap: a request before it has not arrived yet; wait for it.
	seqGap
	// seqFirst: a transactional producer the partition does not know
	// starts past sequence 0. Wait as for a gap; then accept it, as
	// Kafka accepts any first sequence of a producer a partition does not
	// know. librdkafka purges the unsent batches of a transaction it
	// aborts, so the first batch a partition sees may start past 0, and
	// refusing it leaves the producer unable to finish the abort. No
	// batch of the producer's transaction can be here already: a
	// partition forgets no producer with an open transaction.
	seqFirst
	// seqCommitted: a retry of a request older than every one the
	// partition remembers. A producer's requests are accepted only in
	// sequence order from 0 and committed in order, so it is committed;
	// its offsets are looked up in the log (findCommitted).
	seqCommitted
)

// dedupLocked checks a request against the producer's accepted ones. It
// returns a produce already answered with the original offsets for a
// retry of a committed request, an error, or what to do with a request
// that is not a retry. s.mu must be held.
func dedupLocked(p *partition, r seqRange) (*produce, seqCheck, error) {
	if err := fencedLocked(p, r); err != nil {
		return nil, seqNew, err
	}
	h := p.prod[r.pid]
	if len(h) == 0 || h[len(h)-1].Epoch != r.epoch {
		// A producer the partition does not know starts at 0; a later
		// sequence waits for its first request, or — if the partition
		// forgot the producer (more than meta.MaxProducersPerPartition) —
		// fails, and the producer continues under a new id. A
		// transactional producer's is then accepted (seqFirst).
		switch {
		case r.first == 0:
			return nil, seqNew, nil
		case len(h) == 0 && r.txn:
			return nil, seqFirst, nil
		}
		return nil, seqGap, nil
	}
	last := h[len(h)-1]
	switch next := int64(last.LastSeq) + 1; {
	case int64(r.first) == next:
		return nil, seqNew, nil
	case int64(r.first) > next:
		return nil, seqGap, nil
	}
	for _, ps := range h {
		if r.first < ps.FirstSeq || r.last > ps.LastSeq {
			continue
		}
		if ps.pending != nil {
			return nil, seqNew, apierr.Errorf(apierr.ErrTimeout, "producer %d sequences %d..%d are still being committed; retry", r.pid, r.first, r.last)
		}
		pr := &produce{
			base: ps.FirstOffset + int64(r.first-ps.FirstSeq),
			last: ps.FirstOffset + int64(r.last-ps.FirstSeq),
			done: make(chan error, 1),
		}
		pr.done <- nil
		return pr, seqNew, nil
	}
	if r.last < h[0].FirstSeq {
		return nil, seqCommitted, nil
	}
	return nil, seqNew, apierr.Errorf(apierr.ErrInvalidRequest, "producer %d sequences %d..%d overlap its requests %d..%d",
		r.pid, r.first, r.last, h[0].FirstSeq, last.LastSeq)
}

// maxLookupSegments bounds how many segments findCommitted reads back.
const maxLookupSegments = 32

// committedRetry is a retry of a committed request older than the ones
// the partition remembers; Produce answers it with findCommitted.
type committedRetry struct {
	key   meta.PartitionID
	seqs  seqRange
	below int64 // the request's records lie below this offset
}

func (c *committedRetry) Error() string {
	return fmt.Sprintf("retry of committed sequences %v below offset %d", c.seqs, c.below)
}

// findCommitted finds the offsets a committed request of an idempotent
// producer got, reading the partition's log backwards from below: the
// batch that holds the request's first sequence gives its base offset,
// and a request's records have consecutive offsets.
func (s *Server) findCommitted(ctx context.Context, c *committedRetry) (*produce, error) {
	r := c.seqs
	notFound := func() error {
		return apierr.Errorf(apierr.ErrInvalidRequest, "producer %d sequences %d..%d are older than its remembered requests and no longer in the log", r.pid, r.first, r.last)
	}
	off := c.below - 1
	for range maxLookupSegments {
		if off < 0 {
			return nil, notFound()
		}
		e, err := s.cfg.Meta.FindSegment(ctx, c.key.TopicID, c.key.Partition, off)
		if errors.Is(err, meta.ErrNotFound) {
			return nil, notFound()
		}
		if err != nil {
			return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "looking up a retried request: %v", err)
		}
		data, err := s.cfg.Store.Get(ctx, e.ObjectKey, e.Pos, e.Len)
		if err != nil {
			return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "looking up a retried request: %v", err)
		}
		s.metrics.lookupBytes.Add(float64(len(data)))
		hs, err := segment.SplitBatches(data)
		if err != nil {
			return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "looking up a retried request in %s: %v", e.ObjectKey, err)
		}
		for i := len(hs) - 1; i >= 0; i-- {
			h := hs[i]
			if h.ProducerID != r.pid || h.ProducerEpoch != r.epoch || h.Attributes&segment.AttrControl != 0 {
				continue // another producer's, or a marker (no sequences)
			}
			lastSeq := int64(h.BaseSequence) + int64(h.RecordCount) - 1
			switch {
			case int64(r.first) > lastSeq:
				return nil, notFound() // passed it: the request is not in the log
			case r.first >= h.BaseSequence:
				pr := &produce{base: h.BaseOffset + int64(r.first-h.BaseSequence), done: make(chan error, 1)}
				pr.last = pr.base + int64(r.last-r.first)
				pr.done <- nil
				return pr, nil
			}
		}
		off = e.FirstOffset - 1
	}
	return nil, notFound()
}

// acceptLocked records pr as the producer's last request (or applies its
// marker) and wakes the requests waiting for it. s.mu must be held.
func acceptLocked(p *partition, pr *produce) {
	r := pr.seqs
	switch {
	case !r.idempotent():
		return
	case r.marker != markerNone:
		markLocked(p, pr)
		return
	}
	h := p.prod[r.pid]
	var prev *meta.ProducerState
	if len(h) > 0 {
		prev = &h[len(h)-1].ProducerState
	}
	next, _ := afterProduce(prev, pr)
	ps := &prodSeq{ProducerState: next, pending: pr}
	if len(h) > 0 && (h[len(h)-1].Epoch != r.epoch || h[len(h)-1].LastSeq < 0) {
		h = nil // another epoch's requests, or none (a marker's new epoch)
	}
	if len(h) == seqHistory {
		copy(h, h[1:])
		h = h[:seqHistory-1]
	}
	p.prod[r.pid] = append(h, ps)
	p.seqMovedLocked()
	if len(p.prod) > meta.MaxProducersPerPartition {
		forgetOldestLocked(p)
	}
}

// forgetOldestLocked forgets the producer that wrote least recently and
// has no open transaction, as the commit will (meta.BoundProducers).
// s.mu must be held.
func forgetOldestLocked(p *partition) {
	var oldest int64
	first := true
	for id, h := range p.prod {
		last := h[len(h)-1]
		if last.Txn != nil {
			continue
		}
		if lo, old := last.LastOffset, p.prod[oldest]; first || lo < old[len(old)-1].LastOffset || (lo == old[len(old)-1].LastOffset && id < oldest) {
			oldest, first = id, false
		}
	}
	if !first {
		delete(p.prod, oldest)
	}
}

// seqMovedLocked wakes the requests waiting for a producer's sequence to
// move on. s.mu must be held.
func (p *partition) seqMovedLocked() {
	if p.seqMoved != nil {
		close(p.seqMoved)
		p.seqMoved = nil
	}
}

// seqWaitLocked returns a channel closed when the partition's producer
// state next changes. s.mu must be held.
func (p *partition) seqWaitLocked() <-chan struct{} {
	if p.seqMoved == nil {
		p.seqMoved = make(chan struct{})
	}
	return p.seqMoved
}

// advanceProducers returns the producer state after produces commit on top
// of before, and the transactions their abort markers abort (afterProduce);
// before itself is never modified. It returns before when no produce is
// idempotent.
func advanceProducers(before map[int64]meta.ProducerState, produces []*produce) (map[int64]meta.ProducerState, []meta.AbortedTxn) {
	var (
		after   map[int64]meta.ProducerState
		aborted []meta.AbortedTxn
	)
	for _, pr := range produces {
		r := pr.seqs
		if !r.idempotent() {
			continue
		}
		cur := before
		if after != nil {
			cur = after
		}
		var prev *meta.ProducerState
		if ps, ok := cur[r.pid]; ok {
			prev = &ps
		}
		next, ab := afterProduce(prev, pr)
		if after == nil {
			after = maps.Clone(before)
			if after == nil {
				after = map[int64]meta.ProducerState{}
			}
		}
		after[r.pid] = next
		if ab != nil {
			aborted = append(aborted, *ab)
		}
	}
	if after == nil {
		return before, nil
	}
	return meta.BoundProducers(after), aborted
}

// settledLocked marks the produces of a committed flush part as committed
// in the producers' state. s.mu must be held.
func settledLocked(fp *flushPart) {
	for _, pr := range fp.produces {
		if !pr.seqs.idempotent() {
			continue
		}
		for _, ps := range fp.p.prod[pr.seqs.pid] {
			if ps.pending == pr {
				ps.pending = nil
			}
		}
	}
}

// String is for logs.
func (r seqRange) String() string {
	switch {
	case !r.idempotent():
		return "-"
	case r.marker == markerCommit:
		return fmt.Sprintf("%d/%d:commit", r.pid, r.epoch)
	case r.marker == markerAbort:
		return fmt.Sprintf("%d/%d:abort", r.pid, r.epoch)
	}
	return fmt.Sprintf("%d/%d:%d..%d", r.pid, r.epoch, r.first, r.last)
}
