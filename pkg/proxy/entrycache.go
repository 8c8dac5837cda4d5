package proxy

import (
	"sort"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/strata-mq/strata/pkg/meta"
)

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
	parts *simplelru.LRU[meta.PartitionID, []meta.SegmentEntry]
}

func newEntryCache() *entryCache {
	lru, err := simplelru.NewLRU[meta.PartitionID, []meta.SegmentEntry](maxCachedPartitions, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &entryCache{parts: lru}
}

// find returns the cached entry that holds offset.
func (c *entryCache) find(key meta.PartitionID, offset int64) (meta.SegmentEntry, bool) {
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
func (c *entryCache) add(key meta.PartitionID, e meta.SegmentEntry) {
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
func (c *entryCache) forget(key meta.PartitionID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts.Remove(key)
}
