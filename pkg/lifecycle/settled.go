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
// only the partitions whose next offset moved or whose verdict has
// expired. A partition the Manager itself changed is read again.

// forever is the expiry of a verdict that only new entries change.
var forever = time.Unix(1<<40, 0)

// settledState is what is known of one partition.
type settledState struct {
	// next is the next offset its layout was read at.
	next int64
	// compactUntil and retainUntil are when the verdicts "nothing to
	// compact" and "nothing to drop" expire; zero when there is none.
	compactUntil, retainUntil time.Time
	// retentionMs and retentionBytes are the topic's limits the retain
	// verdict was made for: altering them expires it.
	retentionMs, retentionBytes int64
}

// settledSet holds the verdicts. The zero value is ready to use.
type settledSet struct {
	mu sync.Mutex // guards m and next
	m  map[meta.PartitionID]settledState
	// next is every partition's next offset as listed at the start of the
	// current pass; nil when the listing failed, which skips nothing.
	next map[meta.PartitionID]int64
}

// refresh lists every partition's next offset for the pass starting now,
// and forgets the verdicts of partitions that no longer exist.
func (s *settledSet) refresh(ctx context.Context, store *meta.Store) {
	states, _, err := store.ListPartitions(ctx)
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

// skipCompact reports whether k's "nothing to compact" verdict holds at now.
func (s *settledSet) skipCompact(k meta.PartitionID, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, ok := s.current(k)
	st, known := s.m[k]
	return ok && known && st.next == next && now.Before(st.compactUntil)
}

// skipRetain reports whether k's "nothing to drop" verdict holds at now
// for topic t's limits.
func (s *settledSet) skipRetain(k meta.PartitionID, t meta.Topic, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, ok := s.current(k)
	st, known := s.m[k]
	return ok && known && st.next == next && now.Before(st.retainUntil) &&
		st.retentionMs == t.RetentionMs && st.retentionBytes == t.RetentionBytes
}

// update records a verdict read from l: f sets its expiry on the
// partition's state, which starts over when l's next offset differs from
// the one the other verdict was made at.
func (s *settledSet) update(l meta.Layout, f func(*settledState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[meta.PartitionID]settledState{}
	}
	k := meta.PartitionID{TopicID: l.TopicID, Partition: l.Partition}
	st := s.m[k]
	if st.next != l.NextOffset {
		st = settledState{next: l.NextOffset}
	}
	f(&st)
	s.m[k] = st
}

// forget drops k's verdicts: the Manager changed the partition.
func (s *settledSet) forget(topicID string, partition int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, meta.PartitionID{TopicID: topicID, Partition: partition})
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
	m.settled.update(l, func(st *settledState) { st.compactUntil = until })
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
		st.retainUntil, st.retentionMs, st.retentionBytes = until, t.RetentionMs, t.RetentionBytes
	})
}
