package proxy

// Tail reads and cache warming: partitions whose readers sit at the high
// watermark get each new entry read into the block cache as soon as its
// commit shows in the view, so that those readers hit the cache.

import (
	"context"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
)

// Bounds of tail reads and cache warming.
const (
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
	if now.UnixMilli()-e.CreatedMs < f.tailWindow.Milliseconds() {
		return cache.Hot
	}
	return cache.Cold
}

// tailReaders remembers partitions that readers fetched at the high
// watermark, and how far their data is warmed.
type tailReaders struct {
	mu sync.Mutex // guards parts
	// parts maps a partition to its readers and warming progress.
	parts map[meta.PartitionID]tailState
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
	key      meta.PartitionID
	from, to int64
	prev     <-chan struct{} // the previous warm's done, or nil
	done     chan struct{}   // closed when this and every earlier warm ended
}

// note records a reader at the high watermark hw of a partition.
func (t *tailReaders) note(key meta.PartitionID, hw int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.parts == nil {
		t.parts = map[meta.PartitionID]tailState{}
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
func (t *tailReaders) claimLocked(key meta.PartitionID, st tailState, hw int64) warmJob {
	j := warmJob{key: key, from: st.claimed, to: hw, prev: st.done, done: make(chan struct{})}
	st.claimed, st.done = hw, j.done
	t.parts[key] = st
	return j
}

// due returns a warm job for every partition with a recent reader whose
// high watermark in view passed what was claimed and whose last warm has
// ended, and forgets partitions without recent readers.
//
// One warm at a time per partition: the next one, at a later change,
// takes every entry committed meanwhile in one etcd listing. A warm per
// commit sent an etcd read per partition per commit; under load those
// queued in etcd, each warm waited for the one before it, and readers
// stalled for seconds.
func (t *tailReaders) due(view *meta.View) []warmJob {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []warmJob
	for key, st := range t.parts {
		if time.Since(st.seen) > activeReaderWindow {
			delete(t.parts, key)
			continue
		}
		ps, ok := view.Partition(key.TopicID, key.Partition)
		if !ok {
			delete(t.parts, key)
			continue
		}
		if ps.NextOffset > st.claimed && st.done == nil {
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
func (t *tailReaders) forRead(key meta.PartitionID, off, hw int64) (job warmJob, run bool, wait <-chan struct{}) {
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
	for {
		ch := f.view.Changed()
		for _, j := range f.tail.due(f.view) {
			f.goWarm(j)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// goWarm runs a warm job on a goroutine the Fetcher owns.
func (f *Fetcher) goWarm(j warmJob) {
	f.warms.Go(func() { f.runWarm(f.warmCtx, j) })
}

// stopWarms ends running warms and waits for them. Called once, after
// every front end stopped fetching.
func (f *Fetcher) stopWarms() {
	f.cancelWarm()
	f.warms.Wait()
}

// runWarm warms a job's range, then waits for the previous warm of the
// partition so that warms end in order, and marks the job done.
func (f *Fetcher) runWarm(ctx context.Context, j warmJob) {
	if !f.recent.awaitCover(ctx, j.key, j.from, j.to, maxAckWait) {
		// Readers of what this proxy forwarded are served from memory;
		// the rest came through other proxies.
		f.warm(ctx, j.key, j.from, j.to)
	}
	if j.prev != nil {
		// The previous warm ends within warmTimeout.
		<-j.prev
	}
	f.tail.finish(j)
	close(j.done)
}

// maxAckWait bounds how long a warm of offsets waits for the owner's
// acknowledgement of a produce this proxy forwards to the partition, which
// would put them in the tail buffer, before it reads storage.
const maxAckWait = 20 * time.Millisecond

// maxWarmWait bounds how long a read of the tail waits for the warm of its
// data; past it, the read loads (or joins the load of) the blocks itself.
const maxWarmWait = 2 * time.Second

// awaitTail lets a read of key's offsets off..hw-1 at the tail wait for
// its data, and returns it when the tail buffer has it. Readers woken by a
// commit either find the batches this proxy forwarded in the tail buffer
// (its owner's acknowledgement may come a moment after the commit's watch
// event, so they wait for whichever comes first), or wait until the new
// entries are in the block cache, so that they hit the cache rather than
// race the warm read: the first of them to arrive before the warm loop
// warms them itself, the others wait. Reads of settled data return at
// once. ok is false when the caller reads storage.
func (f *Fetcher) awaitTail(ctx context.Context, key meta.PartitionID, off, hw int64, maxBytes int) (b []byte, ok bool) {
	if b, ok := f.recent.read(key, off, hw, maxBytes); ok {
		return b, true
	}
	j, run, wait := f.tail.forRead(key, off, hw)
	if run {
		// The warm outlives this reader if need be (the other readers
		// wait for it), so it runs on the Fetcher's goroutine; this
		// reader waits for it as they do, while its context lasts.
		f.goWarm(j)
		wait = j.done
	}
	if wait == nil {
		return nil, false
	}
	timer := time.NewTimer(maxWarmWait)
	defer timer.Stop()
	for {
		changed := f.recent.changed()
		if b, ok := f.recent.read(key, off, hw, maxBytes); ok {
			return b, true
		}
		select {
		case <-wait:
			return f.recent.read(key, off, hw, maxBytes)
		case <-timer.C:
			return f.recent.read(key, off, hw, maxBytes)
		case <-ctx.Done():
			return nil, false
		case <-changed:
		}
	}
}

// warm reads the entries holding offsets from..to-1 through the cache.
// The entries are found with one etcd listing (listEntries) and read
// concurrently: each is usually in another flush's object.
func (f *Fetcher) warm(ctx context.Context, key meta.PartitionID, from, to int64) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	var es []meta.SegmentEntry
	for n := 0; from < to && n < maxWarmEntries; n++ {
		e, ok := f.entries.find(key, from)
		if !ok {
			var err error
			if e, err = f.listEntries(ctx, key, from); err != nil || e.Validate() != nil {
				break
			}
		}
		es = append(es, e)
		from = e.LastOffset + 1
	}
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Go(func() {
			_, err := f.cache.ReadRangeClass(ctx, cache.Warm, e.ObjectKey, e.ObjectSize, e.Pos, e.Len,
				func(ctx context.Context, off, n int64) ([]byte, error) { return f.store.Get(ctx, e.ObjectKey, off, n) })
			if err != nil {
				f.log.Debug("warming the tail failed", "topic_id", key.TopicID, "partition", key.Partition, "offset", e.FirstOffset, "err", err)
			}
		})
	}
	wg.Wait()
}
