package proxy

// Ranged reads: a cold chunk larger than a cache block (compacted data,
// up to lifecycle's CompactEntryBytes) is not read whole. Its object's
// footer locates the wanted offset in the chunk's sparse index, and one
// ranged GET fetches from that index entry to the fetch's byte budget past
// the next one, so a fetch reads about its budget from storage rather than
// the whole chunk. See docs/proxy.md.

import (
	"context"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// maxOpenObjects bounds the opened segment objects (their parsed footers)
// kept for ranged reads. A compacted object's footer is a few KiB to a few
// tens of KiB (one index entry per segment.DefaultIndexInterval of data).
const maxOpenObjects = 512

// objectRange reads byte ranges of one stored object straight from the
// store: the bytes of a ranged read are not block-aligned, so they bypass
// the block cache.
type objectRange struct {
	store objstore.Store
	key   string
}

func (o objectRange) ReadRange(ctx context.Context, off, length int64) ([]byte, error) {
	return o.store.Get(ctx, o.key, off, length)
}

// openObjects keeps opened segment objects by key. Objects never change
// once written; a deleted one is dropped when a read finds it missing.
type openObjects struct {
	lru    *lru.Cache[string, *segment.Reader]
	flight singleflight.Group
}

func newOpenObjects() *openObjects {
	c, err := lru.New[string, *segment.Reader](maxOpenObjects)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &openObjects{lru: c}
}

// open returns the opened object of e, reading its footer (one GET of the
// object's last segment.TailReadSize bytes) on first use.
func (o *openObjects) open(ctx context.Context, store objstore.Store, e meta.SegmentEntry) (*segment.Reader, error) {
	if r, ok := o.lru.Get(e.ObjectKey); ok {
		return r, nil
	}
	v, err, _ := o.flight.Do(e.ObjectKey, func() (any, error) {
		r, err := segment.Open(ctx, objectRange{store, e.ObjectKey}, e.ObjectSize)
		if err != nil {
			return nil, err
		}
		o.lru.Add(e.ObjectKey, r)
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*segment.Reader), nil
}

// ranged reports whether reads of e use ranged GETs rather than the block
// cache: cold chunks larger than one cache block. Tail chunks stay on the
// cache, where warming put them.
func (f *Fetcher) ranged(e meta.SegmentEntry, class cache.Class) bool {
	return class == cache.Cold && e.Len > f.cache.BlockSize()
}

// readRanged returns whole batches of e, starting with the batch that
// holds pos and within budget bytes (at least one batch), and their
// validated headers. It reads only the part of the chunk the sparse index
// points at.
//
// An entry may be part of its chunk: compaction writes a partition's run
// of entries as one chunk, an entry per group of them, back to back. The
// read stops at the entry's end, so that the next entry's batches are
// read as that entry's.
func (f *Fetcher) readRanged(ctx context.Context, e meta.SegmentEntry, pos int64, budget int) ([]byte, []segment.BatchHeader, error) {
	r, err := f.objects.open(ctx, f.store, e)
	if err != nil {
		return nil, nil, f.chunkError(ctx, e, err)
	}
	c, ok := r.Footer().Find(e.TopicID, e.Partition)
	if !ok || e.Pos < c.Position || e.End() > c.End() || e.FirstOffset < c.FirstOffset || e.LastOffset > c.LastOffset {
		return nil, nil, fmt.Errorf("%w: object %s: its footer holds no chunk of %s/%d that contains %d..%d at %d+%d, as the segment entry says",
			ErrCorruptData, e.ObjectKey, e.TopicID, e.Partition, e.FirstOffset, e.LastOffset, e.Pos, e.Len)
	}
	b, err := r.ReadChunkTo(ctx, e.TopicID, e.Partition, pos, int64(budget), e.End()-c.Position)
	if err != nil {
		return nil, nil, f.chunkError(ctx, e, err)
	}
	hs, err := segment.SplitBatches(b)
	if err != nil {
		return nil, nil, corruptChunk(e, err)
	}
	n, end := 0, 0
	for n < len(hs) && hs[n].BaseOffset <= e.LastOffset {
		if hs[n].LastOffset() > e.LastOffset {
			return nil, nil, corruptChunk(e, fmt.Errorf("batch %d..%d crosses the entry's end", hs[n].BaseOffset, hs[n].LastOffset()))
		}
		end += hs[n].Size()
		n++
	}
	if n == 0 {
		return nil, nil, corruptChunk(e, fmt.Errorf("the read at offset %d starts past the entry's end", pos))
	}
	return b[:end:end], hs[:n], nil
}
