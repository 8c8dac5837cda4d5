package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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
}

// FetchResult is the answer to a fetch.
type FetchResult struct {
	// Batches are whole record batches, back to back, in offset order, all
	// below HighWatermark.
	Batches []byte
	// HighWatermark is the partition's next offset when the fetch was
	// answered.
	HighWatermark int64
	// LogStart is the first readable offset.
	LogStart int64
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

	mu        sync.Mutex // guards logStarts
	logStarts map[partKey]cachedLogStart

	// tail tracks partitions with tailing readers, for warming.
	tail tailReaders
	// tailWindow overrides the const tailWindow when set (tests; set
	// before the first fetch).
	tailWindow time.Duration
}

// partKey names a partition.
type partKey struct {
	topicID   string
	partition int32
}

type cachedLogStart struct {
	offset int64
	at     time.Time
}

// maxCachedLogStarts bounds the log start cache; past it the cache starts
// over (entries of deleted topics would otherwise stay forever).
const maxCachedLogStarts = 100_000

// Fetch returns committed batches of a partition from req.Offset. At the
// high watermark it waits up to req.MaxWait for a commit and answers with
// no batches if none lands. It never returns data at or past the high
// watermark.
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
	st, _ := f.view.Partition(id, p)
	hw := st.NextOffset
	logStart, err := f.logStart(ctx, id, p, false)
	if err != nil {
		return FetchResult{}, err
	}
	if off > hw {
		// The view may lag etcd a little; ask etcd before refusing.
		if hw, logStart, err = f.readPartition(ctx, id, p); err != nil {
			return FetchResult{}, err
		}
	}
	if off < logStart || off > hw {
		return FetchResult{}, apierr.Errorf(apierr.ErrOffsetOutOfRange,
			"offset %d of %s/%d is outside %d..%d", off, req.Topic, p, logStart, hw)
	}
	if off == hw {
		f.tail.note(partKey{id, p}, hw)
	}
	if off == hw && wait > 0 {
		f.metrics.longPolls.Inc()
		if hw, err = f.waitHW(ctx, req.Topic, id, p, off, wait); err != nil {
			return FetchResult{}, err
		}
	}
	res := FetchResult{HighWatermark: hw, LogStart: logStart}
	if off == hw {
		return res, nil
	}
	f.awaitWarm(ctx, partKey{id, p}, off, hw)
	res.Batches, err = f.read(ctx, req.Topic, id, p, off, hw, int(maxBytes))
	if err != nil {
		return FetchResult{}, err
	}
	return res, nil
}

// waitHW waits until the partition's high watermark passes off, wait
// passes, or the server shuts down, and returns the high watermark then.
func (f *Fetcher) waitHW(ctx context.Context, topic, id string, p int32, off int64, wait time.Duration) (int64, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		ch := f.view.Changed()
		st, ok := f.view.Partition(id, p)
		if !ok {
			return 0, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q was deleted", topic)
		}
		if st.NextOffset > off {
			return st.NextOffset, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-f.done:
			return st.NextOffset, nil
		case <-timer.C:
			return st.NextOffset, nil
		case <-ch:
		}
	}
}

// read collects whole batches from off up to hw (exclusive) within
// maxBytes, always at least one batch.
func (f *Fetcher) read(ctx context.Context, topic, id string, p int32, off, hw int64, maxBytes int) ([]byte, error) {
	var out []byte
	for pos := off; pos < hw && len(out) < maxBytes; {
		e, chunk, hs, err := f.chunkAt(ctx, topic, id, p, pos)
		if err != nil {
			if len(out) > 0 && ctx.Err() == nil {
				// Return what we have; the next fetch will meet the error.
				f.log.Warn("fetch: stopping early", "topic", topic, "partition", p, "offset", pos, "err", err)
				return out, nil
			}
			return nil, err
		}
		// Grow once per chunk rather than batch by batch.
		out = slices.Grow(out, min(len(chunk), max(maxBytes-len(out), 0)))
		at := 0
		for _, h := range hs {
			b := chunk[at : at+h.Size()]
			at += h.Size()
			switch {
			case h.LastOffset() < pos:
				continue // before the wanted offset
			case h.LastOffset() >= hw:
				return out, nil // never past the high watermark
			case len(out) > 0 && len(out)+len(b) > maxBytes:
				return out, nil
			}
			out = append(out, b...)
			f.metrics.fetchBytes.Add(float64(len(b)))
		}
		pos = e.LastOffset + 1
	}
	return out, nil
}

// chunkAt returns the segment entry that holds offset pos, its chunk and
// the chunk's validated batch headers.
func (f *Fetcher) chunkAt(ctx context.Context, topic, id string, p int32, pos int64) (meta.SegmentEntry, []byte, []segment.BatchHeader, error) {
	key := partKey{id, p}
	for attempt := 0; ; attempt++ {
		e, err := f.entry(ctx, topic, key, pos)
		if err != nil {
			return meta.SegmentEntry{}, nil, nil, err
		}
		chunk, hs, err := f.readChunk(ctx, e)
		if errors.Is(err, objstore.ErrNotFound) && attempt == 0 {
			// A cached entry whose object is gone: compaction replaced
			// it. Ask etcd again.
			f.entries.forget(key)
			continue
		}
		return e, chunk, hs, err
	}
}

// entry returns the segment entry that holds pos, from the entry cache or
// from etcd.
func (f *Fetcher) entry(ctx context.Context, topic string, key partKey, pos int64) (meta.SegmentEntry, error) {
	if e, ok := f.entries.find(key, pos); ok {
		return e, nil
	}
	e, err := f.meta.FindSegment(ctx, key.topicID, key.partition, pos)
	switch {
	case errors.Is(err, meta.ErrNotFound):
		// Retention may have moved the log start past pos.
		if _, logStart, lerr := f.readPartition(ctx, key.topicID, key.partition); lerr == nil && pos < logStart {
			return meta.SegmentEntry{}, apierr.Errorf(apierr.ErrOffsetOutOfRange, "offset %d of %s/%d is below the log start %d", pos, topic, key.partition, logStart)
		}
		return meta.SegmentEntry{}, fmt.Errorf("%w: no segment entry holds committed offset %d of %s/%d", ErrCorruptData, pos, topic, key.partition)
	case err != nil:
		return meta.SegmentEntry{}, apierr.Errorf(apierr.ErrStorageUnavailable, "find segment: %v", err)
	}
	if verr := e.Validate(); verr != nil {
		return meta.SegmentEntry{}, fmt.Errorf("%w: %s/%d: %v", ErrCorruptData, topic, key.partition, verr)
	}
	f.entries.add(key, e)
	return e, nil
}

// readChunk reads an entry's chunk through the block cache and checks that
// its batches are intact and cover exactly the entry's offsets. It reads
// the whole chunk: fine for flush-sized chunks; compacted segments much
// larger than a fetch will want the chunk's sparse index instead.
func (f *Fetcher) readChunk(ctx context.Context, e meta.SegmentEntry) ([]byte, []segment.BatchHeader, error) {
	chunk, err := f.cache.ReadRangeClass(ctx, f.cacheClass(e, time.Now()), e.ObjectKey, e.ObjectSize, e.Pos, e.Len,
		func(ctx context.Context, off, n int64) ([]byte, error) { return f.store.Get(ctx, e.ObjectKey, off, n) })
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return nil, nil, fmt.Errorf("%w: object %s of %s/%d@%d is missing: %w", ErrCorruptData, e.ObjectKey, e.TopicID, e.Partition, e.FirstOffset, err)
	case errors.Is(err, cache.ErrInvalidRange), errors.Is(err, objstore.ErrInvalidRange), errors.Is(err, objstore.ErrInvalidKey):
		return nil, nil, fmt.Errorf("%w: entry %s/%d@%d points outside object %s: %v", ErrCorruptData, e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
	case ctx.Err() != nil:
		return nil, nil, ctx.Err()
	case err != nil:
		return nil, nil, apierr.Errorf(apierr.ErrStorageUnavailable, "read object %s: %v", e.ObjectKey, err)
	}
	hs, err := segment.SplitBatches(chunk)
	if err == nil {
		err = checkChunk(e, hs)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: chunk of %s/%d@%d in object %s: %v", ErrCorruptData, e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
	}
	return chunk, hs, nil
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
	key := partKey{id, p}
	if !fresh {
		f.mu.Lock()
		c, ok := f.logStarts[key]
		f.mu.Unlock()
		if ok && time.Since(c.at) < f.logStartTTL {
			return c.offset, nil
		}
	}
	_, ls, err := f.readPartition(ctx, id, p)
	return ls, err
}

// readPartition reads a partition's high watermark and log start from etcd
// and refreshes the cached log start.
func (f *Fetcher) readPartition(ctx context.Context, id string, p int32) (hw, logStart int64, err error) {
	st, err := f.meta.GetPartition(ctx, id, p)
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		return 0, 0, apierr.Errorf(apierr.ErrStorageUnavailable, "read partition state: %v", err)
	}
	f.mu.Lock()
	if len(f.logStarts) >= maxCachedLogStarts {
		clear(f.logStarts)
	}
	f.logStarts[partKey{id, p}] = cachedLogStart{offset: st.LogStart, at: time.Now()}
	f.mu.Unlock()
	return st.NextOffset, st.LogStart, nil
}

// ListOffsets resolves OffsetEarliest to the log start, OffsetLatest to the
// high watermark, and a timestamp (Unix ms, >= 0) to the offset of the
// first record whose timestamp is at or after it — the high watermark if
// there is none.
func (f *Fetcher) ListOffsets(ctx context.Context, topic string, p int32, ts int64) (OffsetsResult, error) {
	t, err := lookupPartition(ctx, f.view, topic, p)
	if err != nil {
		return OffsetsResult{}, err
	}
	if ts < OffsetEarliest {
		return OffsetsResult{}, apierr.Errorf(apierr.ErrInvalidRequest, "timestamp %d: want EARLIEST (-2), LATEST (-1) or a time >= 0", ts)
	}
	st, _ := f.view.Partition(t.ID, p)
	res := OffsetsResult{HighWatermark: st.NextOffset, Timestamp: -1}
	if res.LogStart, err = f.logStart(ctx, t.ID, p, false); err != nil {
		return OffsetsResult{}, err
	}
	switch ts {
	case OffsetEarliest:
		res.Offset = res.LogStart
	case OffsetLatest:
		res.Offset = res.HighWatermark
	default:
		if res.Offset, res.Timestamp, err = f.offsetForTime(ctx, topic, t.ID, p, ts, res.LogStart, res.HighWatermark); err != nil {
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
		chunk, hs, err := f.readChunk(ctx, e)
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

// Bounds of the segment entry cache.
const (
	maxCachedPartitions    = 4096
	maxEntriesPerPartition = 64
)

// entryCache keeps recently used segment entries per partition, sorted by
// first offset. Entries never change once committed; retention and
// compaction only remove or replace them, which readers notice as a
// missing object (see Fetcher.chunkAt) or a moved log start.
type entryCache struct {
	mu    sync.Mutex // guards parts and the slices in it
	parts *simplelru.LRU[partKey, []meta.SegmentEntry]
}

func newEntryCache() *entryCache {
	lru, err := simplelru.NewLRU[partKey, []meta.SegmentEntry](maxCachedPartitions, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &entryCache{parts: lru}
}

// find returns the cached entry that holds offset.
func (c *entryCache) find(key partKey, offset int64) (meta.SegmentEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	es, ok := c.parts.Get(key)
	if !ok {
		return meta.SegmentEntry{}, false
	}
	i := sort.Search(len(es), func(i int) bool { return es[i].FirstOffset > offset }) - 1
	if i < 0 || es[i].LastOffset < offset {
		return meta.SegmentEntry{}, false
	}
	return es[i], true
}

// add caches e; past maxEntriesPerPartition the lowest offsets go first,
// since consumers mostly read near the end.
func (c *entryCache) add(key partKey, e meta.SegmentEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	es, _ := c.parts.Peek(key)
	i := sort.Search(len(es), func(i int) bool { return es[i].FirstOffset >= e.FirstOffset })
	if i < len(es) && es[i].FirstOffset == e.FirstOffset {
		es[i] = e
	} else {
		es = append(es, meta.SegmentEntry{})
		copy(es[i+1:], es[i:])
		es[i] = e
	}
	if len(es) > maxEntriesPerPartition {
		es = append(es[:0:0], es[len(es)-maxEntriesPerPartition:]...)
	}
	c.parts.Add(key, es)
}

// forget drops a partition's cached entries.
func (c *entryCache) forget(key partKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts.Remove(key)
}

// Tail reads and cache warming.
const (
	// tailWindow: entries committed more recently than this are the
	// tail; their blocks go to the block cache's hot budget, older ones
	// to its cold budget, so a reader of old data cannot evict the tail.
	tailWindow = 30 * time.Second
	// activeReaderWindow: a partition fetched at its high watermark within
	// this long has tailing readers, and its new entries are warmed.
	activeReaderWindow = 30 * time.Second
	// warmTimeout bounds warming one partition's new entries.
	warmTimeout = 10 * time.Second
	// maxWarmEntries bounds the entries warmed per partition per change.
	maxWarmEntries = 16
)

// cacheClass is the block cache budget that reads of e count against.
func (f *Fetcher) cacheClass(e meta.SegmentEntry, now time.Time) cache.Class {
	window := tailWindow
	if f.tailWindow > 0 {
		window = f.tailWindow
	}
	if now.UnixMilli()-e.CreatedMs < window.Milliseconds() {
		return cache.Hot
	}
	return cache.Cold
}

// tailReaders remembers partitions that readers fetched at the high
// watermark, and how far their data is warmed.
type tailReaders struct {
	mu sync.Mutex // guards parts
	// parts maps a partition to its readers and warming progress.
	parts map[partKey]tailState
}

type tailState struct {
	// seen is when a reader last fetched at the high watermark.
	seen time.Time
	// claimed: warming of offsets below it has been started (or was not
	// needed: they were there when a reader arrived at the head).
	claimed int64
	// settled: offsets below it are warmed (or warming gave up).
	settled int64
	// done is closed when the last warm started finishes; nil if none
	// was started. Warms finish in order (see runWarm).
	done chan struct{}
}

// warmJob is a range of a partition's offsets to warm.
type warmJob struct {
	key      partKey
	from, to int64
	prev     <-chan struct{} // the previous warm's done, or nil
	done     chan struct{}   // closed when this and every earlier warm ended
}

// note records a reader at the high watermark hw of a partition.
func (t *tailReaders) note(key partKey, hw int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.parts == nil {
		t.parts = map[partKey]tailState{}
	}
	st, ok := t.parts[key]
	if !ok || st.claimed < hw {
		// Nothing to warm below hw: a reader at the head wants what comes
		// next.
		st.claimed = hw
		if st.done == nil {
			st.settled = hw
		}
	}
	st.seen = time.Now()
	t.parts[key] = st
}

// claimLocked starts a warm of key's offsets from what is claimed up to
// hw. t.mu must be held and st be key's state.
func (t *tailReaders) claimLocked(key partKey, st tailState, hw int64) warmJob {
	j := warmJob{key: key, from: st.claimed, to: hw, prev: st.done, done: make(chan struct{})}
	st.claimed, st.done = hw, j.done
	t.parts[key] = st
	return j
}

// due returns a warm job for every partition with a recent reader whose
// high watermark in view passed what was claimed, and forgets partitions
// without recent readers.
func (t *tailReaders) due(view *meta.View) []warmJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []warmJob
	for key, st := range t.parts {
		if time.Since(st.seen) > activeReaderWindow {
			delete(t.parts, key)
			continue
		}
		ps, ok := view.Partition(key.topicID, key.partition)
		if !ok {
			delete(t.parts, key)
			continue
		}
		if ps.NextOffset > st.claimed {
			out = append(out, t.claimLocked(key, st, ps.NextOffset))
		}
	}
	return out
}

// forRead decides what a read of key's offsets off..hw-1 does about
// warming: nothing (a partition without tailing readers, or a read of
// settled data — a cold reader), start a warm up to hw itself (a reader
// woken before the warm loop saw the change), or wait for the running
// warm to end.
func (t *tailReaders) forRead(key partKey, off, hw int64) (job warmJob, run bool, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.parts[key]
	if !ok || off < st.settled || st.done == nil && hw <= st.claimed {
		return warmJob{}, false, nil
	}
	if hw > st.claimed {
		return t.claimLocked(key, st, hw), true, nil
	}
	return warmJob{}, false, st.done
}

// finish records that a warm (and every one before it) ended.
func (t *tailReaders) finish(j warmJob) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.parts[j.key]; ok {
		st.settled = max(st.settled, j.to)
		if st.done == j.done {
			st.done = nil // none running
		}
		t.parts[j.key] = st
	}
}

// warmLoop warms the block cache and the entry cache with each new entry
// of a partition that has tailing readers, as soon as the view shows the
// commit, so that those readers hit the cache. Partitions are warmed
// concurrently. It runs until ctx ends.
func (f *Fetcher) warmLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		ch := f.view.Changed()
		for _, j := range f.tail.due(f.view) {
			wg.Go(func() { f.runWarm(ctx, j) })
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// runWarm warms a job's range, then waits for the previous warm of the
// partition so that warms end in order, and marks the job done.
func (f *Fetcher) runWarm(ctx context.Context, j warmJob) {
	f.warm(ctx, j.key, j.from, j.to)
	if j.prev != nil {
		// The previous warm ends within warmTimeout.
		<-j.prev
	}
	f.tail.finish(j)
	close(j.done)
}

// maxWarmWait bounds how long a read of the tail waits for the warm of its
// data; past it, the read loads (or joins the load of) the blocks itself.
const maxWarmWait = 2 * time.Second

// awaitWarm lets a read of key's offsets off..hw-1 wait until the new
// entries it wants are in the block cache, so that tailing readers woken by
// a commit hit the cache rather than race the warm read: the first of them
// to arrive before the warm loop warms them itself, the others wait.
// Reads of settled data return at once.
func (f *Fetcher) awaitWarm(ctx context.Context, key partKey, off, hw int64) {
	j, run, wait := f.tail.forRead(key, off, hw)
	if run {
		// Detached from the reader, like the warm loop's: the other
		// readers wait for it.
		f.runWarm(context.WithoutCancel(ctx), j)
		return
	}
	if wait == nil {
		return
	}
	timer := time.NewTimer(maxWarmWait)
	defer timer.Stop()
	select {
	case <-wait:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// warm reads the entries holding offsets from..to-1 through the cache.
func (f *Fetcher) warm(ctx context.Context, key partKey, from, to int64) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	for n := 0; from < to && n < maxWarmEntries; n++ {
		e, ok := f.entries.find(key, from)
		if !ok {
			var err error
			if e, err = f.meta.FindSegment(ctx, key.topicID, key.partition, from); err != nil {
				return
			}
			if e.Validate() != nil {
				return
			}
			f.entries.add(key, e)
		}
		_, err := f.cache.ReadRangeClass(ctx, cache.Warm, e.ObjectKey, e.ObjectSize, e.Pos, e.Len,
			func(ctx context.Context, off, n int64) ([]byte, error) { return f.store.Get(ctx, e.ObjectKey, off, n) })
		if err != nil {
			f.log.Debug("warming the tail failed", "topic_id", key.topicID, "partition", key.partition, "offset", from, "err", err)
			return
		}
		from = e.LastOffset + 1
	}
}
