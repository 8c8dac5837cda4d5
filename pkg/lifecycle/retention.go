package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// RetentionStats counts what a retention pass did.
type RetentionStats struct {
	// Partitions is the number of partitions whose log start moved.
	Partitions int
	// Entries and Bytes are the entries dropped and their chunk bytes.
	Entries int
	Bytes   int64
	// Settled is the number of partitions not read: nothing had changed
	// since a pass found nothing to drop.
	Settled int
}

// Retention drops, for every partition, the oldest entries past its
// topic's limits and moves the log start to the first entry kept:
//
//   - by time, an entry whose newest record (MaxTimestamp, or CreatedMs
//     when the batch carried no timestamp) is older than RetentionMs;
//   - by size, the oldest entries while the partition stays at or above
//     RetentionBytes without them (as Kafka's retention.bytes).
//
// Only whole entries go, oldest first; the objects they point at are left
// to garbage collection. A compacted topic (cleanup.policy=compact) keeps
// every record, whatever its limits.
func (m *Manager) Retention(ctx context.Context) (RetentionStats, error) {
	defer m.metrics.observePass("retention", time.Now())
	var st RetentionStats
	topics, err := m.topics(ctx)
	if err != nil {
		return st, err
	}
	m.settled.refresh(ctx, m.cfg.Meta, m.cfg.View)
	now := m.cfg.Now()
	var errs []error
	for _, t := range topics {
		if t.Compacted() || (t.RetentionMs <= 0 && t.RetentionBytes <= 0) {
			continue // keeps every record
		}
		for p := range t.Partitions {
			if m.settled.skipRetain(meta.PartitionID{TopicID: t.ID, Partition: p}, t, now) {
				st.Settled++
				continue
			}
			if err := m.retainPartition(ctx, t, p, &st); err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				errs = append(errs, err)
			}
		}
	}
	return st, errors.Join(errs...)
}

func (m *Manager) retainPartition(ctx context.Context, t meta.Topic, p int32, st *RetentionStats) error {
	l, err := m.cfg.Meta.ReadLayout(ctx, t.ID, p)
	if err != nil {
		return err
	}
	i := retainCut(t, l.Entries, m.cfg.Now())
	if i == 0 {
		m.retainSettled(l, t)
		return nil
	}
	m.settled.forget(t.ID, p)
	newStart := l.Entries[i-1].LastOffset + 1
	if err := m.step(ctx, StepRetentionTruncate); err != nil {
		return err
	}
	if err := m.cfg.Meta.TruncateSegments(ctx, l, newStart); err != nil {
		if errors.Is(err, meta.ErrConflict) {
			return nil // changed meanwhile; the next pass decides again
		}
		return err
	}
	bytes := meta.EntriesBytes(l.Entries[:i])
	st.Partitions++
	st.Entries += i
	st.Bytes += bytes
	m.metrics.retentionEntries.Add(float64(i))
	m.metrics.retentionBytes.Add(float64(bytes))
	m.log.Debug("retention moved log start", "topic", t.Name, "partition", p, "log_start", newStart, "entries", i)
	return nil
}

// retainCut returns how many of the oldest entries retention drops.
func retainCut(t meta.Topic, es []meta.SegmentEntry, now time.Time) int {
	i := 0
	if t.RetentionMs > 0 {
		limit := now.UnixMilli() - t.RetentionMs
		for i < len(es) && entryTime(es[i]) < limit {
			i++
		}
	}
	if t.RetentionBytes > 0 {
		var total int64
		for _, e := range es[i:] {
			total += e.Len
		}
		for i < len(es) && total-es[i].Len >= t.RetentionBytes {
			total -= es[i].Len
			i++
		}
	}
	return i
}

// entryTime is the time retention judges an entry by.
func entryTime(e meta.SegmentEntry) int64 {
	if e.MaxTimestamp > 0 {
		return e.MaxTimestamp
	}
	return e.CreatedMs
}
