package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// flush is one segment object: the buffered produces of several
// partitions, cut together. The flusher fills it; the PUT goroutine sets
// size, entries and putErr and then closes putDone; the committer reads
// them after putDone.
type flush struct {
	key     string
	parts   []*flushPart
	bytes   int // batch bytes
	size    int64
	putErr  error
	putDone chan struct{}
}

// flushPart is one partition's chunk of a flush.
type flushPart struct {
	p *partition
	// gen and epoch are the partition's at the cut.
	gen   uint64
	epoch int64
	// produces are the chunk's requests, in offset order.
	produces    []*produce
	first, last int64
	// entry is the segment entry to commit, set by the PUT goroutine.
	entry meta.SegmentEntry
	// prodBefore and prodAfter are the partition's idempotent-producer
	// state before and after this part commits; abortBefore and
	// abortAfter its LastAbort. aborted are the transactions the part's
	// abort markers abort.
	prodBefore, prodAfter   map[int64]meta.ProducerState
	abortBefore, abortAfter int64
	aborted                 []meta.AbortedTxn
}

// startFlushing starts the flush pipeline: the flush loop, the PUT
// workers and the committer. Close ends it by closing stopFlush and waits
// for flushDone.
func (s *Server) startFlushing() {
	for range s.cfg.MaxInflightFlushes {
		s.putters.Go(s.putLoop)
	}
	go s.flushLoop()
	go s.commitLoop()
}

// flushLoop cuts flushes when FlushBytes are buffered, the oldest
// buffered batch is FlushInterval old, or (unless LingerWhenIdle) no flush
// is in flight and no produce is being admitted, hands them to the PUT
// workers and queues them, in order, for the committer. It holds at most MaxInflightFlushes flushes
// in flight; while all are busy, produces keep buffering into the next
// (larger) flush. After stopFlush closes it flushes what is left and
// returns.
func (s *Server) flushLoop() {
	defer close(s.commitQ)
	defer close(s.putQ)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		stopping := false
		select {
		case <-s.stopFlush:
			stopping = true
		default:
		}
		s.mu.Lock()
		n, first := s.bufBytes, s.firstAt
		s.mu.Unlock()
		if n == 0 {
			if stopping {
				return
			}
			select {
			case <-s.kick:
			case <-s.stopFlush:
			}
			continue
		}
		// With no flush in flight the buffered batches go at once, as
		// soon as the produces that arrived with them are buffered too:
		// waiting longer would add latency and batch nothing more.
		// Otherwise they wait up to FlushInterval for company.
		if n < s.cfg.FlushBytes && !stopping && (!s.flushesAtOnce() || s.admitting.Load() > 0) {
			if wait := time.Until(first.Add(s.cfg.FlushInterval)); wait > 0 {
				timer.Reset(wait)
				select {
				case <-s.kick:
				case <-timer.C:
				case <-s.stopFlush:
				}
				timer.Stop()
				continue
			}
		}
		s.sem <- struct{}{} // wait for a free in-flight slot
		f := s.cut()
		if f == nil {
			<-s.sem
			continue
		}
		s.metrics.inflight.Inc()
		s.putQ <- f // never blocks: the queues hold as many as sem
		s.commitQ <- f
	}
}

// flushesAtOnce reports whether buffered batches go without waiting for
// FlushInterval: no flush is in flight, and LingerWhenIdle is off.
func (s *Server) flushesAtOnce() bool {
	return len(s.sem) == 0 && !s.cfg.LingerWhenIdle
}

// kickFlusher wakes the flush loop, if it sleeps.
func (s *Server) kickFlusher() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// cut takes the buffered produces of whole partitions, oldest first, until
// the flush holds FlushBytes, and returns them as a new flush (nil if
// nothing is buffered).
func (s *Server) cut() *flush {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bufBytes == 0 {
		return nil
	}
	s.seq++
	f := &flush{
		key:     fmt.Sprintf("%s%d-%s-%d", s.cfg.ObjectPrefix, time.Now().UnixMilli(), s.id, s.seq),
		putDone: make(chan struct{}),
	}
	i := 0
	var left []*partition // with produces left buffered (maxPartAborts)
	for ; i < len(s.dirty) && f.bytes < s.cfg.FlushBytes; i++ {
		p := s.dirty[i]
		p.inDirty = false
		if len(p.pending) == 0 {
			continue // reset since it was buffered
		}
		fp, bytes := s.cutPartLocked(p)
		f.parts = append(f.parts, fp)
		f.bytes += bytes
		if len(p.pending) > 0 {
			left = append(left, p)
		}
	}
	s.roomLocked()
	n := copy(s.dirty, s.dirty[i:])
	clear(s.dirty[n:])
	s.dirty = s.dirty[:n]
	for _, p := range left {
		p.inDirty = true
		s.dirty = append(s.dirty, p)
	}
	if s.bufBytes == 0 {
		s.firstAt = time.Time{}
	}
	if len(f.parts) == 0 {
		return nil
	}
	return f
}

// cutPartLocked takes p's buffered produces as a flush part — all of them,
// or those before its (maxPartAborts+1)th abort marker — and returns it
// with its bytes. s.mu must be held.
func (s *Server) cutPartLocked(p *partition) (*flushPart, int) {
	take, aborts, bytes := len(p.pending), 0, 0
	for i, pr := range p.pending {
		if pr.seqs.marker == markerAbort {
			if aborts++; aborts > maxPartAborts {
				take = i
				break
			}
		}
		bytes += pr.size
	}
	produces := p.pending[:take:take]
	after, aborted := advanceProducers(p.cutProd, produces)
	fp := &flushPart{
		p: p, gen: p.gen, epoch: p.epoch,
		produces:    produces,
		first:       produces[0].base,
		last:        produces[len(produces)-1].last,
		prodBefore:  p.cutProd,
		prodAfter:   after,
		abortBefore: p.cutAbort,
		abortAfter:  p.cutAbort,
		aborted:     aborted,
	}
	if len(aborted) > 0 {
		fp.abortAfter = aborted[len(aborted)-1].Last
	}
	p.cutProd, p.cutAbort = after, fp.abortAfter
	p.inflight++
	p.pending = p.pending[take:]
	if len(p.pending) == 0 {
		p.pending = nil
	}
	p.pendingBytes -= bytes
	s.bufBytes -= bytes
	return fp, bytes
}

// putLoop is one of MaxInflightFlushes PUT workers: it runs the PUTs of
// the flushes the flush loop cuts until the flush loop ends. Long-lived
// workers rather than a goroutine per flush, because the object store
// client's call chain is deep: a fresh goroutine grew (copied) its stack
// several times on every PUT, CPU spent between a produce and its ack.
//
// Each worker builds its objects in one buffer that it keeps from PUT to
// PUT: a fresh 4 MiB allocation per flush is zeroed by Go before the
// object overwrites it, which cost as much CPU as copying the object.
func (s *Server) putLoop() {
	var buf []byte
	for f := range s.putQ {
		buf = s.put(f, buf)
	}
}

// keepObjectBuffer returns the buffer a PUT worker keeps for its next
// object after storing obj, which was built in old or in new memory. It
// keeps obj's memory, unless the PUT failed (the transport may still read
// a body it gave up on: then neither is reused) or obj is larger than
// twice FlushBytes (a flush that grew while every slot was busy; keeping
// it would hold that memory for good).
func (s *Server) keepObjectBuffer(old, obj []byte, putErr error) []byte {
	inOld := cap(old) > 0 && len(obj) > 0 && &old[:1][0] == &obj[0]
	switch {
	case putErr != nil && inOld:
		return nil
	case putErr != nil || cap(obj) > 2*s.cfg.FlushBytes:
		return old
	}
	return obj[:0]
}

// put builds the flush's segment object in buf, if large enough, PUTs it
// and returns the buffer to build the next object in.
func (s *Server) put(f *flush, buf []byte) []byte {
	// putDone closes once the PUT ended, before the PUT is counted, so
	// that a count of PUTs implies their flushes are ready to commit.
	putDone := sync.OnceFunc(func() { close(f.putDone) })
	defer putDone()
	start := time.Now()
	// A fresh Writer per flush, on the worker's buffer. The writer refers
	// to the requests' batches (validated when they arrived, so their
	// CRCs are not computed again) and copies each once, into the object.
	w := segment.NewWriter(segment.WriterOptions{Buffer: buf})
	bufs := make([][]byte, 0, 8)
	for _, fp := range f.parts {
		bufs = bufs[:0]
		for _, pr := range fp.produces {
			bufs = append(bufs, pr.batches)
		}
		if err := w.AddVerified(fp.p.key.TopicID, fp.p.key.Partition, bufs...); err != nil {
			f.putErr = fmt.Errorf("build segment: %w", err)
			return buf
		}
	}
	obj, footer, err := w.Finish()
	// The object holds a copy: let the requests' memory go while the PUT
	// runs.
	for _, fp := range f.parts {
		for _, pr := range fp.produces {
			pr.batches = nil
		}
	}
	if err != nil {
		f.putErr = fmt.Errorf("build segment: %w", err)
		return buf
	}
	if f.putErr = s.entries(f, obj, footer); f.putErr != nil {
		return buf
	}
	ctx, cancel := context.WithTimeout(s.flushCtx, storeTimeout)
	defer cancel()
	f.putErr = s.cfg.Store.Put(ctx, f.key, obj)
	putDone()
	s.metrics.putTime.Observe(time.Since(start).Seconds())
	s.metrics.flushBytes.Observe(float64(f.size))
	return s.keepObjectBuffer(buf, obj, f.putErr)
}

// entries sets the flush's size and each part's segment entry from the
// object's footer.
func (s *Server) entries(f *flush, obj []byte, footer *segment.Footer) error {
	f.size = int64(len(obj))
	created := time.Now().UnixMilli()
	for _, fp := range f.parts {
		c, ok := footer.Find(fp.p.key.TopicID, fp.p.key.Partition)
		if !ok || c.FirstOffset != fp.first || c.LastOffset != fp.last {
			return fmt.Errorf("build segment: chunk of %s/%d does not match offsets %d..%d",
				fp.p.key.TopicID, fp.p.key.Partition, fp.first, fp.last)
		}
		fp.entry = meta.SegmentEntry{
			TopicID: fp.p.key.TopicID, Partition: fp.p.key.Partition,
			ObjectKey: f.key, ObjectSize: f.size,
			Pos: c.Position, Len: c.Length,
			FirstOffset: c.FirstOffset, LastOffset: c.LastOffset,
			MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp,
			CreatedMs: created,
		}
	}
	return nil
}

// commitLoop commits the flushes strictly in the order they were cut:
// each partition's commit expects the next offset the previous one left.
// Flushes whose PUTs finished while an earlier one was PUT or committed
// are committed together, in one CommitSegments call (group commit): one
// etcd transaction and one partition state write per partition for all
// of them, so a commit slower than the flush interval does not queue the
// flushes behind it one transaction at a time.
func (s *Server) commitLoop() {
	defer close(s.flushDone)
	var held *flush // taken from commitQ while its PUT was still running
	for {
		f := held
		held = nil
		if f == nil {
			var ok bool
			if f, ok = <-s.commitQ; !ok {
				break
			}
		}
		<-f.putDone
		group := []*flush{f}
		if f.putErr == nil {
			group, held = s.gatherPut(group)
		}
		s.commit(group)
		for range group {
			s.metrics.inflight.Dec()
			<-s.sem
		}
		s.kickFlusher() // the pipeline may be idle now
	}
	s.putters.Wait() // the flush loop has closed putQ: they are ending
}

// maxGroupFlushes bounds the flushes committed together; a partition's
// commit then holds at most this many entries (well inside MaxTxnOps).
const maxGroupFlushes = 16

// gatherPut appends to group the flushes queued behind it whose PUTs have
// succeeded, in order, without waiting. The first one still PUTting, or
// whose PUT failed, ends the group and is returned as held: it is
// committed (or failed) next.
func (s *Server) gatherPut(group []*flush) (_ []*flush, held *flush) {
	for len(group) < maxGroupFlushes {
		var g *flush
		select {
		case next, ok := <-s.commitQ:
			if !ok {
				return group, nil
			}
			g = next
		default:
			return group, nil
		}
		select {
		case <-g.putDone:
			if g.putErr == nil {
				group = append(group, g)
				continue
			}
		default:
		}
		return group, g
	}
	return group, nil
}

// commit commits the segment entries of a group of flushes — one flush
// whose PUT failed, or flushes whose PUTs succeeded — in one
// CommitSegments call, and answers their produces.
func (s *Server) commit(group []*flush) {
	defer func() {
		s.mu.Lock()
		for _, f := range group {
			for _, fp := range f.parts {
				fp.p.inflight--
			}
		}
		s.settleLocked()
		s.mu.Unlock()
	}()
	// Failures re-read partition state; once etcd fails to answer, the
	// remaining parts skip the read instead of waiting for it again.
	rd := &stateReader{s: s}
	if f := group[0]; f.putErr != nil {
		s.failPut(f, s.liveParts(f), rd)
		return
	}
	commits, parts := s.groupCommits(group, rd)
	if len(commits) == 0 {
		for range group {
			s.metrics.flushes.WithLabelValues(apierr.Label(apierr.ErrNotOwner)).Inc() // every partition moved away
		}
		return
	}
	start := time.Now()
	results := s.cfg.Meta.CommitSegments(s.flushCtx, commits)
	s.metrics.commitTime.Observe(time.Since(start).Seconds())
	s.metrics.grouped.Observe(float64(len(group)))
	failed := map[*flushPart]error{}
	var failedInOrder []*flushPart
	committed := make([]*flushPart, 0, len(group[0].parts))
	for i, c := range commits {
		for _, fp := range parts[i] {
			err := results[i]
			if err != nil && meta.IsRetriable(err) && s.landed(fp, rd) {
				err = nil
			}
			if err == nil {
				committed = append(committed, fp)
				continue
			}
			failed[fp] = commitError(err)
			failedInOrder = append(failedInOrder, fp)
			s.log.Warn("commit failed", "object", c.Entry.ObjectKey, "topic_id", fp.p.key.TopicID, "partition", fp.p.key.Partition,
				"epoch", fp.epoch, "first_offset", fp.first, "err", err)
		}
	}
	// The producers' state shows a part committed before its produces
	// are answered: a retry that follows an answer at once is a retry of
	// a committed request, not one still being committed.
	s.mu.Lock()
	for _, fp := range committed {
		settledLocked(fp)
	}
	s.mu.Unlock()
	for _, fp := range committed {
		answer(fp, nil)
	}
	for _, fp := range failedInOrder {
		s.fail(fp, failed[fp], rd)
	}
	s.countFlushes(group, failed)
}

// groupCommits builds one meta.Commit per partition from the live parts of
// a group of flushes, in flush order: a partition's later parts go into
// its commit's More, since they follow its earlier ones. It returns the
// commits and, for each, its parts.
func (s *Server) groupCommits(group []*flush, rd *stateReader) ([]meta.Commit, [][]*flushPart) {
	var (
		commits []meta.Commit
		parts   [][]*flushPart
		index   = map[meta.PartitionID]int{}
	)
	for _, f := range group {
		for _, fp := range s.liveParts(f) {
			i, ok := index[fp.p.key]
			if !ok {
				index[fp.p.key] = len(commits)
				commits = append(commits, meta.Commit{Broker: s.id, Epoch: fp.epoch, Entry: fp.entry, Producers: fp.prodBefore, NewProducers: fp.prodAfter,
					LastAbort: fp.abortBefore, NewLastAbort: fp.abortAfter, Aborted: slices.Clip(fp.aborted)})
				parts = append(parts, []*flushPart{fp})
				continue
			}
			c := &commits[i]
			if last := parts[i][len(parts[i])-1]; fp.epoch != c.Epoch || fp.first != last.last+1 {
				// Live parts of one partition share its generation, so
				// they follow each other; this is a bug, not a race.
				s.fail(fp, fmt.Errorf("%w: flush part %d..%d does not follow %d..%d", apierr.ErrStorageUnavailable, fp.first, fp.last, last.first, last.last), rd)
				continue
			}
			c.More = append(c.More, fp.entry)
			c.NewProducers, c.NewLastAbort = fp.prodAfter, fp.abortAfter
			c.Aborted = append(c.Aborted, fp.aborted...)
			parts[i] = append(parts[i], fp)
		}
	}
	return commits, parts
}

// countFlushes counts each flush of a group by its outcome: OK, or the
// reason of its first part whose commit failed.
func (s *Server) countFlushes(group []*flush, failed map[*flushPart]error) {
	for _, f := range group {
		var first error
		for _, fp := range f.parts {
			if err, ok := failed[fp]; ok {
				first = err
				break
			}
		}
		s.metrics.flushes.WithLabelValues(apierr.Label(first)).Inc()
	}
}

// liveParts answers the parts of partitions reset since the cut with the
// reset's error and returns the others: the reset parts follow offsets
// that failed and must never be committed.
func (s *Server) liveParts(f *flush) []*flushPart {
	live := make([]*flushPart, 0, len(f.parts))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fp := range f.parts {
		if fp.p.gen != fp.gen {
			answer(fp, fp.p.resetErr)
			continue
		}
		live = append(live, fp)
	}
	return live
}

// failPut fails the live parts of a flush whose PUT failed.
func (s *Server) failPut(f *flush, live []*flushPart, rd *stateReader) {
	s.log.Warn("flush PUT failed", "object", f.key, "bytes", f.bytes, "partitions", len(live), "err", f.putErr)
	s.noteStorageError(f.putErr)
	err := fmt.Errorf("%w: storing segment %s: %v", apierr.ErrStorageUnavailable, f.key, f.putErr)
	if errors.Is(f.putErr, apierr.ErrStorageRejected) {
		// Retrying cannot help until an operator fixes the bucket or
		// the credentials: the producer gets the cause at once.
		err = fmt.Errorf("storing segment %s: %w", f.key, f.putErr)
	}
	for _, fp := range live {
		s.fail(fp, err, rd)
	}
	s.metrics.flushes.WithLabelValues(apierr.Label(err)).Inc()
}

// commitError maps a CommitSegments error to the produce error.
func commitError(err error) error {
	switch {
	case errors.Is(err, meta.ErrFenced), errors.Is(err, meta.ErrOffsetMismatch):
		return fmt.Errorf("%w: %w", apierr.ErrNotOwner, err)
	default:
		return fmt.Errorf("%w: commit: %w", apierr.ErrStorageUnavailable, err)
	}
}

// stateReader reads partition states for one flush's failure handling
// and, after the first etcd error, stops trying.
type stateReader struct {
	s    *Server
	down error
}

func (r *stateReader) partition(key meta.PartitionID) (meta.PartitionState, error) {
	if r.down != nil {
		return meta.PartitionState{}, r.down
	}
	st, err := r.s.cfg.Meta.GetPartition(r.s.flushCtx, key.TopicID, key.Partition)
	if err != nil {
		r.down = err
	}
	return st, err
}

// landed reports whether a commit whose outcome is unknown (etcd error)
// applied after all: the partition's next offset is past the chunk and the
// entry at its first offset names this flush's object.
func (s *Server) landed(fp *flushPart, rd *stateReader) bool {
	st, err := rd.partition(fp.p.key)
	if err != nil || st.NextOffset <= fp.last {
		return false
	}
	e, err := s.cfg.Meta.FindSegment(s.flushCtx, fp.entry.TopicID, fp.entry.Partition, fp.first)
	if err != nil && !errors.Is(err, meta.ErrNotFound) {
		rd.down = err
	}
	return err == nil && e.ObjectKey == fp.entry.ObjectKey && e.FirstOffset == fp.first && e.LastOffset == fp.last
}

// fail answers a flush part's produces with err and, unless that happened
// already, resets its partition to the committed next offset read from
// etcd — or drops it, if the broker no longer owns it or etcd cannot say
// (the ownership loop takes it up again from the View). Later in-flight
// flush parts of the partition then fail too, and offsets stay dense.
func (s *Server) fail(fp *flushPart, err error, rd *stateReader) {
	st, gerr := rd.partition(fp.p.key)
	s.mu.Lock()
	defer s.mu.Unlock()
	answer(fp, err)
	p := fp.p
	if p.gen != fp.gen || p.dropped {
		return
	}
	if gerr == nil && st.Broker == s.id && st.Epoch == p.epoch && s.member {
		s.resetLocked(p, err)
		p.next = st.NextOffset
		p.prod, p.cutProd, p.cutAbort = loadProducers(st.Producers), st.Producers, st.LastAbort
		s.log.Info("partition reset to committed offset", "topic_id", p.key.TopicID, "partition", p.key.Partition, "next_offset", p.next)
		return
	}
	if gerr != nil {
		s.log.Warn("cannot read partition state after a failed flush; dropping it until the next ownership check",
			"topic_id", p.key.TopicID, "partition", p.key.Partition, "err", gerr)
	}
	s.dropLocked(p, err)
}

// answer sends every produce of the part its outcome and, on success,
// the partition's last stable offset as the part's commit left it.
func answer(fp *flushPart, err error) {
	stable := meta.PartitionState{NextOffset: fp.last + 1, Producers: fp.prodAfter}.LastStable()
	for _, pr := range fp.produces {
		pr.stable = stable
		pr.done <- err
	}
}
