package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// Settled partitions. A pass reads a partition's layout (one etcd
// transaction with a range over its entries) to decide whether it has
// work. Read for every partition every Interval, that was 1,000
// transactions a second at 10,000 partitions, idle or not. But a verdict
// of "nothing to do" changes only when the partition gets new entries,
// which moves its next offset, or when time passes: entries age into
// compaction (CompactMinAge) and out of retention (RetentionMs). So a
// pass lists every partition's next offset in one read, and reads again
// only the partitions whose next offset moved (for compaction: by enough
// records to matter) or whose verdict has expired. A partition the
// Manager itself changed is read again, and one never written to (next
// offset 0) is not read: its verdicts follow from its being empty.

// forever is the expiry of a verdict that only new entries change.
var forever = time.Unix(1<<40, 0)

// compactRecheck bounds how long a partition that got a few records
// since its "nothing to compact" verdict goes unread (see skipCompact).
// A few large records can make a group by size; they wait at most this
// long, which is small against how long compacted data is read.
const compactRecheck = time.Minute

// settledState is what is known of one partition: the two verdicts, each
// with the next offset its layout was read at.
type settledState struct {
	// compactNext, compactEntries and compactAt are the next offset, the
	// number of entries and the time of the "nothing to compact" verdict;
	// compactUntil is when it expires (zero: no verdict).
	compactNext    int64
	compactEntries int
	compactAt      time.Time
	compactUntil   time.Time
	// retainNext is the next offset of the "nothing to drop" verdict and
	// retainUntil when it expires (zero: no verdict). retentionMs and
	// retentionBytes are the topic's limits it was made for: altering them
	// expires it. retainFirst is set when the layout had entries: the
	// oldest one, which time retention judges first, stays the same
	// however many come after it.
	retainNext                  int64
	retainUntil                 time.Time
	retentionMs, retentionBytes int64
	retainFirst                 bool
}

// settledSet holds the verdicts. The zero value is ready to use.
type settledSet struct {
	mu sync.Mutex // guards m and next
	m  map[meta.PartitionID]settledState
	// next is every partition's next offset as listed at the start of the
	// current pass; nil when the listing failed, which skips nothing.
	next map[meta.PartitionID]int64
}

// refresh takes every partition's next offset for the pass starting now,
// from view if it is not nil (it has them decoded already; listing and
// decoding 10,000 states cost as much as the reads it saved), else from
// one listing in etcd, and forgets the verdicts of partitions that no
// longer exist.
func (s *settledSet) refresh(ctx context.Context, store *meta.Store, view *meta.View) {
	var (
		states []meta.PartitionState
		err    error
	)
	if view != nil {
		states = view.Partitions()
	} else {
		states, _, err = store.ListPartitions(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.next = nil
		return
	}
	s.next = make(map[meta.PartitionID]int64, len(states))
	for _, st := range states {
		s.next[meta.PartitionID{TopicID: st.TopicID, Partition: st.Partition}] = st.NextOffset
	}
	for k := range s.m {
		if _, ok := s.next[k]; !ok {
			delete(s.m, k)
		}
	}
}

// current reports the partition's listed next offset: 0 for a partition
// without state (never written), ok false when the listing failed.
func (s *settledSet) current(k meta.PartitionID) (int64, bool) {
	if s.next == nil {
		return 0, false
	}
	return s.next[k], true
}

// empty reports whether the listing shows k at next offset 0: nothing was
// ever committed to it, so it has no entries to drop or compact. A new
// topic's partitions are not read before their first records, and their
// verdicts are set as if read: each of their entries will be younger than
// this pass.
func (s *settledSet) empty(k meta.PartitionID) bool {
	next, ok := s.next[k]
	return ok && next == 0
}

// skipCompact reports whether k's "nothing to compact" verdict holds at
// now. It holds while nothing was committed since and it has not expired;
// and, for up to compactRecheck, while so few records came that even as
// entries of their own they could not make a group by count (fewer than
// minInputs entries in all): a partition that gets a record now and then
// is not read on every pass.
func (s *settledSet) skipCompact(k meta.PartitionID, now time.Time, minInputs int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.empty(k) {
		// Its first entries are younger than now, and fewer than minInputs
		// records wait up to compactRecheck, as after any verdict.
		s.set(k, func(st *settledState) {
			st.compactNext, st.compactEntries, st.compactAt, st.compactUntil = 0, 0, now, forever
		})
		return true
	}
	next, ok := s.current(k)
	st, known := s.m[k]
	if !ok || !known || !now.Before(st.compactUntil) {
		return false
	}
	added := next - st.compactNext
	return added == 0 || (added > 0 && int64(st.compactEntries)+added < int64(minInputs) && now.Before(st.compactAt.Add(compactRecheck)))
}

// skipRetain reports whether k's "nothing to drop" verdict holds at now
// for topic t's limits: nothing was committed since, or the topic has only
// a time limit and the oldest entry is the one the verdict judged (new
// entries do not make it expire sooner; a size limit they can pass).
func (s *settledSet) skipRetain(k meta.PartitionID, t meta.Topic, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.empty(k) {
		// Its oldest entry, whenever it comes, is younger than now: under a
		// time limit alone nothing can expire before now + RetentionMs.
		until := forever
		if t.RetentionMs > 0 {
			until = now.Add(time.Duration(t.RetentionMs) * time.Millisecond)
		}
		s.set(k, func(st *settledState) {
			st.retainNext, st.retainUntil, st.retainFirst = 0, until, true
			st.retentionMs, st.retentionBytes = t.RetentionMs, t.RetentionBytes
		})
		return true
	}
	next, ok := s.current(k)
	st, known := s.m[k]
	if !ok || !known || !now.Before(st.retainUntil) || st.retentionMs != t.RetentionMs || st.retentionBytes != t.RetentionBytes {
		return false
	}
	return st.retainNext == next || (t.RetentionBytes <= 0 && st.retainFirst)
}

// update records a verdict read from l: f sets it on the partition's
// state.
func (s *settledSet) update(l meta.Layout, f func(*settledState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set(meta.PartitionID{TopicID: l.TopicID, Partition: l.Partition}, f)
}

// set applies f to k's state. s.mu must be held.
func (s *settledSet) set(k meta.PartitionID, f func(*settledState)) {
	if s.m == nil {
		s.m = map[meta.PartitionID]settledState{}
	}
	st := s.m[k]
	f(&st)
	s.m[k] = st
}

// forget drops k's verdicts: the Manager changed the partition.
func (s *settledSet) forget(topicID string, partition int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, meta.PartitionID{TopicID: topicID, Partition: partition})
}

// forgetCompact drops l's compaction verdict, for a partition compaction
// is about to change. Its retention verdict stays when compaction cannot
// make it wrong: a time limit alone, judged by an oldest entry with a
// record timestamp. An entry merged from it has the largest timestamp of
// its inputs, so it expires no sooner, and merging moves neither the next
// offset nor the log start. Keeping it matters under load: compaction
// changes nearly every busy partition each pass, and retention would
// otherwise read every one of them again on the next.
func (s *settledSet) forgetCompact(l meta.Layout) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := meta.PartitionID{TopicID: l.TopicID, Partition: l.Partition}
	st, ok := s.m[k]
	if !ok {
		return
	}
	if st.retentionBytes > 0 || !st.retainFirst || len(l.Entries) == 0 || l.Entries[0].MaxTimestamp <= 0 {
		delete(s.m, k)
		return
	}
	st.compactNext, st.compactEntries, st.compactAt, st.compactUntil = 0, 0, time.Time{}, time.Time{}
	s.m[k] = st
}

// compactSettled records that l has nothing to compact at now: until all
// its entries are older than CompactMinAge, or for good when they are.
func (m *Manager) compactSettled(l meta.Layout, now time.Time) {
	until := forever
	var youngest int64
	for _, e := range l.Entries {
		youngest = max(youngest, e.CreatedMs)
	}
	if aged := time.UnixMilli(youngest).Add(m.cfg.CompactMinAge); aged.After(now) {
		until = aged
	}
	m.settled.update(l, func(st *settledState) {
		st.compactNext, st.compactEntries, st.compactAt, st.compactUntil = l.NextOffset, len(l.Entries), now, until
	})
}

// retainSettled records that l has nothing to drop under t's limits at
// now: until its oldest entry passes RetentionMs, or for good without a
// time limit (the size limit changes only with new entries).
func (m *Manager) retainSettled(l meta.Layout, t meta.Topic) {
	until := forever
	if t.RetentionMs > 0 && len(l.Entries) > 0 {
		until = time.UnixMilli(entryTime(l.Entries[0]) + t.RetentionMs)
	}
	m.settled.update(l, func(st *settledState) {
		st.retainNext, st.retainUntil, st.retainFirst = l.NextOffset, until, len(l.Entries) > 0
		st.retentionMs, st.retentionBytes = t.RetentionMs, t.RetentionBytes
	})
}
