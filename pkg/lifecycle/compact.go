package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// CompactTask is one unit of compaction work: merge the chunks of Groups —
// consecutive runs of a partition's entries — into one new single-partition
// segment object, one new entry per group.
type CompactTask struct {
	TopicID   string
	Partition int32
	// Groups are consecutive runs of consecutive entries; each becomes one
	// entry of the new object.
	Groups [][]meta.SegmentEntry
	// ObjectKey is the key the new object is written under.
	ObjectKey string
}

// Inputs returns the task's entries in offset order.
func (t CompactTask) Inputs() []meta.SegmentEntry {
	var out []meta.SegmentEntry
	for _, g := range t.Groups {
		out = append(out, g...)
	}
	return out
}

// Executor runs compaction tasks: it reads the input chunks, writes the
// merged object and returns the entries that describe it, without touching
// metadata (the Manager swaps the entries). The LocalExecutor runs in the
// Manager's process; a broker-side executor reached over RPC can take its
// place without changing the scheduling.
type Executor interface {
	Execute(ctx context.Context, task CompactTask, step func(context.Context, string) error) ([]meta.SegmentEntry, error)
}

// LocalExecutor runs one task at a time in this process and reads at most
// BytesPerSec bytes per second.
type LocalExecutor struct {
	store objstore.Store
	limit *limiter
	mu    sync.Mutex // held for the duration of a task: one at a time
}

// NewLocalExecutor returns an executor on store reading at most
// bytesPerSec bytes per second (-1: no limit).
func NewLocalExecutor(store objstore.Store, bytesPerSec int64) *LocalExecutor {
	return &LocalExecutor{store: store, limit: newLimiter(bytesPerSec)}
}

// Execute reads every input chunk, checks that it holds exactly the
// entry's offsets, writes the merged object and returns its entries.
func (x *LocalExecutor) Execute(ctx context.Context, task CompactTask, step func(context.Context, string) error) ([]meta.SegmentEntry, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	w := segment.NewWriter(segment.WriterOptions{})
	inputs := task.Inputs()
	for _, e := range inputs {
		if err := x.limit.wait(ctx, e.Len); err != nil {
			return nil, err
		}
		chunk, err := x.store.Get(ctx, e.ObjectKey, e.Pos, e.Len)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: read %s/%d@%d from %s: %w", e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
		}
		if err := checkChunk(e, chunk); err != nil {
			return nil, err
		}
		if err := w.Add(task.TopicID, task.Partition, chunk); err != nil {
			return nil, fmt.Errorf("lifecycle: merge %s/%d@%d: %w", e.TopicID, e.Partition, e.FirstOffset, err)
		}
	}
	obj, footer, err := w.Finish()
	if err != nil {
		return nil, fmt.Errorf("lifecycle: build compacted object: %w", err)
	}
	c, ok := footer.Find(task.TopicID, task.Partition)
	if !ok || c.FirstOffset != inputs[0].FirstOffset || c.LastOffset != inputs[len(inputs)-1].LastOffset {
		return nil, fmt.Errorf("lifecycle: compacted chunk does not cover %d..%d", inputs[0].FirstOffset, inputs[len(inputs)-1].LastOffset)
	}
	if err := step(ctx, StepCompactRead); err != nil {
		return nil, err
	}
	if err := x.store.Put(ctx, task.ObjectKey, obj); err != nil {
		return nil, fmt.Errorf("lifecycle: put %s: %w", task.ObjectKey, err)
	}
	// The chunk is the inputs' bytes back to back, so each group is a byte
	// range of it.
	out := make([]meta.SegmentEntry, 0, len(task.Groups))
	pos := c.Position
	for _, g := range task.Groups {
		e := meta.SegmentEntry{
			TopicID: task.TopicID, Partition: task.Partition,
			ObjectKey: task.ObjectKey, ObjectSize: int64(len(obj)),
			Pos: pos, FirstOffset: g[0].FirstOffset, LastOffset: g[len(g)-1].LastOffset,
			MinTimestamp: g[0].MinTimestamp, MaxTimestamp: g[0].MaxTimestamp,
		}
		for _, in := range g {
			e.Len += in.Len
			e.MinTimestamp = min(e.MinTimestamp, in.MinTimestamp)
			e.MaxTimestamp = max(e.MaxTimestamp, in.MaxTimestamp)
			e.CreatedMs = max(e.CreatedMs, in.CreatedMs)
		}
		pos += e.Len
		out = append(out, e)
	}
	if pos != c.End() {
		return nil, fmt.Errorf("lifecycle: compacted chunk is %d bytes, inputs %d", c.Length, pos-c.Position)
	}
	return out, nil
}

// checkChunk checks that chunk holds whole, intact batches covering exactly
// e's offsets.
func checkChunk(e meta.SegmentEntry, chunk []byte) error {
	hs, err := segment.SplitBatches(chunk)
	if err == nil && int64(len(chunk)) != e.Len {
		err = fmt.Errorf("read %d bytes, want %d", len(chunk), e.Len)
	}
	next := e.FirstOffset
	for _, h := range hs {
		if err != nil {
			break
		}
		if h.BaseOffset != next {
			err = fmt.Errorf("batch at offset %d, want %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
	if err == nil && next != e.LastOffset+1 {
		err = fmt.Errorf("batches end at %d, entry at %d", next-1, e.LastOffset)
	}
	if err != nil {
		return fmt.Errorf("lifecycle: chunk of %s/%d@%d in %s: %w", e.TopicID, e.Partition, e.FirstOffset, e.ObjectKey, err)
	}
	return nil
}

// CompactStats counts what a compaction pass did.
type CompactStats struct {
	// Tasks is the number of objects written and swapped in.
	Tasks int
	// EntriesIn and EntriesOut are the entries replaced and their
	// replacements; Bytes the chunk bytes rewritten.
	EntriesIn, EntriesOut int
	Bytes                 int64
	// Settled is the number of partitions not read: nothing had changed
	// since a pass found nothing to compact.
	Settled int
}

// Compact runs at most one task per partition: it plans which small
// entries to merge, has the Executor write the merged object, and swaps the
// entries in one transaction. A task whose swap loses a race leaves its
// object to garbage collection.
func (m *Manager) Compact(ctx context.Context) (CompactStats, error) {
	defer m.metrics.observePass("compact", time.Now())
	var st CompactStats
	topics, err := m.topics(ctx)
	if err != nil {
		return st, err
	}
	m.settled.refresh(ctx, m.cfg.Meta, m.cfg.View)
	now := m.cfg.Now()
	var errs []error
	for _, t := range topics {
		for p := range t.Partitions {
			if m.settled.skipCompact(meta.PartitionID{TopicID: t.ID, Partition: p}, now, m.cfg.CompactMinInputs) {
				st.Settled++
				continue
			}
			if err := m.compactPartition(ctx, t.ID, p, &st); err != nil {
				if ctx.Err() != nil {
					return st, ctx.Err()
				}
				m.metrics.compactions.WithLabelValues("error").Inc()
				errs = append(errs, err)
			}
		}
	}
	return st, errors.Join(errs...)
}

func (m *Manager) compactPartition(ctx context.Context, topicID string, p int32, st *CompactStats) error {
	l, err := m.cfg.Meta.ReadLayout(ctx, topicID, p)
	if err != nil {
		return err
	}
	now := m.cfg.Now()
	groups := m.plan(l, now)
	if len(groups) == 0 {
		m.compactSettled(l, now)
		return nil
	}
	m.settled.forget(topicID, p)
	task := CompactTask{
		TopicID: topicID, Partition: p, Groups: groups,
		ObjectKey: fmt.Sprintf("%scompact-%d-%s-%d-%d", m.cfg.ObjectPrefix, now.UnixMilli(), topicID, p, groups[0][0].FirstOffset),
	}
	repl, err := m.exec.Execute(ctx, task, m.step)
	if err != nil {
		return err
	}
	if err := m.step(ctx, StepCompactPut); err != nil {
		return err
	}
	old := task.Inputs()
	if err := m.cfg.Meta.SwapSegments(ctx, l, old, repl); err != nil {
		if errors.Is(err, meta.ErrConflict) {
			m.metrics.compactions.WithLabelValues("conflict").Inc()
			m.log.Info("compaction lost a race; its object is garbage", "object", task.ObjectKey, "err", err)
			return nil
		}
		return err
	}
	var bytes int64
	for _, e := range repl {
		bytes += e.Len
	}
	st.Tasks++
	st.EntriesIn += len(old)
	st.EntriesOut += len(repl)
	st.Bytes += bytes
	m.metrics.compactions.WithLabelValues("ok").Inc()
	m.metrics.compactedEntries.Add(float64(len(old)))
	m.metrics.compactedBytes.Add(float64(bytes))
	m.log.Debug("compacted", "topic_id", topicID, "partition", p, "object", task.ObjectKey,
		"first", old[0].FirstOffset, "last", old[len(old)-1].LastOffset, "entries_in", len(old), "entries_out", len(repl))
	return m.step(ctx, StepCompactSwap)
}

// plan picks the entries of one task: the first run of consecutive small
// entries (chunk shorter than half CompactEntryBytes) committed before
// CompactMinAge, cut into groups of up to CompactEntryBytes, as many as fit
// in CompactObjectBytes and one transaction. A group is kept when it has
// at least two entries and reaches half an entry's size or
// CompactMinInputs entries; the kept groups are consecutive.
func (m *Manager) plan(l meta.Layout, now time.Time) [][]meta.SegmentEntry {
	small := m.cfg.CompactEntryBytes / 2
	cutoff := now.Add(-m.cfg.CompactMinAge).UnixMilli()
	const maxGroups = maxSwapEntries
	var groups [][]meta.SegmentEntry
	var cur []meta.SegmentEntry
	var curBytes, total int64
	// closeGroup keeps or drops cur; it reports false when a dropped group
	// ends the run of kept ones.
	closeGroup := func() bool {
		keep := len(cur) >= 2 && (curBytes >= small || len(cur) >= m.cfg.CompactMinInputs)
		if keep {
			groups = append(groups, cur)
			total += curBytes
		}
		gap := !keep && len(cur) > 0 && len(groups) > 0
		cur, curBytes = nil, 0
		return !gap
	}
	for _, e := range l.Entries {
		if e.FirstOffset < l.LogStart {
			continue
		}
		if e.CreatedMs > cutoff || len(groups) >= maxGroups {
			break
		}
		if e.Len >= small {
			if !closeGroup() || len(groups) > 0 {
				break
			}
			continue
		}
		if curBytes+e.Len > m.cfg.CompactEntryBytes {
			if !closeGroup() {
				break
			}
		}
		if total+curBytes+e.Len > m.cfg.CompactObjectBytes {
			break
		}
		cur = append(cur, e)
		curBytes += e.Len
	}
	if len(groups) < maxGroups {
		closeGroup()
	}
	return groups
}

// maxSwapEntries bounds the replacement entries of one swap, within
// etcd's default --max-txn-ops of 128.
const maxSwapEntries = 60

// limiter paces reads to a byte rate.
type limiter struct {
	rate int64 // bytes per second; <= 0 is no limit
	mu   sync.Mutex
	next time.Time // guarded by mu: when the next read may start
}

func newLimiter(rate int64) *limiter { return &limiter{rate: rate} }

// wait blocks until n more bytes may be read.
func (l *limiter) wait(ctx context.Context, n int64) error {
	if l.rate <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	l.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}
