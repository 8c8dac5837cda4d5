package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// partition is the broker's hold on one partition it owns at one epoch.
// Every field except key is guarded by Server.mu.
type partition struct {
	key   meta.PartitionID
	epoch int64
	// next is the offset the next produced record gets.
	next int64
	// gen increases with every reset. A flush part cut at an older
	// generation is not committed: its offsets follow data that failed.
	gen uint64
	// resetErr is why gen last increased; stale flush parts fail with it.
	resetErr error
	// dropped is set once the broker no longer owns the partition at epoch.
	dropped bool
	// bytesIn counts the batch bytes accepted, for the load report.
	bytesIn int64
	// pending are the produces buffered for the next flush, in offset
	// order, and pendingBytes their size.
	pending      []*produce
	pendingBytes int
	// inDirty is true while the partition is on Server.dirty.
	inDirty bool
	// inflight counts the partition's flush parts cut and not yet answered.
	inflight int
	// releasing is set while the partition is handed to another broker:
	// new produces get NOT_OWNER.
	releasing bool
	// prod is the idempotent producers' last accepted requests, committed
	// or not; cutProd is the producer state as the flushes cut so far
	// leave it in etcd, which the next cut's commit expects, and cutAbort
	// the partition's LastAbort likewise.
	prod     map[int64][]*prodSeq
	cutProd  map[int64]meta.ProducerState
	cutAbort int64
	// seqMoved, if not nil, is closed when prod next changes: requests
	// that arrived before their predecessor wait on it.
	seqMoved chan struct{}
}

// newPartition returns the hold on a partition taken on from st.
func newPartition(k meta.PartitionID, st meta.PartitionState) *partition {
	return &partition{key: k, epoch: st.Epoch, next: st.NextOffset, prod: loadProducers(st.Producers), cutProd: st.Producers, cutAbort: st.LastAbort}
}

// produce is one produce request's batches on their way to a flush.
type produce struct {
	// batches are the request's record batches, offsets stamped in place;
	// the flush that writes them drops them once it has copied them.
	batches []byte
	// size is len(batches) as received.
	size int
	// base and last are the first and last offsets assigned.
	base, last int64
	// epoch is the owner's epoch stamped into batches; 0 for a retry
	// answered with the offsets of an earlier request.
	epoch int64
	// stable is the partition's last stable offset once the produce's
	// flush committed (set before done receives nil); 0 for a retry
	// answered with the offsets of an earlier request.
	stable int64
	// seqs is the idempotent producer's sequence range, if any.
	seqs seqRange
	// done receives the outcome exactly once: nil when committed.
	done chan error
}

// Produce appends the request's record batches to a partition this broker
// owns and returns their offsets once they are durable: the segment object
// holding them is stored and its entry committed. Produce takes ownership
// of req.Batches and stamps offsets into it.
//
// If ctx ends first Produce returns ctx's error; the batches may still be
// committed (delivery is at least once).
func (s *Server) Produce(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	defer s.metrics.observeProduceTime(time.Now())
	pr, records, err := s.append(ctx, req)
	var retry *committedRetry
	if errors.As(err, &retry) {
		pr, err = s.findCommitted(ctx, retry)
		if err == nil {
			s.metrics.duplicates.Inc()
		}
	}
	if err != nil {
		s.metrics.observeProduce(err, records, len(req.GetBatches()))
		return nil, err
	}
	select {
	case err = <-pr.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.metrics.observeProduce(err, records, pr.size)
	if err != nil {
		return nil, err
	}
	return &stratav1.ProduceResponse{BaseOffset: pr.base, LastOffset: pr.last, Epoch: pr.epoch, LastStableOffset: pr.stable}, nil
}

// viewCatchUp bounds how long a produce waits for the view to show a topic
// that etcd already has.
const viewCatchUp = 2 * time.Second

// append validates req, assigns its offsets and buffers it.
func (s *Server) append(ctx context.Context, req *stratav1.ProduceRequest) (*produce, int, error) {
	s.admitting.Add(1)
	rpc.ReleaseHold(ctx) // the hold its stream took for it: counted now
	admitted := false
	admit := func() {
		if !admitted {
			admitted = true
			s.endAdmission()
		}
	}
	defer admit()
	v, err := s.validate(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	var (
		gapTimer   *time.Timer // bounds waiting for an earlier sequence
		gapExpired bool
	)
	defer func() {
		if gapTimer != nil {
			gapTimer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		a := s.admitLocked(v, gapExpired)
		if a.wait == nil {
			pr := a.dup
			if a.part != nil {
				pr = s.enqueueLocked(a.part, v)
			}
			s.mu.Unlock()
			return pr, v.records, a.err
		}
		s.mu.Unlock()
		admit() // waiting on another produce, it must not hold a flush
		var expired <-chan time.Time
		if a.gap {
			if gapTimer == nil {
				gapTimer = time.NewTimer(gapWait)
			}
			expired = gapTimer.C
		}
		select {
		case <-a.wait:
		case <-expired:
			gapExpired = true
		case <-ctx.Done():
			return nil, v.records, ctx.Err()
		}
	}
}

// validProduce is a produce request that passed every check that needs no
// lock: its topic, partition, size, batches and sequences.
type validProduce struct {
	topic   meta.Topic
	key     meta.PartitionID
	batches []byte
	headers []segment.BatchHeader
	seqs    seqRange
	records int
}

// validate checks req against the topic and the broker's limits.
func (s *Server) validate(ctx context.Context, req *stratav1.ProduceRequest) (*validProduce, error) {
	// A partition assigned to us can arrive before its topic (the view
	// watches them separately); WaitTopic covers that lag.
	t, err := s.view.WaitTopic(ctx, req.GetTopic(), viewCatchUp)
	switch {
	case errors.Is(err, meta.ErrViewBehind):
		return nil, apierr.Errorf(apierr.ErrNotOwner, "broker %s has not seen topic %q yet", s.id, req.GetTopic())
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q: %v", req.GetTopic(), err)
	}
	p := req.GetPartition()
	if p < 0 || p >= t.Partitions {
		return nil, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", p, t.Name, t.Partitions)
	}
	b := req.GetBatches()
	switch {
	case len(b) == 0:
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "produce to %s/%d has no record batches", t.Name, p)
	case len(b) > s.cfg.MaxRequestBytes:
		return nil, apierr.Errorf(apierr.ErrRecordTooLarge, "request of %d bytes exceeds the broker's limit of %d (raise the broker's --max-request-bytes)", len(b), s.cfg.MaxRequestBytes)
	}
	hs, err := segment.SplitBatches(b)
	if err != nil {
		if errors.Is(err, segment.ErrTooLarge) {
			return nil, apierr.Errorf(apierr.ErrRecordTooLarge, "%v", err)
		}
		return nil, fmt.Errorf("%w: %w", apierr.ErrCorruptBatch, err)
	}
	seqs, err := requestProducer(b, hs)
	if err != nil {
		return nil, err
	}
	v := &validProduce{topic: t, key: meta.PartitionID{TopicID: t.ID, Partition: p}, batches: b, headers: hs, seqs: seqs}
	for _, h := range hs {
		if t.MaxMessageBytes > 0 && h.Size() > int(t.MaxMessageBytes) {
			return nil, apierr.Errorf(apierr.ErrRecordTooLarge, "batch of %d bytes exceeds topic %q max message bytes %d (raise it with: strata topic alter %s --max-message-bytes N)", h.Size(), t.Name, t.MaxMessageBytes, t.Name)
		}
		v.records += int(h.RecordCount)
	}
	return v, nil
}

// admission is what admitLocked decided for one produce: exactly one of
// part (admitted), dup (already accepted), err (refused) or wait (try again
// once it fires) is set.
type admission struct {
	part *partition
	dup  *produce
	err  error
	wait <-chan struct{}
	// gap says wait is for the producer's earlier sequence, which append
	// waits for at most gapWait.
	gap bool
}

// admitLocked decides whether v may be buffered now. s.mu must be held;
// admitLocked never releases it, so callers wait outside the lock.
func (s *Server) admitLocked(v *validProduce, gapExpired bool) admission {
	switch {
	case s.closing:
		return admission{err: apierr.Errorf(apierr.ErrShuttingDown, "broker %s is shutting down", s.id)}
	case !s.member:
		return admission{err: apierr.Errorf(apierr.ErrNotOwner, "broker %s has no membership lease", s.id)}
	}
	part := s.parts[v.key]
	if part == nil || part.releasing {
		return admission{err: apierr.Errorf(apierr.ErrNotOwner, "broker %s does not own %s/%d", s.id, v.topic.Name, v.key.Partition)}
	}
	if v.seqs.marker != markerNone {
		if err := fencedLocked(part, v.seqs); err != nil {
			return admission{err: err}
		}
	} else if v.seqs.idempotent() {
		dup, check, err := dedupLocked(part, v.seqs)
		switch {
		case err != nil || dup != nil:
			if dup != nil {
				s.metrics.duplicates.Inc()
			}
			return admission{dup: dup, err: err}
		case check == seqCommitted:
			return admission{err: &committedRetry{key: v.key, seqs: v.seqs, below: part.prod[v.seqs.pid][0].FirstOffset}}
		case (check == seqGap || check == seqFirst) && !gapExpired:
			return admission{wait: part.seqWaitLocked(), gap: true}
		case check == seqFirst:
			s.log.Info("accepting a transactional producer's first batch past sequence 0", "producer", v.seqs.pid,
				"sequence", v.seqs.first, "topic", v.topic.Name, "partition", v.key.Partition)
		case check == seqGap:
			s.metrics.outOfOrder.Inc()
			return admission{err: apierr.Errorf(apierr.ErrOutOfOrderSequence,
				"producer %d sequence %d arrived before the request preceding it; resend after it", v.seqs.pid, v.seqs.first)}
		}
	}
	if s.bufBytes == 0 || s.bufBytes+len(v.batches) <= s.cfg.MaxBufferedBytes {
		return admission{part: part}
	}
	// Back-pressure: wait until a flush takes buffered bytes away.
	return admission{wait: s.room}
}

// enqueueLocked stamps v's offsets and the owner's epoch into its batches
// in place (both lie outside the batch CRC), buffers it in part and wakes
// the flusher when the buffer crossed FlushBytes or was empty. s.mu must
// be held.
func (s *Server) enqueueLocked(part *partition, v *validProduce) *produce {
	b := v.batches
	next, pos := part.next, 0
	for _, h := range v.headers {
		segment.SetBaseOffset(b[pos:], next)
		segment.SetPartitionLeaderEpoch(b[pos:], int32(part.epoch))
		next += int64(h.RecordCount)
		pos += h.Size()
	}
	pr := &produce{batches: b, size: len(b), base: part.next, last: next - 1, epoch: part.epoch, seqs: v.seqs, done: make(chan error, 1)}
	part.next = next
	acceptLocked(part, pr)
	part.pending = append(part.pending, pr)
	part.pendingBytes += len(b)
	if !part.inDirty {
		part.inDirty = true
		s.dirty = append(s.dirty, part)
	}
	wake := s.bufBytes < s.cfg.FlushBytes && s.bufBytes+len(b) >= s.cfg.FlushBytes
	if s.bufBytes == 0 {
		s.firstAt, wake = time.Now(), true
	}
	s.bufBytes += len(b)
	part.bytesIn += int64(len(b))
	s.bytesIn.Add(int64(len(b)))
	if wake {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return pr
}

// resetLocked fails the partition's buffered produces with err and starts
// a new generation, so flush parts cut before it are not committed either.
// s.mu must be held.
func (s *Server) resetLocked(p *partition, err error) {
	p.gen++
	p.resetErr = err
	for _, pr := range p.pending {
		pr.done <- err
	}
	s.bufBytes -= p.pendingBytes
	if s.bufBytes == 0 {
		s.firstAt = time.Time{}
	}
	p.pending, p.pendingBytes = nil, 0
	p.seqMovedLocked()
	s.roomLocked()
	s.settleLocked()
}

// settleLocked wakes hand-offs waiting for partitions to have nothing
// buffered or in flight. s.mu must be held.
func (s *Server) settleLocked() {
	close(s.settled)
	s.settled = make(chan struct{})
}

// roomLocked wakes produces waiting for buffer room. s.mu must be held.
func (s *Server) roomLocked() {
	close(s.room)
	s.room = make(chan struct{})
}

// dropLocked resets the partition and forgets it: the broker no longer owns
// it at its epoch. s.mu must be held.
func (s *Server) dropLocked(p *partition, err error) {
	if p.dropped {
		return
	}
	s.resetLocked(p, err)
	p.dropped = true
	if s.parts[p.key] == p {
		delete(s.parts, p.key)
		s.forgot = true
	}
	s.metrics.owned.Set(float64(len(s.parts)))
}
