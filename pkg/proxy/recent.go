package proxy

// Recently acknowledged batches: a reader at the high watermark is answered
// from the bytes this proxy forwarded, the moment their owner acknowledges
// them, instead of after the commit's watch event, an etcd read of the new
// segment entry and a GET of the new object.

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// recentBatches keeps, for partitions that have readers at their high
// watermark, the record batches this proxy forwarded and their owner
// acknowledged, stamped as the owner stored them (base offset, partition
// leader epoch). An owner acknowledges only after the fencing commit, so
// every byte here is committed data (invariant 4): readers may be answered
// from it before the watch shows the commit.
//
// Batches of a partition are kept sorted by offset; acknowledgements of
// concurrent requests arrive in any order, and produces through other
// proxies leave gaps, so a read serves only a contiguous run and otherwise
// falls back to storage. The oldest batches go first when the byte budget
// is reached.
type recentBatches struct {
	budget int // bytes kept at most; 0 or less keeps none

	mu sync.Mutex // guards every field below
	// parts holds each watched partition's batches.
	parts map[meta.PartitionID]*recentPart
	// order lists the kept batches oldest first, for eviction.
	order []recentRef
	// size is the bytes held.
	size int
	// sweepAt is the number of watched partitions at which watch sweeps.
	sweepAt int
	// changedCh is closed and replaced whenever batches are kept or a
	// forward ends.
	changedCh chan struct{}
}

type recentPart struct {
	// seen is when a reader last fetched at the high watermark; batches
	// are kept only for partitions read within activeReaderWindow.
	seen time.Time
	// forwarding counts produces this proxy is forwarding to the
	// partition's owner (begin/end): their acknowledgements are coming.
	forwarding int
	// batches are sorted by base offset and do not overlap.
	batches []recentBatch
}

// active reports whether a reader fetched at the high watermark lately.
func (p *recentPart) active() bool { return time.Since(p.seen) <= activeReaderWindow }

// idle reports whether the partition may be forgotten: nothing kept,
// nothing in flight, no recent reader.
func (p *recentPart) idle() bool { return len(p.batches) == 0 && p.forwarding == 0 && !p.active() }

type recentBatch struct {
	base, last int64
	b          []byte
}

type recentRef struct {
	key  meta.PartitionID
	base int64
}

func newRecentBatches(budget int) *recentBatches {
	return &recentBatches{budget: budget, parts: map[meta.PartitionID]*recentPart{}, sweepAt: minSweep, changedCh: make(chan struct{})}
}

// watch notes a reader at the high watermark of key: from now on its
// acknowledged batches are kept.
func (r *recentBatches) watch(key meta.PartitionID) {
	if r.budget <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[key]
	if p == nil {
		if len(r.parts) >= r.sweepAt {
			r.sweepLocked()
		}
		p = &recentPart{}
		r.parts[key] = p
	}
	p.seen = time.Now()
}

// minSweep is the number of watched partitions below which sweepLocked is
// not worth running.
const minSweep = 1024

// sweepLocked forgets partitions without batches and without recent
// readers, and sets when to sweep next: at twice what is left, so the
// cost stays proportional to the partitions watched. r.mu must be held.
func (r *recentBatches) sweepLocked() {
	for key, p := range r.parts {
		if p.idle() {
			delete(r.parts, key)
		}
	}
	r.sweepAt = max(minSweep, 2*len(r.parts))
}

// watched reports whether key had a reader at its high watermark lately.
func (r *recentBatches) watched(key meta.PartitionID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[key]
	return p != nil && p.active()
}

// add keeps a copy of batches, which the owner at epoch acknowledged at
// offsets base.., stamped as the owner stamped them, if key is watched,
// and reports whether it is. Batches that do not parse or do not add up
// to the acknowledged offsets are not kept.
func (r *recentBatches) add(key meta.PartitionID, epoch, base, last int64, batches []byte) (watched bool) {
	if !r.watched(key) {
		return false
	}
	if epoch <= 0 || len(batches) > r.budget {
		return true
	}
	b := append([]byte(nil), batches...)
	hs, err := segment.SplitVerifiedBatches(b) // the owner checked the CRCs
	if err != nil {
		return true
	}
	kept := make([]recentBatch, 0, len(hs))
	next, pos := base, 0
	for _, h := range hs {
		bb := b[pos : pos+h.Size() : pos+h.Size()]
		segment.SetBaseOffset(bb, next)
		segment.SetPartitionLeaderEpoch(bb, int32(epoch))
		kept = append(kept, recentBatch{base: next, last: next + int64(h.RecordCount) - 1, b: bb})
		next += int64(h.RecordCount)
		pos += h.Size()
	}
	if next != last+1 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rb := range kept {
		r.insertLocked(key, rb)
	}
	r.evictLocked()
	r.notifyLocked()
	return true
}

// notifyLocked wakes the waiters on changed. r.mu must be held.
func (r *recentBatches) notifyLocked() {
	close(r.changedCh)
	r.changedCh = make(chan struct{})
}

// changed returns a channel that is closed when batches are next kept or
// a forward next ends. Take it before the check it would repeat.
func (r *recentBatches) changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changedCh
}

// begin notes a produce to key that this proxy starts forwarding, if key
// is watched; it reports whether it noted one, to be ended with end.
func (r *recentBatches) begin(key meta.PartitionID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[key]
	if p == nil || !p.active() {
		return false
	}
	p.forwarding++
	return true
}

// end notes that a produce noted by begin was answered (after add, when
// it was acknowledged).
func (r *recentBatches) end(key meta.PartitionID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.parts[key]; p != nil && p.forwarding > 0 {
		p.forwarding--
	}
	r.notifyLocked()
}

// awaitCover waits until kept batches cover key's offsets from..to-1
// (true), or until no produce this proxy forwards to key is in flight,
// wait passes or ctx ends (false, unless they are covered by then). A
// commit's watch event usually comes a moment before the owner's
// acknowledgement of it.
func (r *recentBatches) awaitCover(ctx context.Context, key meta.PartitionID, from, to int64, wait time.Duration) bool {
	var timer *time.Timer
	for {
		ch := r.changed()
		if r.covers(key, from, to) {
			return true
		}
		if !r.forwardingTo(key) {
			return false
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			return r.covers(key, from, to)
		case <-ctx.Done():
			return false
		}
	}
}

// forwardingTo reports whether this proxy is forwarding a produce to key.
func (r *recentBatches) forwardingTo(key meta.PartitionID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.parts[key]
	return p != nil && p.forwarding > 0
}

// insertLocked adds rb to key's batches unless a batch already covers
// its offsets (a retry acknowledged twice). r.mu must be held.
func (r *recentBatches) insertLocked(key meta.PartitionID, rb recentBatch) {
	p := r.parts[key]
	if p == nil {
		return // forgotten meanwhile
	}
	bs := p.batches
	i := sort.Search(len(bs), func(i int) bool { return bs[i].last >= rb.base })
	if i < len(bs) && bs[i].base <= rb.last {
		return // overlaps a kept batch
	}
	bs = append(bs, recentBatch{})
	copy(bs[i+1:], bs[i:])
	bs[i] = rb
	p.batches = bs
	r.order = append(r.order, recentRef{key: key, base: rb.base})
	r.size += len(rb.b)
}

// evictLocked drops the oldest batches while over budget, and partitions
// left empty without recent readers. r.mu must be held.
func (r *recentBatches) evictLocked() {
	n := 0
	for ; n < len(r.order) && r.size > r.budget; n++ {
		ref := r.order[n]
		p := r.parts[ref.key]
		if p == nil {
			continue
		}
		bs := p.batches
		i := sort.Search(len(bs), func(i int) bool { return bs[i].base >= ref.base })
		if i == len(bs) || bs[i].base != ref.base {
			continue
		}
		r.size -= len(bs[i].b)
		p.batches = append(bs[:i], bs[i+1:]...)
		if p.idle() {
			delete(r.parts, ref.key)
		}
	}
	if n > 0 {
		r.order = append(r.order[:0:0], r.order[n:]...)
	}
}

// read returns kept batches of key from the one holding off, contiguous and
// all below hw, within maxBytes — the first whole even if larger. ok is
// false when no kept batch holds off. A single batch is returned without a
// copy: read it, never modify it.
func (r *recentBatches) read(key meta.PartitionID, off, hw int64, maxBytes int) (out []byte, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bs, i := r.holdingLocked(key, off)
	if i < 0 || bs[i].last >= hw {
		return nil, false
	}
	out, next, copied := bs[i].b, bs[i].last+1, false
	for _, nb := range bs[i+1:] {
		if nb.base != next || nb.last >= hw || len(out)+len(nb.b) > maxBytes {
			break
		}
		if !copied {
			out, copied = append(make([]byte, 0, 2*(len(out)+len(nb.b))), out...), true
		}
		out = append(out, nb.b...)
		next = nb.last + 1
	}
	return out, true
}

// holdingLocked returns key's kept batches and the index of the one that
// holds off, or -1. A disabled buffer (budget 0 or less) keeps nothing:
// watch never adds a partition to it. r.mu must be held.
func (r *recentBatches) holdingLocked(key meta.PartitionID, off int64) ([]recentBatch, int) {
	p := r.parts[key]
	if p == nil {
		return nil, -1
	}
	bs := p.batches
	i := sort.Search(len(bs), func(i int) bool { return bs[i].last >= off })
	if i == len(bs) || bs[i].base > off {
		return bs, -1
	}
	return bs, i
}

// covers reports whether kept batches hold every offset of key from
// from to to-1.
func (r *recentBatches) covers(key meta.PartitionID, from, to int64) bool {
	if from >= to {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bs, i := r.holdingLocked(key, from)
	if i < 0 {
		return false
	}
	for next := bs[i].base; i < len(bs) && bs[i].base == next; i++ {
		next = bs[i].last + 1
		if next >= to {
			return true
		}
	}
	return false
}
