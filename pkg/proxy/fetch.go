package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// ErrCorruptData reports stored data (a segment chunk, or the metadata that
// points at it) that fails validation. It reaches clients as an Internal
// status: the request was fine, the store is not.
var ErrCorruptData = errors.New("proxy: corrupt stored data")

// Offsets that ListOffsets resolves instead of a timestamp.
const (
	// OffsetLatest asks for the high watermark.
	OffsetLatest = -1
	// OffsetEarliest asks for the log start.
	OffsetEarliest = -2
)

// FetchRequest asks for committed record batches of one partition.
type FetchRequest struct {
	Topic     string
	Partition int32
	// Offset is the first offset wanted. The result may start with a batch
	// that begins before it; the client skips the records below it.
	Offset int64
	// MaxBytes is the byte budget; 0 means DefaultFetchBytes, and it is
	// capped at Config.MaxFetchBytes. The first batch is returned whole
	// even if it is larger.
	MaxBytes int32
	// MaxWait is how long to wait for new data when Offset is the high
	// watermark; 0 answers at once. Capped at Config.MaxFetchWait.
	MaxWait time.Duration
	// ReadCommitted reads only below the last stable offset (Kafka's
	// isolation.level=read_committed): no record of a transaction still
	// open, and with the aborted transactions among the batches returned
	// listed in the result. Otherwise reads go up to the high watermark.
	ReadCommitted bool
}

// FetchResult is the answer to a fetch.
type FetchResult struct {
	// Batches are whole record batches, back to back, in offset order, all
	// below HighWatermark. They may be the block cache's own bytes: read
	// them, never modify them.
	Batches []byte
	// HighWatermark is the partition's next offset when the fetch was
	// answered.
	HighWatermark int64
	// LogStart is the first readable offset.
	LogStart int64
	// LastStable is the partition's last stable offset: below it, every
	// transaction is committed or aborted.
	LastStable int64
	// Aborted are, for a ReadCommitted fetch, the aborted transactions
	// whose records lie among Batches, ordered by their abort markers:
	// the reader drops a listed producer's batches from First on until
	// its abort marker, as Kafka's consumers do.
	Aborted []meta.AbortedTxn
}

// OffsetsResult is the answer to ListOffsets.
type OffsetsResult struct {
	Offset        int64
	HighWatermark int64
	LogStart      int64
	// Timestamp is the found record's timestamp for a lookup by time, -1
	// otherwise (and when no record is at or after the time).
	Timestamp int64
}

// Fetcher serves fetches and offset lookups from metadata and object
// storage, through the block cache. Like Router, it is independent of the
// front end.
type Fetcher struct {
	view        *meta.View
	meta        *meta.Store
	store       objstore.Store
	cache       *cache.Cache
	maxBytes    int32
	maxWait     time.Duration
	logStartTTL time.Duration
	done        <-chan struct{} // closed when the server shuts down
	log         *slog.Logger
	metrics     *metrics
	entries     *entryCache
	// objects holds opened segment objects for ranged reads.
	objects *openObjects

	mu        sync.Mutex // guards logStarts
	logStarts map[meta.PartitionID]cachedLogStart

	// tail tracks partitions with tailing readers, for warming.
	tail tailReaders
	// recent holds batches acknowledged through this proxy for
	// partitions with tailing readers (Router fills it).
	recent *recentBatches
	// warmCtx ends running warms at shutdown (stopWarms); warms tracks
	// each warm, whether the warm loop or a reader claimed it, so that
	// no warm outlives the Fetcher or runs on a reader's goroutine.
	warmCtx    context.Context
	cancelWarm context.CancelFunc
	warms      sync.WaitGroup
	// tailWindow is Config.TailWindow.
	tailWindow time.Duration
}

type cachedLogStart struct {
	offset int64
	at     time.Time
}

// maxCachedLogStarts bounds the log start cache; past it the cache starts
// over (entries of deleted topics would otherwise stay forever).
const maxCachedLogStarts = 100_000

// Fetch returns committed batches of a partition from req.Offset. At the
// high watermark (for ReadCommitted, the last stable offset) it waits up
// to req.MaxWait for a commit and answers with no batches if none lands.
// It never returns data at or past that bound.
func (f *Fetcher) Fetch(ctx context.Context, req FetchRequest) (FetchResult, error) {
	t, err := lookupPartition(ctx, f.view, req.Topic, req.Partition)
	if err != nil {
		return FetchResult{}, err
	}
	switch {
	case req.Offset < 0:
		return FetchResult{}, apierr.Errorf(apierr.ErrOffsetOutOfRange, "offset %d is negative", req.Offset)
	case req.MaxBytes < 0:
		return FetchResult{}, apierr.Errorf(apierr.ErrInvalidRequest, "max_bytes %d is negative", req.MaxBytes)
	case req.MaxWait < 0:
		return FetchResult{}, apierr.Errorf(apierr.ErrInvalidRequest, "max wait %v is negative", req.MaxWait)
	}
	maxBytes := req.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultFetchBytes
	}
	maxBytes = min(maxBytes, f.maxBytes)
	wait := min(req.MaxWait, f.maxWait)

	id, p, off := t.ID, req.Partition, req.Offset
	st, logStart, err := f.fetchState(ctx, req.Topic, id, p, off)
	if err != nil {
		return FetchResult{}, err
	}
	key := meta.PartitionID{TopicID: id, Partition: p}
	if off == st.NextOffset {
		f.tail.note(key, off)
		f.recent.watch(key)
	}
	bound := ReadBound(st, req.ReadCommitted)
	polled := off >= bound && wait > 0
	if polled {
		f.metrics.longPolls.Inc()
		if st, err = f.waitHW(ctx, req.Topic, id, p, off, wait, req.ReadCommitted); err != nil {
			return FetchResult{}, err
		}
		bound = ReadBound(st, req.ReadCommitted)
	}
	res := FetchResult{HighWatermark: st.NextOffset, LastStable: min(st.LastStable(), st.NextOffset), LogStart: logStart}
	if off >= bound {
		return res, nil
	}
	if res.Batches, err = f.readBatches(ctx, req.Topic, key, off, bound, int(maxBytes)); err != nil {
		return FetchResult{}, err
	}
	if polled {
		f.observeTailDelay(key, bound)
	}
	if req.ReadCommitted {
		if res.Batches, res.Aborted, err = f.aborted(ctx, st, off, res.Batches); err != nil {
			return FetchResult{}, err
		}
	}
	return res, nil
}

// ReadBound is how far a fetch of a partition in state st may read: the
// high watermark, or for read_committed the last stable offset.
func ReadBound(st meta.PartitionState, readCommitted bool) int64 {
	if readCommitted {
		return min(st.LastStable(), st.NextOffset)
	}
	return st.NextOffset
}

// fetchState returns the partition's state and log start for a fetch at
// off, from the view, or from etcd when off is past the view's high
// watermark (the view may lag etcd a little); an off outside the log is
// OFFSET_OUT_OF_RANGE.
func (f *Fetcher) fetchState(ctx context.Context, topic, id string, p int32, off int64) (meta.PartitionState, int64, error) {
	st, _ := f.view.Partition(id, p)
	logStart, err := f.logStart(ctx, id, p, false)
	if err != nil {
		return st, 0, err
	}
	if off > st.NextOffset {
		if st, err = f.readPartition(ctx, id, p); err != nil {
			return st, 0, err
		}
		logStart = st.LogStart
	}
	if off < logStart || off > st.NextOffset {
		return st, 0, apierr.Errorf(apierr.ErrOffsetOutOfRange,
			"offset %d of %s/%d is outside %d..%d", off, topic, p, logStart, st.NextOffset)
	}
	return st, logStart, nil
}

// readBatches reads whole batches from off up to bound (exclusive) within
// maxBytes: from the tail buffer when it holds them, else from storage.
func (f *Fetcher) readBatches(ctx context.Context, topic string, key meta.PartitionID, off, bound int64, maxBytes int) ([]byte, error) {
	if b, ok := f.awaitTail(ctx, key, off, bound, maxBytes); ok {
		f.metrics.fetchRecent.Inc()
		f.metrics.fetchBytes.Add(float64(len(b)))
		return b, nil
	}
	return f.read(ctx, topic, key.TopicID, key.Partition, off, bound, maxBytes)
}

// maxAborted bounds the aborted transactions one fetch lists. The
// transactions listed are those with records among the batches returned;
// only many tiny transactions aborted among one fetch's batches come near
// it, and then the fetch returns its first batch alone (abortedAmong).
const maxAborted = 10_000

// aborted lists the aborted transactions among batches, fetched from off
// of a partition in state st, and returns the batches to answer with:
// nothing to look up when the partition never had an abort (LastAbort 0)
// or its last one lies below off.
func (f *Fetcher) aborted(ctx context.Context, st meta.PartitionState, off int64, batches []byte) ([]byte, []meta.AbortedTxn, error) {
	if len(batches) == 0 || st.LastAbort == 0 || st.LastAbort < off {
		return batches, nil, nil
	}
	for {
		hs, err := segment.SplitVerifiedBatches(batches)
		if err != nil {
			return nil, nil, apierr.Errorf(apierr.ErrCorruptBatch, "fetched batches: %v", err)
		}
		end := hs[len(hs)-1].LastOffset() + 1
		ab, err := f.meta.AbortedTxns(ctx, st.TopicID, st.Partition, off, end, maxAborted)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err != nil:
			return nil, nil, apierr.Errorf(apierr.ErrStorageUnavailable, "read aborted transactions: %v", err)
		case len(ab) < maxAborted || len(hs) == 1:
			return batches, ab, nil
		}
		// Too many to list: answer with the first batch alone, whose
		// aborted transactions are at most its producers'.
		batches = batches[:hs[0].Size()]
	}
}

// observeTailDelay records, for a long-poll that got data, how old the
// newest entry below hw is: the time from its broker building it to now.
func (f *Fetcher) observeTailDelay(key meta.PartitionID, hw int64) {
	if e, ok := f.entries.find(key, hw-1); ok && e.CreatedMs > 0 {
		f.metrics.tailDelay.Observe(float64(max(time.Now().UnixMilli()-e.CreatedMs, 0)) / 1e3)
	}
}

// dropAborted returns batches without the batches of the aborted
// transactions listed (a Fetcher's result), for readers that cannot drop
// them themselves as Kafka clients do: the gRPC API's. A transactional
// batch belongs to the one transaction of its producer open at its
// offset, so it is aborted when a listed transaction of its producer
// spans its base offset. With nothing listed, batches come back as they
// are; otherwise the kept batches are copied.
func dropAborted(batches []byte, aborted []meta.AbortedTxn) ([]byte, error) {
	if len(aborted) == 0 {
		return batches, nil
	}
	hs, err := segment.SplitVerifiedBatches(batches)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrCorruptBatch, "fetched batches: %v", err)
	}
	out := make([]byte, 0, len(batches))
	pos := 0
	for _, h := range hs {
		b := batches[pos : pos+h.Size()]
		pos += h.Size()
		if h.Attributes&segment.AttrTransactional != 0 && h.Attributes&segment.AttrControl == 0 &&
			slices.ContainsFunc(aborted, func(a meta.AbortedTxn) bool {
				return a.ProducerID == h.ProducerID && a.First <= h.BaseOffset && h.BaseOffset <= a.Last
			}) {
			continue
		}
		out = append(out, b...)
	}
	return out, nil
}

// waitHW waits until the partition's read bound (readBound) passes off,
// wait passes, or the server shuts down, and returns the partition's state
// then.
func (f *Fetcher) waitHW(ctx context.Context, topic, id string, p int32, off int64, wait time.Duration, readCommitted bool) (meta.PartitionState, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ch := f.view.Changed()
		st, ok := f.view.Partition(id, p)
		if !ok {
			return st, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q was deleted", topic)
		}
		if ReadBound(st, readCommitted) > off {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-f.done:
			return st, nil
		case <-timer.C:
			return st, nil
		case <-ch:
		}
	}
}

// read collects whole batches from off up to hw (exclusive) within
// maxBytes, always at least one batch. Batches of one chunk are returned
// as they are, without a copy; only a fetch that spans chunks copies.
func (f *Fetcher) read(ctx context.Context, topic, id string, p int32, off, hw int64, maxBytes int) ([]byte, error) {
	var out []byte
	for pos := off; pos < hw && len(out) < maxBytes; {
		e, chunk, hs, err := f.batchesAt(ctx, topic, id, p, pos, maxBytes-len(out))
		if err != nil {
			if len(out) > 0 && ctx.Err() == nil {
				// Return what we have; the next fetch will meet the error.
				f.log.Warn("fetch: stopping early", "topic", topic, "partition", p, "offset", pos, "err", err)
				return out, nil
			}
			return nil, err
		}
		from, to, stop := pickBatches(hs, pos, hw, maxBytes-len(out), len(out) == 0)
		f.metrics.fetchBytes.Add(float64(to - from))
		if out == nil {
			out = chunk[from:to:to] // appending to it copies
		} else {
			out = append(out, chunk[from:to]...)
		}
		if stop || hs[len(hs)-1].LastOffset() < e.LastOffset {
			// Done, or a ranged read stopped inside the chunk at the budget.
			return out, nil
		}
		pos = e.LastOffset + 1
	}
	return out, nil
}

// pickBatches returns the byte range, within the chunk that hs describe,
// of the batches a fetch at pos takes: those ending at or after pos, below
// hw, within budget bytes — the first one whole even if larger when first
// is set. stop reports that the fetch is complete (budget or hw reached).
func pickBatches(hs []segment.BatchHeader, pos, hw int64, budget int, first bool) (from, to int, stop bool) {
	at := 0
	from = -1
	for _, h := range hs {
		size := h.Size()
		switch {
		case h.LastOffset() < pos:
			at += size
			continue // before the wanted offset
		case h.LastOffset() >= hw:
			stop = true // never past the high watermark
		case from >= 0 && at+size-from > budget, from < 0 && !first && size > budget:
			stop = true
		}
		if stop {
			break
		}
		if from < 0 {
			from = at
		}
		at += size
	}
	if from < 0 {
		return at, at, stop
	}
	return from, at, stop
}

// batchesAt returns the segment entry that holds pos and whole batches of
// its chunk, from the batch that holds pos or an earlier one, with their
// validated headers. Cold chunks larger than a cache block are read in part,
// about budget bytes (readRanged); others whole, through the block cache.
func (f *Fetcher) batchesAt(ctx context.Context, topic, id string, p int32, pos int64, budget int) (meta.SegmentEntry, []byte, []segment.BatchHeader, error) {
	key := meta.PartitionID{TopicID: id, Partition: p}
	for attempt := 0; ; attempt++ {
		e, err := f.entry(ctx, topic, key, pos)
		if err != nil {
			return meta.SegmentEntry{}, nil, nil, err
		}
		var b []byte
		var hs []segment.BatchHeader
		if class := f.cacheClass(e, time.Now()); f.ranged(e, class) {
			b, hs, err = f.readRanged(ctx, e, pos, budget)
		} else {
			b, hs, err = f.readChunk(ctx, e, class)
		}
		if errors.Is(err, objstore.ErrNotFound) && attempt == 0 {
			// A cached entry whose object is gone: compaction replaced
			// it. Ask etcd again.
			f.entries.forget(key)
			f.objects.lru.Remove(e.ObjectKey)
			continue
		}
		return e, b, hs, err
	}
}

// listAhead is how many entries a miss of the entry cache lists from
// etcd at once: the one holding the offset and those after it, which a
// reader behind the tail reads next. One listing instead of a lookup per
// entry: a reader through a proxy that did not forward the records (no
// tail buffer) otherwise paid an etcd round trip per entry, in series,
// and fell behind the producer.
const listAhead = 16

// entry returns the segment entry that holds pos, from the entry cache or
// from etcd (with the entries after it, see listAhead).
func (f *Fetcher) entry(ctx context.Context, topic string, key meta.PartitionID, pos int64) (meta.SegmentEntry, error) {
	if e, ok := f.entries.find(key, pos); ok {
		return e, nil
	}
	e, err := f.listEntries(ctx, key, pos)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		// Retention may have moved the log start past pos.
		if st, lerr := f.readPartition(ctx, key.TopicID, key.Partition); lerr == nil && pos < st.LogStart {
			return meta.SegmentEntry{}, apierr.Errorf(apierr.ErrOffsetOutOfRange, "offset %d of %s/%d is below the log start %d", pos, topic, key.Partition, st.LogStart)
		}
		return meta.SegmentEntry{}, fmt.Errorf("%w: no segment entry holds committed offset %d of %s/%d", ErrCorruptData, pos, topic, key.Partition)
	case err != nil:
		return meta.SegmentEntry{}, apierr.Errorf(apierr.ErrStorageUnavailable, "find segment: %v", err)
	}
	if verr := e.Validate(); verr != nil {
		return meta.SegmentEntry{}, fmt.Errorf("%w: %s/%d: %v", ErrCorruptData, topic, key.Partition, verr)
	}
	return e, nil
}

// listEntries reads from etcd the entry holding pos and up to listAhead-1
// entries after it, caches the valid ones, and returns the first: an
// entry holding pos (meta.ErrNotFound if none does), valid or not.
func (f *Fetcher) listEntries(ctx context.Context, key meta.PartitionID, pos int64) (meta.SegmentEntry, error) {
	// Tail reads and warms ask for the offset where the last entry ended,
	// which ListSegments answers with one etcd read.
	es, err := f.meta.ListSegments(ctx, key.TopicID, key.Partition, pos, listAhead)
	if err != nil {
		return meta.SegmentEntry{}, err
	}
	if len(es) == 0 || es[0].FirstOffset > pos || es[0].LastOffset < pos {
		return meta.SegmentEntry{}, fmt.Errorf("%w: no segment of %s/%d holds offset %d", meta.ErrNotFound, key.TopicID, key.Partition, pos)
	}
	for _, e := range es {
		if e.Validate() == nil {
			f.entries.add(key, e)
		}
	}
	return es[0], nil
}

// readChunk reads an entry's whole chunk through the block cache, loading
// missing blocks against class's budget, and checks that its batches are
// intact and cover exactly the entry's offsets.
func (f *Fetcher) readChunk(ctx context.Context, e meta.SegmentEntry, class cache.Class) ([]byte, []segment.BatchHeader, error) {
	chunk, err := f.cache.ReadRangeClass(ctx, class, e.ObjectKey, e.ObjectSize, e.Pos, e.Len,
		func(ctx context.Context, off, n int64) ([]byte, error) { return f.store.Get(ctx, e.ObjectKey, off, n) })
	if err != nil {
		return nil, nil, f.chunkError(ctx, e, err)
	}
	hs, err := segment.SplitBatches(chunk)
	if err == nil {
		err = checkChunk(e, hs)
	}
	if err != nil {
		return nil, nil, corruptChunk(e, err)
	}
	return chunk, hs, nil
}

// chunkError classifies an error reading e's chunk from the store or the
// cache: a missing object or a range outside it is corrupt data (the
// metadata points at what is not there), and so are bytes that fail the
// segment package's validation; a failing store is unavailable.
func (f *Fetcher) chunkError(ctx context.Context, e meta.SegmentEntry, err error) error {
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fmt.Errorf("%w: object %s of %s/%d@%d is missing: %w", ErrCorruptData, e.ObjectKey, e.TopicID, e.Partition, e.FirstOffset, err)
	case errors.Is(err, cache.ErrInvalidRange), errors.Is(err, objstore.ErrInvalidRange), errors.Is(err, objstore.ErrInvalidKey):
		return fmt.Errorf("%w: entry %s/%d@%d points outside object %s: %v", ErrCorruptData, e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
	case ctx.Err() != nil:
		return ctx.Err()
	case isSegmentError(err):
		return corruptChunk(e, err)
	default:
		return apierr.Errorf(apierr.ErrStorageUnavailable, "read object %s: %v", e.ObjectKey, err)
	}
}

// corruptChunk reports that e's chunk failed validation.
func corruptChunk(e meta.SegmentEntry, err error) error {
	return fmt.Errorf("%w: chunk of %s/%d@%d in object %s: %v", ErrCorruptData, e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
}

// isSegmentError reports whether err is the segment package's verdict on
// stored bytes (rather than the store's error that it wraps).
func isSegmentError(err error) bool {
	for _, s := range []error{segment.ErrCorrupt, segment.ErrTruncated, segment.ErrCRC, segment.ErrUnknownCodec,
		segment.ErrTooLarge, segment.ErrVersion, segment.ErrMagic, segment.ErrNotContiguous,
		segment.ErrNotFound, segment.ErrOffsetOutOfRange} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// checkChunk checks that batches cover the entry's offsets contiguously.
func checkChunk(e meta.SegmentEntry, hs []segment.BatchHeader) error {
	next := e.FirstOffset
	for _, h := range hs {
		if h.BaseOffset != next {
			return fmt.Errorf("batch at offset %d, want %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
	if next != e.LastOffset+1 {
		return fmt.Errorf("batches end at offset %d, entry at %d", next-1, e.LastOffset)
	}
	return nil
}

// logStart returns a partition's log start, cached for LogStartTTL unless
// fresh is set.
func (f *Fetcher) logStart(ctx context.Context, id string, p int32, fresh bool) (int64, error) {
	key := meta.PartitionID{TopicID: id, Partition: p}
	if !fresh {
		f.mu.Lock()
		c, ok := f.logStarts[key]
		f.mu.Unlock()
		if ok && time.Since(c.at) < f.logStartTTL {
			return c.offset, nil
		}
	}
	st, err := f.readPartition(ctx, id, p)
	return st.LogStart, err
}

// relearn reads the states of topic's partitions from etcd now, so that
// the log starts cached are the ones just moved. A failure is logged: the
// cache then catches up within LogStartTTL.
func (f *Fetcher) relearn(ctx context.Context, topic string, partitions []int32) {
	t, ok := f.view.Topic(topic)
	if !ok || len(partitions) == 0 {
		return
	}
	ids := make([]meta.PartitionID, len(partitions))
	for i, p := range partitions {
		ids[i] = meta.PartitionID{TopicID: t.ID, Partition: p}
	}
	if _, err := f.readPartitions(ctx, ids); err != nil {
		f.log.Warn("could not read the log starts DeleteRecords moved", "topic", topic, "err", err)
	}
}

// readPartition reads a partition's state from etcd (see readPartitions).
func (f *Fetcher) readPartition(ctx context.Context, id string, p int32) (meta.PartitionState, error) {
	sts, err := f.readPartitions(ctx, []meta.PartitionID{{TopicID: id, Partition: p}})
	if err != nil {
		return meta.PartitionState{}, err
	}
	return sts[0], nil
}

// readPartitions reads the states of ids from etcd, in batched
// transactions, and learns them.
func (f *Fetcher) readPartitions(ctx context.Context, ids []meta.PartitionID) ([]meta.PartitionState, error) {
	at := time.Now()
	sts, err := f.meta.GetPartitions(ctx, ids)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "read partition state: %v", err)
	}
	f.learn(sts, at)
	return sts, nil
}

// learn takes partition states read from etcd at at: it caches their log
// starts and raises the view's high watermarks to them, which the watch
// may not have shown yet.
func (f *Fetcher) learn(sts []meta.PartitionState, at time.Time) {
	f.mu.Lock()
	for _, st := range sts {
		if len(f.logStarts) >= maxCachedLogStarts {
			clear(f.logStarts)
		}
		f.logStarts[meta.PartitionID{TopicID: st.TopicID, Partition: st.Partition}] = cachedLogStart{offset: st.LogStart, at: at}
	}
	f.mu.Unlock()
	for _, st := range sts {
		f.view.Advance(st.TopicID, st.Partition, st.NextOffset, st.LastStable())
	}
}

// ReadPartition reads partition p of topic from etcd, for answers that
// must cover every acknowledged record: a produce is acknowledged after
// its commit, and this proxy's view may show the commit a watch event
// later (or, for a produce through another proxy, only then).
func (f *Fetcher) ReadPartition(ctx context.Context, topic string, p int32) (meta.PartitionState, error) {
	t, err := lookupPartition(ctx, f.view, topic, p)
	if err != nil {
		return meta.PartitionState{}, err
	}
	return f.readPartition(ctx, t.ID, p)
}

// ReadPartitions reads the given partitions of topic as ReadPartition
// does, in batched etcd transactions: a Kafka client asks for the offsets
// of all its partitions in one request, and one read per partition took
// seconds at thousands of partitions. Unknown topics and partitions out of
// range are left out, for the caller's checks to refuse. An error is the
// failed read's (etcd away): the caller answers every partition with it
// rather than reading them one by one.
func (f *Fetcher) ReadPartitions(ctx context.Context, topic string, partitions []int32) (map[int32]meta.PartitionState, error) {
	t, ok := f.view.Topic(topic)
	if !ok {
		return nil, nil
	}
	var ids []meta.PartitionID
	for _, p := range partitions {
		if p >= 0 && p < t.Partitions {
			ids = append(ids, meta.PartitionID{TopicID: t.ID, Partition: p})
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sts, err := f.readPartitions(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]meta.PartitionState, len(sts))
	for _, st := range sts {
		out[st.Partition] = st
	}
	return out, nil
}

// ListOffsets resolves OffsetEarliest to the log start, OffsetLatest to the
// high watermark, and a timestamp (Unix ms, >= 0) to the offset of the
// first record whose timestamp is at or after it — the high watermark if
// there is none. The partition is read from etcd, so the high watermark
// covers every record acknowledged before the call.
func (f *Fetcher) ListOffsets(ctx context.Context, topic string, p int32, ts int64) (OffsetsResult, error) {
	st, err := f.ReadPartition(ctx, topic, p)
	if err != nil {
		return OffsetsResult{}, err
	}
	return f.ListOffsetsFrom(ctx, topic, st, ts)
}

// ListOffsetsFrom answers ListOffsets from st, the partition's state read
// by ReadPartition or ReadPartitions.
func (f *Fetcher) ListOffsetsFrom(ctx context.Context, topic string, st meta.PartitionState, ts int64) (OffsetsResult, error) {
	if ts < OffsetEarliest {
		return OffsetsResult{}, apierr.Errorf(apierr.ErrInvalidRequest, "timestamp %d: want EARLIEST (-2), LATEST (-1) or a time >= 0", ts)
	}
	res := OffsetsResult{HighWatermark: st.NextOffset, LogStart: st.LogStart, Timestamp: -1}
	switch ts {
	case OffsetEarliest:
		res.Offset = res.LogStart
	case OffsetLatest:
		res.Offset = res.HighWatermark
	default:
		var err error
		if res.Offset, res.Timestamp, err = f.offsetForTime(ctx, topic, st.TopicID, st.Partition, ts, res.LogStart, res.HighWatermark); err != nil {
			return OffsetsResult{}, err
		}
	}
	return res, nil
}

// offsetForTime finds the first record at or after ts in [logStart, hw)
// and returns its offset and timestamp: hw and -1 when there is none.
func (f *Fetcher) offsetForTime(ctx context.Context, topic, id string, p int32, ts, logStart, hw int64) (int64, int64, error) {
	first, err := f.meta.FindSegmentByTime(ctx, id, p, ts)
	if errors.Is(err, meta.ErrNotFound) {
		return hw, -1, nil
	}
	if err != nil {
		return 0, -1, apierr.Errorf(apierr.ErrStorageUnavailable, "find segment by time: %v", err)
	}
	// Entries' MaxTimestamp says where a match may be; records decide.
	for e, err := range f.meta.Segments(ctx, id, p, first.FirstOffset) {
		if err != nil {
			return 0, -1, apierr.Errorf(apierr.ErrStorageUnavailable, "list segments: %v", err)
		}
		if e.FirstOffset >= hw {
			break
		}
		if e.MaxTimestamp < ts || e.LastOffset < logStart {
			continue
		}
		chunk, hs, err := f.readChunk(ctx, e, f.cacheClass(e, time.Now()))
		if err != nil {
			return 0, -1, err
		}
		at := 0
		for _, h := range hs {
			b := chunk[at : at+h.Size()]
			at += h.Size()
			if h.MaxTimestamp < ts || h.LastOffset() < logStart {
				continue
			}
			if h.BaseOffset >= hw {
				return hw, -1, nil
			}
			recs, err := segment.DecodeRecords(b)
			if err != nil {
				return 0, -1, fmt.Errorf("%w: batch at offset %d of %s/%d: %v", ErrCorruptData, h.BaseOffset, topic, p, err)
			}
			for _, r := range recs {
				if r.Offset >= logStart && r.Offset < hw && r.Timestamp >= ts {
					return r.Offset, r.Timestamp, nil
				}
			}
		}
	}
	return hw, -1, nil
}
