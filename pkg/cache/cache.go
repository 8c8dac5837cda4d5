// Package cache is the proxy's block cache: a size-bounded LRU of fixed-size
// blocks of immutable segment objects. Segment objects never change once
// written, so a cached block never goes stale; it only ages out.
//
// Reads come in two classes: Hot (the tail that consumers near the head
// read, and blocks warmed ahead of them) and Cold (old data). Cold blocks
// live in an LRU of their own bounded by Config.ColdBytes; hot blocks use
// the rest of MaxBytes (all of it while nothing cold is cached). So a
// reader scanning old data evicts other cold blocks, and at most ColdBytes
// of the hot tail once. A hot read of a cold block moves it to the hot LRU.
//
// Concurrent misses of one block are merged (singleflight), so a burst of
// consumers reading the same new data costs one ranged GET per block.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Defaults for Config.
const (
	// DefaultMaxBytes bounds the cache at 256 MiB.
	DefaultMaxBytes = 256 << 20
	// DefaultBlockSize is the unit of caching and of reads from storage.
	DefaultBlockSize = 1 << 20
)

// ErrInvalidRange is returned for a range that does not fit the object.
var ErrInvalidRange = errors.New("cache: invalid range")

// Config configures a Cache.
type Config struct {
	// MaxBytes bounds the bytes held in cached blocks. Default
	// DefaultMaxBytes.
	MaxBytes int64
	// BlockSize is the size of a cached block; reads from storage are
	// aligned to it. Default DefaultBlockSize.
	BlockSize int64
	// ColdBytes is the part of MaxBytes that Cold reads may fill; Hot
	// reads always have the rest. Default MaxBytes/4.
	ColdBytes int64
	// Registerer receives the cache's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	if c.MaxBytes < 0 || c.BlockSize < 0 {
		return errors.New("cache: config: sizes must be positive")
	}
	if c.BlockSize > c.MaxBytes {
		return fmt.Errorf("cache: config: block size %d exceeds max bytes %d", c.BlockSize, c.MaxBytes)
	}
	if c.ColdBytes < 0 || c.ColdBytes > c.MaxBytes-c.BlockSize {
		return fmt.Errorf("cache: config: cold bytes %d, want 0..%d (max bytes - block size)", c.ColdBytes, c.MaxBytes-c.BlockSize)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.ColdBytes == 0 {
		c.ColdBytes = min(c.MaxBytes/4, max(c.MaxBytes-c.BlockSize, 0))
	}
}

// Class is the budget a read counts against.
type Class uint8

const (
	// Hot reads are of the tail, or warm it; they share MaxBytes -
	// ColdBytes.
	Hot Class = iota
	// Cold reads are of old data; their blocks share ColdBytes.
	Cold
	// Warm reads load blocks ahead of the tail readers that will want
	// them. They use the Hot budget but are counted apart, so that the
	// hit ratio of the readers themselves can be told (Stats.Classes).
	Warm
	numClasses
)

// String returns the class's metric label.
func (c Class) String() string {
	switch c {
	case Hot:
		return "hot"
	case Cold:
		return "cold"
	case Warm:
		return "warm"
	}
	return "class" + strconv.Itoa(int(c))
}

// budget is the LRU (Hot or Cold) that blocks loaded by class go to.
func (c Class) budget() Class {
	if c == Cold {
		return Cold
	}
	return Hot
}

// Loader reads length bytes at off of an object from storage.
type Loader func(ctx context.Context, off, length int64) ([]byte, error)

// Cache is a size-bounded LRU of object blocks. It is safe for concurrent
// use.
type Cache struct {
	cfg     Config
	flight  singleflight.Group
	metrics *metrics

	mu sync.Mutex // guards lru and bytes
	// lru and bytes are indexed by Class.
	lru   [2]*simplelru.LRU[string, []byte]
	bytes [2]int64

	hits, misses, evictions atomic.Int64
	// classes counts reads by class: [class][hit, joined, load].
	classes [numClasses][3]atomic.Int64
}

// Outcomes of a block read, the second index of Cache.classes.
const (
	outHit    = iota // in the cache
	outJoined        // missed, and waited for a load another read started
	outLoad          // missed, and loaded it from storage
)

// New returns an empty cache.
func New(cfg Config) (*Cache, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, metrics: newMetrics(cfg.Registerer)}
	for class := range c.lru {
		// The entry limit never binds: eviction is by bytes, in add.
		lru, err := simplelru.NewLRU[string, []byte](math.MaxInt32, func(_ string, block []byte) { c.onEvict(Class(class), block) })
		if err != nil {
			return nil, err
		}
		c.lru[class] = lru
	}
	return c, nil
}

// onEvict runs under mu, from an LRU, for evictions and moves alike.
func (c *Cache) onEvict(class Class, block []byte) {
	c.bytes[class] -= int64(len(block))
	c.metrics.bytes.Set(float64(c.bytes[Hot] + c.bytes[Cold]))
}

// BlockSize returns the configured block size.
func (c *Cache) BlockSize() int64 { return c.cfg.BlockSize }

// ReadRange returns length bytes at off of the object named key whose total
// size is size, serving whole blocks from the cache and loading the missing
// ones with load. The caller may keep the result but must not modify it: a
// range within one block is that block's bytes, not a copy.
func (c *Cache) ReadRange(ctx context.Context, key string, size, off, length int64, load Loader) ([]byte, error) {
	return c.ReadRangeClass(ctx, Hot, key, size, off, length, load)
}

// ReadRangeClass is ReadRange with the blocks it loads counted against
// class's budget.
func (c *Cache) ReadRangeClass(ctx context.Context, class Class, key string, size, off, length int64, load Loader) ([]byte, error) {
	if class >= numClasses {
		return nil, fmt.Errorf("cache: unknown class %d", class)
	}
	if off < 0 || length < 0 || size < 0 || off > size || length > size-off {
		return nil, fmt.Errorf("%w: %d+%d of a %d-byte object %s", ErrInvalidRange, off, length, size, key)
	}
	bs := c.cfg.BlockSize
	if idx := off / bs; length > 0 && (off+length-1)/bs == idx {
		// Within one block: no copy (most flush chunks, and every warm).
		block, err := c.block(ctx, class, key, size, idx, load)
		if err != nil {
			return nil, err
		}
		from := off - idx*bs
		return block[from : from+length : from+length], nil
	}
	out := make([]byte, 0, length)
	for pos := off; pos < off+length; {
		idx := pos / bs
		block, err := c.block(ctx, class, key, size, idx, load)
		if err != nil {
			return nil, err
		}
		from := pos - idx*bs
		to := min(int64(len(block)), off+length-idx*bs)
		out = append(out, block[from:to]...)
		pos = idx*bs + to
	}
	return out, nil
}

// block returns block idx of an object, from the cache or from storage.
func (c *Cache) block(ctx context.Context, class Class, key string, size, idx int64, load Loader) ([]byte, error) {
	bkey := key + "#" + strconv.FormatInt(idx, 10)
	c.mu.Lock()
	b, ok := c.lru[Hot].Get(bkey)
	if !ok {
		if b, ok = c.lru[Cold].Get(bkey); ok && class.budget() == Hot {
			// A tail reader wants it: move it to the hot budget.
			c.lru[Cold].Remove(bkey)
			c.addLocked(Hot, bkey, b)
		}
	}
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		c.metrics.hits.Inc()
		c.count(class, outHit)
		return b, nil
	}
	c.misses.Add(1)
	c.metrics.misses.Inc()
	start := idx * c.cfg.BlockSize
	want := min(c.cfg.BlockSize, size-start)
	// The load outlives a caller that gives up, so that the other waiters
	// and the cache still get the block. Only the caller whose function
	// runs loads; the others join its load.
	var loaded atomic.Bool
	ch := c.flight.DoChan(bkey, func() (any, error) {
		// A caller that missed just as an earlier load finished finds the
		// block here instead of loading it again.
		c.mu.Lock()
		b, ok := c.lru[Hot].Peek(bkey)
		if !ok {
			b, ok = c.lru[Cold].Peek(bkey)
		}
		c.mu.Unlock()
		if ok {
			return b, nil
		}
		loaded.Store(true)
		b, err := load(context.WithoutCancel(ctx), start, want)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != want {
			return nil, fmt.Errorf("cache: %s block %d: read %d bytes, want %d", key, idx, len(b), want)
		}
		c.add(class.budget(), bkey, b)
		return b, nil
	})
	select {
	case r := <-ch:
		if loaded.Load() {
			c.count(class, outLoad)
		} else {
			c.count(class, outJoined)
		}
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// count records the outcome of one block read of class.
func (c *Cache) count(class Class, outcome int) {
	c.classes[class][outcome].Add(1)
	c.metrics.classReads[class][outcome].Inc()
}

func (c *Cache) add(class Class, key string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru[Hot].Contains(key) || c.lru[Cold].Contains(key) {
		return
	}
	c.addLocked(class, key, b)
}

// addLocked adds a block to class's LRU, then evicts the oldest cold
// blocks past ColdBytes and the oldest hot ones (cold ones when no hot is
// left) past MaxBytes. c.mu must be held.
func (c *Cache) addLocked(class Class, key string, b []byte) {
	c.lru[class].Add(key, b)
	c.bytes[class] += int64(len(b))
	evict := func(class Class) {
		c.lru[class].RemoveOldest()
		c.evictions.Add(1)
		c.metrics.evictions.Inc()
	}
	for c.bytes[Cold] > c.cfg.ColdBytes {
		evict(Cold)
	}
	for c.bytes[Hot]+c.bytes[Cold] > c.cfg.MaxBytes {
		if c.lru[Hot].Len() > 0 {
			evict(Hot)
		} else {
			evict(Cold)
		}
	}
	c.metrics.bytes.Set(float64(c.bytes[Hot] + c.bytes[Cold]))
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits, Misses, Evictions int64
	// Bytes is the size of the cached blocks; HotBytes and ColdBytes
	// split it by budget.
	Bytes, HotBytes, ColdBytes int64
	// Blocks is the number of cached blocks.
	Blocks int
	// Classes splits the block reads by the class of the read, indexed by
	// Class. A read that gives up waiting (its context ends) is counted
	// as a miss only.
	Classes [numClasses]ClassStats
}

// ClassStats counts the block reads of one class.
type ClassStats struct {
	// Hits found the block cached.
	Hits int64
	// Joined missed and waited for a load another read had started (or
	// found the block cached once it got to load it).
	Joined int64
	// Loads missed and read the block from storage.
	Loads int64
}

// HitRatio is Hits over all reads counted, or 0 with none.
func (s ClassStats) HitRatio() float64 {
	n := s.Hits + s.Joined + s.Loads
	if n == 0 {
		return 0
	}
	return float64(s.Hits) / float64(n)
}

// Sub returns s minus an earlier snapshot t.
func (s ClassStats) Sub(t ClassStats) ClassStats {
	return ClassStats{Hits: s.Hits - t.Hits, Joined: s.Joined - t.Joined, Loads: s.Loads - t.Loads}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Bytes: c.bytes[Hot] + c.bytes[Cold], HotBytes: c.bytes[Hot], ColdBytes: c.bytes[Cold],
		Blocks: c.lru[Hot].Len() + c.lru[Cold].Len(),
	}
	for class := range st.Classes {
		n := &c.classes[class]
		st.Classes[class] = ClassStats{Hits: n[outHit].Load(), Joined: n[outJoined].Load(), Loads: n[outLoad].Load()}
	}
	return st
}
