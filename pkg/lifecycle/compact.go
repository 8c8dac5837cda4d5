package lifecycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// CompactTask is one unit of compaction work: merge the chunks of each
// part's Groups — consecutive runs of a partition's entries — into one new
// segment object with one chunk per part, one new entry per group.
//
// A task takes several partitions at once because brokers write them side
// by side: a flush object holds a chunk of every partition it flushed, in
// (topic, partition) order. One task over consecutive partitions reads each
// flush object's run of their chunks in one ranged GET, where a task per
// partition made a GET per chunk; a GET costs about as much CPU as
// reading tens of KiB, and the chunks of a busy cluster are that small.
type CompactTask struct {
	// Parts are the partitions merged, in (topic, partition) order.
	Parts []PartTask
	// ObjectKey is the key the new object is written under.
	ObjectKey string
}

// PartTask is one partition's share of a CompactTask.
type PartTask struct {
	TopicID   string
	Partition int32
	// Groups are consecutive runs of consecutive entries; each becomes one
	// entry of the new object.
	Groups [][]meta.SegmentEntry
}

// Inputs returns the part's entries in offset order.
func (p PartTask) Inputs() []meta.SegmentEntry {
	var out []meta.SegmentEntry
	for _, g := range p.Groups {
		out = append(out, g...)
	}
	return out
}

// Executor runs compaction tasks: it reads the input chunks, writes the
// merged object and returns, for each part in order, the entries that
// describe its chunk, without touching metadata (the Manager swaps the
// entries). The LocalExecutor runs in the Manager's process; a
// broker-side executor reached over RPC can take its place without
// changing the scheduling.
type Executor interface {
	Execute(ctx context.Context, task CompactTask, step func(context.Context, string) error) ([][]meta.SegmentEntry, error)
}

// LocalExecutor runs one task at a time in this process. It reads at most
// BytesPerSec bytes per second, and sends its objects no faster.
type LocalExecutor struct {
	store       objstore.Store
	read, write *limiter
	mu          sync.Mutex // held for the duration of a task: one at a time
}

// NewLocalExecutor returns an executor on store that reads at most
// bytesPerSec bytes per second and writes at most as many (-1: no limit).
// A task's object, up to CompactObjectBytes, sent at once would reach the
// store ahead of the brokers' small PUTs that acknowledge produces, and
// hold them up while the store takes it.
func NewLocalExecutor(store objstore.Store, bytesPerSec int64) *LocalExecutor {
	return &LocalExecutor{store: store, read: newLimiter(bytesPerSec), write: newLimiter(bytesPerSec)}
}

// setRate sets the bytes read per second, and apart from them the bytes
// written per second, from the next read or write on (-1: no limit).
func (x *LocalExecutor) setRate(bytesPerSec int64) {
	x.read.setRate(bytesPerSec)
	x.write.setRate(bytesPerSec)
}

// Execute reads every input chunk, checks that it holds exactly the
// entry's offsets, writes the merged object and returns its entries.
func (x *LocalExecutor) Execute(ctx context.Context, task CompactTask, step func(context.Context, string) error) ([][]meta.SegmentEntry, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	chunks, err := x.readInputs(ctx, task)
	if err != nil {
		return nil, err
	}
	w := segment.NewWriter(segment.WriterOptions{})
	for _, p := range task.Parts {
		for _, e := range p.Inputs() {
			chunk := chunks[inputKey(e)]
			if err := checkChunk(e, chunk); err != nil {
				return nil, err
			}
			// checkChunk checked the CRCs, and the chunk is this task's
			// own memory: the writer keeps it instead of a copy.
			if err := w.AddVerified(p.TopicID, p.Partition, chunk); err != nil {
				return nil, fmt.Errorf("lifecycle: merge %s/%d@%d: %w", e.TopicID, e.Partition, e.FirstOffset, err)
			}
		}
	}
	obj, footer, err := w.Finish()
	if err != nil {
		return nil, fmt.Errorf("lifecycle: build compacted object: %w", err)
	}
	if err := step(ctx, StepCompactRead); err != nil {
		return nil, err
	}
	if err := x.store.Put(objstore.WithWritePace(ctx, x.write.pace()), task.ObjectKey, obj); err != nil {
		return nil, fmt.Errorf("lifecycle: put %s: %w", task.ObjectKey, err)
	}
	out := make([][]meta.SegmentEntry, len(task.Parts))
	for i, p := range task.Parts {
		if out[i], err = replacements(p, footer, task.ObjectKey, int64(len(obj))); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// replacements returns the entries of p's chunk in the new object: the
// chunk is the inputs' bytes back to back, so each group is a byte range
// of it.
func replacements(p PartTask, footer *segment.Footer, key string, size int64) ([]meta.SegmentEntry, error) {
	inputs := p.Inputs()
	c, ok := footer.Find(p.TopicID, p.Partition)
	if !ok || c.FirstOffset != inputs[0].FirstOffset || c.LastOffset != inputs[len(inputs)-1].LastOffset {
		return nil, fmt.Errorf("lifecycle: compacted chunk of %s/%d does not cover %d..%d", p.TopicID, p.Partition, inputs[0].FirstOffset, inputs[len(inputs)-1].LastOffset)
	}
	out := make([]meta.SegmentEntry, 0, len(p.Groups))
	pos := c.Position
	for _, g := range p.Groups {
		e := meta.SegmentEntry{
			TopicID: p.TopicID, Partition: p.Partition,
			ObjectKey: key, ObjectSize: size,
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
		return nil, fmt.Errorf("lifecycle: compacted chunk of %s/%d is %d bytes, inputs %d", p.TopicID, p.Partition, c.Length, pos-c.Position)
	}
	return out, nil
}

// maxReadGap is the most bytes between two wanted chunks of one object
// that a ranged GET reads through rather than splitting into two GETs:
// about what a GET's own cost amounts to.
const maxReadGap = 64 << 10

// entryKey names one input entry.
type entryKey struct {
	topicID   string
	partition int32
	first     int64
}

func inputKey(e meta.SegmentEntry) entryKey { return entryKey{e.TopicID, e.Partition, e.FirstOffset} }

// compactReads is how many ranged GETs of one task are in flight. A task
// reads a run of chunks from every flush object of its time span, and
// with many partitions each getting a record per flush those are many
// small GETs whose time is mostly the store's latency (6,831 in a minute
// at 1,000 partitions and 10,000 records/s). The read throttle still
// bounds the bytes per second.
const compactReads = 8

// readRunSpec is one ranged GET of readInputs: bytes es[0].Pos..end of
// object key.
type readRunSpec struct {
	key string
	es  []meta.SegmentEntry
	end int64
}

// readInputs reads the chunk of every input of task: per object, one
// ranged GET per run of its wanted chunks no more than maxReadGap apart,
// compactReads of them at a time.
func (x *LocalExecutor) readInputs(ctx context.Context, task CompactTask) (map[entryKey][]byte, error) {
	byObject := map[string][]meta.SegmentEntry{}
	var keys []string
	for _, p := range task.Parts {
		for _, e := range p.Inputs() {
			if byObject[e.ObjectKey] == nil {
				keys = append(keys, e.ObjectKey)
			}
			byObject[e.ObjectKey] = append(byObject[e.ObjectKey], e)
		}
	}
	var runs []readRunSpec
	for _, key := range keys {
		es := byObject[key]
		slices.SortFunc(es, func(a, b meta.SegmentEntry) int { return cmp.Compare(a.Pos, b.Pos) })
		for len(es) > 0 {
			n, end := 1, es[0].End()
			for n < len(es) && es[n].Pos-end <= maxReadGap {
				end = max(end, es[n].End())
				n++
			}
			runs = append(runs, readRunSpec{key: key, es: es[:n], end: end})
			es = es[n:]
		}
	}
	read := make([][]byte, len(runs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(compactReads)
	for i, r := range runs {
		g.Go(func() (err error) {
			read[i], err = x.readRun(gctx, r)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	chunks := make(map[entryKey][]byte)
	for i, r := range runs {
		if err := fileRun(r, read[i], chunks); err != nil {
			return nil, err
		}
	}
	return chunks, nil
}

// readRun reads r's bytes in one GET.
func (x *LocalExecutor) readRun(ctx context.Context, r readRunSpec) ([]byte, error) {
	start := r.es[0].Pos
	if err := x.read.wait(ctx, r.end-start); err != nil {
		return nil, err
	}
	b, err := x.store.Get(ctx, r.key, start, r.end-start)
	if err != nil {
		e := r.es[0]
		return nil, fmt.Errorf("lifecycle: read %s/%d@%d from %s: %w", e.TopicID, e.Partition, e.FirstOffset, r.key, err)
	}
	return b, nil
}

// fileRun files each entry's chunk of r's bytes b in chunks.
func fileRun(r readRunSpec, b []byte, chunks map[entryKey][]byte) error {
	start := r.es[0].Pos
	for _, e := range r.es {
		lo, hi := e.Pos-start, e.End()-start
		if hi > int64(len(b)) {
			return fmt.Errorf("lifecycle: chunk of %s/%d@%d in %s: read %d bytes, want %d", e.TopicID, e.Partition, e.FirstOffset, r.key, max(0, int64(len(b))-lo), e.Len)
		}
		chunks[inputKey(e)] = b[lo:hi:hi]
	}
	return nil
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
	// Tasks is the number of objects written and swapped in (for at
	// least one of their partitions).
	Tasks int
	// Swaps is the number of swaps made: each partition's entries in each
	// object, one transaction each.
	Swaps int
	// EntriesIn and EntriesOut are the entries replaced and their
	// replacements; Bytes the chunk bytes rewritten.
	EntriesIn, EntriesOut int
	Bytes                 int64
	// Settled is the number of partitions not read: nothing had changed
	// since a pass found nothing to compact.
	Settled int
	// Behind is the number of partitions with more small entries ready
	// than one pass merges of a partition (CompactObjectBytes or
	// maxSwapEntries groups): the rest waits for the next pass.
	Behind int
}

// maxTaskParts bounds the partitions of one task. A reader of the new
// object loads its footer, which grows with the parts (a chunk record and
// its sparse index each), and proxies keep hundreds of footers; 64 parts
// keep it to a few KiB while a flush object's run of them is still read
// in one GET.
const maxTaskParts = 64

// pending is one partition's plan while a pass compacts it: the groups not
// yet merged, and the layout its next swap compares against.
type pending struct {
	groups [][]meta.SegmentEntry
	layout meta.Layout
	// more: the plan stopped at a pass's limit with entries ready after it.
	more bool
}

// Compact plans, partition by partition, which small entries to merge, and
// compacts the plans of up to maxTaskParts consecutive partitions of a
// topic together (compactBatch). Each partition swaps its entries in
// transactions of its own; a swap that loses a race leaves that
// partition's chunk of the object unreferenced, and the object is garbage
// once none of its chunks is referenced.
func (m *Manager) Compact(ctx context.Context) (CompactStats, error) {
	defer m.metrics.observePass("compact", time.Now())
	var st CompactStats
	topics, err := m.topics(ctx)
	if err != nil {
		return st, err
	}
	m.settled.refresh(ctx, m.cfg.Meta, m.cfg.View)
	now := m.cfg.Now()
	var (
		errs  []error
		batch []*pending
	)
	for _, t := range topics {
		// A task holds one topic's partitions: an object lives while any
		// of its chunks is referenced, so a topic's deletion or retention
		// must not wait on another topic's.
		errs = append(errs, m.compactBatch(ctx, batch, &st))
		batch = nil
		for p := range t.Partitions {
			id := meta.PartitionID{TopicID: t.ID, Partition: p}
			if m.settled.skipCompact(id, now, m.cfg.CompactMinInputs) {
				st.Settled++
				continue
			}
			pd, err := m.planPartition(ctx, id)
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			if err != nil {
				m.metrics.compactions.WithLabelValues("error").Inc()
				errs = append(errs, err)
			}
			if pd == nil {
				continue
			}
			if pd.more {
				st.Behind++
			}
			if batch = append(batch, pd); len(batch) == maxTaskParts {
				errs = append(errs, m.compactBatch(ctx, batch, &st))
				batch = nil
			}
		}
	}
	errs = append(errs, m.compactBatch(ctx, batch, &st))
	if ctx.Err() != nil {
		return st, ctx.Err()
	}
	m.catchUp(st)
	return st, errors.Join(errs...)
}

// planPartition reads id's layout and plans its compaction: nil when
// nothing is worth merging, which is remembered (compactSettled).
func (m *Manager) planPartition(ctx context.Context, id meta.PartitionID) (*pending, error) {
	l, err := m.cfg.Meta.ReadLayout(ctx, id.TopicID, id.Partition)
	if err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	groups, more := m.plan(l, now)
	if len(groups) == 0 {
		m.compactSettled(l, now)
		return nil, nil
	}
	m.settled.forgetCompact(l)
	return &pending{groups: groups, layout: l, more: more}, nil
}

// compactBatch compacts the plans of consecutive partitions in tasks of up
// to CompactObjectBytes, each taking the partitions' groups in turn
// (nextTask), until every group is merged or a task fails.
func (m *Manager) compactBatch(ctx context.Context, batch []*pending, st *CompactStats) error {
	for {
		parts, owners := m.nextTask(batch)
		if len(parts) == 0 {
			return nil
		}
		if err := m.runTask(ctx, parts, owners, st); err != nil {
			return err
		}
	}
}

// nextTask takes the next task's parts from batch: one group of each
// partition in turn, while they fit in CompactObjectBytes, so that the
// task's partitions cover about the same span of time, and so of flush
// objects. Each part is a prefix of its partition's groups left, which
// nextTask removes.
func (m *Manager) nextTask(batch []*pending) (parts []PartTask, owners []*pending) {
	taken := make([]int, len(batch))
	var total int64
	for progress := true; progress; {
		progress = false
		for i, p := range batch {
			if taken[i] == len(p.groups) {
				continue
			}
			n := meta.EntriesBytes(p.groups[taken[i]])
			if total > 0 && total+n > m.cfg.CompactObjectBytes {
				continue
			}
			taken[i]++
			total += n
			progress = true
		}
	}
	for i, p := range batch {
		if taken[i] == 0 {
			continue
		}
		parts = append(parts, PartTask{TopicID: p.layout.TopicID, Partition: p.layout.Partition, Groups: p.groups[:taken[i]]})
		owners = append(owners, p)
		p.groups = p.groups[taken[i]:]
	}
	return parts, owners
}

// runTask has the Executor write one object for parts, then swaps each
// part in against its owner's layout, which the swap advances. A part
// whose swap loses a race drops the rest of its partition's plan: the
// next pass plans it again.
func (m *Manager) runTask(ctx context.Context, parts []PartTask, owners []*pending, st *CompactStats) error {
	first := parts[0]
	task := CompactTask{
		Parts: parts,
		ObjectKey: fmt.Sprintf("%scompact-%d-%s-%d-%d", m.cfg.ObjectPrefix, m.cfg.Now().UnixMilli(),
			first.TopicID, first.Partition, first.Groups[0][0].FirstOffset),
	}
	repl, err := m.exec.Execute(ctx, task, m.step)
	if err == nil {
		err = m.step(ctx, StepCompactPut)
	}
	if err != nil {
		m.metrics.compactions.WithLabelValues("error").Add(float64(len(parts)))
		return err
	}
	swapsBefore := st.Swaps
	for i, p := range parts {
		l, err := m.swapPart(ctx, owners[i].layout, p, repl[i], task.ObjectKey, st)
		switch {
		case errors.Is(err, meta.ErrConflict):
			owners[i].groups = nil
		case err != nil:
			return err
		default:
			if st.Swaps == swapsBefore+1 { // the object's first swap
				st.Tasks++
			}
			owners[i].layout = l
			if err := m.step(ctx, StepCompactSwap); err != nil {
				return err
			}
		}
	}
	return nil
}

// swapPart replaces p's inputs by repl, its entries in the object key, and
// returns the layout after the swap. A lost race (meta.ErrConflict) leaves
// p's chunk of the object unreferenced.
func (m *Manager) swapPart(ctx context.Context, l meta.Layout, p PartTask, repl []meta.SegmentEntry, key string, st *CompactStats) (meta.Layout, error) {
	old := p.Inputs()
	after, err := m.cfg.Meta.SwapSegments(ctx, l, old, repl)
	if errors.Is(err, meta.ErrConflict) {
		m.metrics.compactions.WithLabelValues("conflict").Inc()
		m.log.Info("compaction lost a race; the partition's chunk of the object is garbage", "object", key,
			"topic_id", p.TopicID, "partition", p.Partition, "err", err)
		return after, err
	}
	if err != nil {
		m.metrics.compactions.WithLabelValues("error").Inc()
		return after, err
	}
	bytes := meta.EntriesBytes(repl)
	st.Swaps++
	st.EntriesIn += len(old)
	st.EntriesOut += len(repl)
	st.Bytes += bytes
	m.metrics.compactions.WithLabelValues("ok").Inc()
	m.metrics.compactedEntries.Add(float64(len(old)))
	m.metrics.compactedBytes.Add(float64(bytes))
	m.log.Debug("compacted", "topic_id", p.TopicID, "partition", p.Partition, "object", key,
		"first", old[0].FirstOffset, "last", old[len(old)-1].LastOffset, "entries_in", len(old), "entries_out", len(repl))
	return after, nil
}

// plan picks the entries of one partition's part of a task: the first run
// of consecutive small entries (chunk shorter than half CompactEntryBytes)
// committed before CompactMinAge, cut into groups of up to
// CompactEntryBytes, as many as fit in CompactObjectBytes and one
// transaction. A group is kept when it has at least two entries and
// reaches half an entry's size or CompactMinInputs entries; the kept
// groups are consecutive. more reports that the plan stopped at one of
// those limits with an entry old enough to merge after it.
func (m *Manager) plan(l meta.Layout, now time.Time) (_ [][]meta.SegmentEntry, more bool) {
	small := m.cfg.CompactEntryBytes / 2
	cutoff := now.Add(-m.cfg.CompactMinAge).UnixMilli()
	const maxGroups = maxSwapEntries
	var groups [][]meta.SegmentEntry
	var cur []meta.SegmentEntry
	var curBytes, total int64
	// closeGroup keeps or drops cur; it reports false when a dropped group
	// ends the run of kept ones.
	closeGroup := func() bool {
		if len(groups) == 0 {
			cur, curBytes = tiered(cur, curBytes)
		}
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
		if e.CreatedMs > cutoff {
			break
		}
		if len(groups) >= maxGroups {
			more = true
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
			more = true
			break
		}
		cur = append(cur, e)
		curBytes += e.Len
	}
	if len(groups) < maxGroups {
		closeGroup()
	}
	return groups, more
}

// tiered drops from the front of a partition's first group (of bytes
// bytes) every entry larger than the rest of the group after it: an entry
// an earlier pass merged, which the group would otherwise rewrite with a
// few new entries on every pass until it reached half an entry. A slow
// partition's first entry grew by about CompactMinInputs flushes per
// rewrite, so each of its bytes was rewritten up to (CompactEntryBytes/2)
// / (that growth) times; with the rule an entry is merged again only with
// at least its own size of newer data, so at most log2 times. A partition
// keeps up to about log2 of that many entries below half an entry's size.
func tiered(g []meta.SegmentEntry, bytes int64) ([]meta.SegmentEntry, int64) {
	for len(g) >= 2 && g[0].Len > bytes-g[0].Len {
		bytes -= g[0].Len
		g = g[1:]
	}
	return g, bytes
}

// maxSwapEntries bounds the replacement entries of one swap, within
// etcd's default --max-txn-ops of 128.
const maxSwapEntries = 60
