package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/pkg/apierr"
)

// This file holds the metadata operations of the storage lifecycle
// (pkg/lifecycle): retention, compaction and garbage collection.
//
// Every change the lifecycle makes to a partition's entries is fenced on the
// partition's log start key, <root>/logstart/<topicID>/<partition>: a
// Layout records the key's ModRevision, and TruncateSegments and
// SwapSegments compare it and write the key again in the same transaction.
// So of two lifecycle writers that read the same layout (two coordinators
// that both believe they lead, for the instant the election allows) only
// the first applies; the second gets ErrConflict and reads again. Brokers
// never touch the key, so commits and lifecycle changes never contend.

// Layout is a consistent snapshot of one partition's segment entries and
// the fence that lifecycle changes compare against.
type Layout struct {
	TopicID   string
	Partition int32
	// Entries are the partition's segment entries in offset order.
	Entries []SegmentEntry
	// LogStart is the first readable offset, NextOffset the high watermark.
	LogStart, NextOffset int64
	// Revision is the etcd revision the snapshot was read at.
	Revision int64
	// fence is the ModRevision of the log start key (0 if absent);
	// stateCreate the CreateRevision of the partition state key.
	fence, stateCreate int64
}

// Bytes returns the sum of the entries' chunk lengths.
func (l Layout) Bytes() int64 { return EntriesBytes(l.Entries) }

// ReadLayout reads a partition's state, log start and every segment entry
// in one transaction.
func (s *Store) ReadLayout(ctx context.Context, topicID string, partition int32) (Layout, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	sk, lk, pk := s.keys.partition(topicID, partition), s.keys.logStart(topicID, partition), s.keys.segments(topicID, partition)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(sk), clientv3.OpGet(lk), clientv3.OpGet(pk, clientv3.WithPrefix())).Commit()
	if err != nil {
		return Layout{}, fmt.Errorf("meta: read layout %s/%d: %w", topicID, partition, err)
	}
	l := Layout{TopicID: topicID, Partition: partition, Revision: resp.Header.Revision}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		var st PartitionState
		if err := decode(sk, kvs[0].Value, &st); err != nil {
			return Layout{}, err
		}
		l.NextOffset, l.stateCreate = st.NextOffset, kvs[0].CreateRevision
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		var ls LogStart
		if err := decode(lk, kvs[0].Value, &ls); err != nil {
			return Layout{}, err
		}
		l.LogStart, l.fence = ls.Offset, kvs[0].ModRevision
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		e, err := s.decodeSegment(topicID, partition, kv.Key, kv.Value)
		if err != nil {
			return Layout{}, err
		}
		l.Entries = append(l.Entries, e)
	}
	return l, nil
}

// fenceCmps are the compares every lifecycle change of l's partition makes:
// the log start key is as l saw it and the partition (its topic) still
// exists as it did.
func (s *Store) fenceCmps(l Layout) []clientv3.Cmp {
	lk, sk := s.keys.logStart(l.TopicID, l.Partition), s.keys.partition(l.TopicID, l.Partition)
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.ModRevision(lk), "=", l.fence),
		clientv3.Compare(clientv3.CreateRevision(sk), "=", l.stateCreate),
	}
}

// TruncateSegments deletes every entry of l below newStart and moves the log
// start to newStart, in one transaction. newStart must be the first offset
// of one of l's entries or one past its last entry, and not below l's log
// start. It fails with ErrConflict if the partition's entries or log start
// changed by another lifecycle operation since l was read (read again and
// retry), or if the topic was deleted.
func (s *Store) TruncateSegments(ctx context.Context, l Layout, newStart int64) error {
	if newStart <= l.LogStart {
		return nil
	}
	ok := len(l.Entries) > 0 && newStart == l.Entries[len(l.Entries)-1].LastOffset+1
	for _, e := range l.Entries {
		ok = ok || e.FirstOffset == newStart
	}
	if !ok || newStart > l.NextOffset {
		return fmt.Errorf("%w: log start %d of %s/%d is not an entry boundary", ErrInvalidEntry, newStart, l.TopicID, l.Partition)
	}
	return s.cut(ctx, l, newStart, newStart)
}

// cut deletes l's entries that start below keep and the aborted
// transactions whose markers lie below logStart, and writes logStart as
// the log start, in one transaction fenced on l (fenceCmps) and on no
// entry below keep having been rewritten since l was read.
func (s *Store) cut(ctx context.Context, l Layout, keep, logStart int64) error {
	from := s.keys.segments(l.TopicID, l.Partition)
	to := s.keys.segment(l.TopicID, l.Partition, keep)
	cmps := append(s.fenceCmps(l),
		clientv3.Compare(clientv3.ModRevision(from), "<", l.Revision+1).WithRange(to))
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(
		clientv3.OpDelete(from, clientv3.WithRange(to)),
		clientv3.OpDelete(s.keys.aborted(l.TopicID, l.Partition), clientv3.WithRange(s.keys.abortedTxn(l.TopicID, l.Partition, logStart))),
		clientv3.OpPut(s.keys.logStart(l.TopicID, l.Partition), encode(LogStart{V: valueVersion, Offset: logStart})),
	).Commit()
	if err != nil {
		return fmt.Errorf("meta: move the log start of %s/%d to %d: %w", l.TopicID, l.Partition, logStart, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %s/%d changed since revision %d", ErrConflict, l.TopicID, l.Partition, l.Revision)
	}
	return nil
}

// SetLogStart moves a partition's log start forward to offset (-1: its
// next offset, the high watermark), as Kafka's DeleteRecords does, and
// returns the log start it has afterwards. The entries that lie wholly
// below the new log start are deleted in the same transaction; the new
// log start may lie inside an entry, whose records below it readers skip.
// It never moves the log start backwards: an offset at or below the
// current one changes nothing. An offset past the next offset, or below
// -1, fails with apierr.ErrOffsetOutOfRange; a partition changed by a
// lifecycle operation meanwhile with ErrConflict (call it again).
func (s *Store) SetLogStart(ctx context.Context, topicID string, partition int32, offset int64) (int64, error) {
	if offset < -1 {
		return 0, apierr.Errorf(apierr.ErrOffsetOutOfRange, "log start %d of %s/%d is negative", offset, topicID, partition)
	}
	l, err := s.ReadLayout(ctx, topicID, partition)
	if err != nil {
		return 0, err
	}
	if offset == -1 {
		offset = l.NextOffset
	}
	if offset <= l.LogStart {
		return l.LogStart, nil
	}
	if offset > l.NextOffset {
		return 0, apierr.Errorf(apierr.ErrOffsetOutOfRange, "log start %d of %s/%d is past the high watermark %d", offset, topicID, partition, l.NextOffset)
	}
	keep := offset // the first offset of the first entry kept
	for _, e := range l.Entries {
		if e.LastOffset >= offset {
			keep = min(keep, e.FirstOffset)
			break
		}
	}
	if err := s.cut(ctx, l, keep, offset); err != nil {
		return 0, err
	}
	return offset, nil
}

// SwapSegments replaces the run of entries old (consecutive entries of l)
// with repl, which must cover exactly the same offsets contiguously, in one
// transaction that checks that the old entries are still there unchanged
// (no key in their range was written since l was read, and no lifecycle
// operation changed the partition). It fails with ErrConflict otherwise;
// the objects repl points at are then garbage. It returns l as the swap
// left it: a snapshot at the swap's revision, against which a later swap
// of other entries of l can be made without reading the layout again.
func (s *Store) SwapSegments(ctx context.Context, l Layout, old, repl []SegmentEntry) (Layout, error) {
	if len(old) == 0 || len(repl) == 0 {
		return Layout{}, fmt.Errorf("%w: empty swap", ErrInvalidEntry)
	}
	if 2*len(repl)+1 > s.cfg.MaxTxnOps {
		return Layout{}, fmt.Errorf("%w: %d replacement entries exceed one transaction", ErrInvalidEntry, len(repl))
	}
	if err := contiguous(old); err != nil {
		return Layout{}, err
	}
	if err := contiguous(repl); err != nil {
		return Layout{}, err
	}
	first, last := old[0].FirstOffset, old[len(old)-1].LastOffset
	if repl[0].FirstOffset != first || repl[len(repl)-1].LastOffset != last {
		return Layout{}, fmt.Errorf("%w: replacement covers %d..%d, old entries %d..%d", ErrInvalidEntry,
			repl[0].FirstOffset, repl[len(repl)-1].LastOffset, first, last)
	}
	if first < l.LogStart {
		return Layout{}, fmt.Errorf("%w: swap at %d is below the log start %d", ErrInvalidEntry, first, l.LogStart)
	}
	if i := l.index(first); i < 0 || i+len(old) > len(l.Entries) || l.Entries[i+len(old)-1].LastOffset != last {
		return Layout{}, fmt.Errorf("%w: entries %d..%d are not a run of the layout's entries", ErrInvalidEntry, first, last)
	}
	for _, e := range repl {
		if e.TopicID != l.TopicID || e.Partition != l.Partition {
			return Layout{}, fmt.Errorf("%w: entry of %s/%d in a swap of %s/%d", ErrInvalidEntry, e.TopicID, e.Partition, l.TopicID, l.Partition)
		}
		if err := e.Validate(); err != nil {
			return Layout{}, err
		}
	}
	lk := s.keys.logStart(l.TopicID, l.Partition)
	from := s.keys.segment(l.TopicID, l.Partition, first)
	to := s.keys.segment(l.TopicID, l.Partition, last+1)
	cmps := append(s.fenceCmps(l),
		clientv3.Compare(clientv3.ModRevision(from), "<", l.Revision+1).WithRange(to))
	// Every old key still exists: its exact value is what l read.
	for _, e := range old {
		if len(cmps) == s.cfg.MaxTxnOps {
			break // the range compare above still covers the rest
		}
		e.V = valueVersion
		cmps = append(cmps, clientv3.Compare(clientv3.Value(s.keys.segment(e.TopicID, e.Partition, e.FirstOffset)), "=", encode(e)))
	}
	ops := []clientv3.Op{
		// Bump the fence, keeping the log start's value.
		clientv3.OpPut(lk, encode(LogStart{V: valueVersion, Offset: l.LogStart})),
	}
	for _, e := range repl {
		e.V = valueVersion
		k := s.keys.segment(e.TopicID, e.Partition, e.FirstOffset)
		// Put the new entry and delete the old keys after it up to the
		// next new entry (etcd refuses a put inside a deleted range).
		ops = append(ops, clientv3.OpPut(k, encode(e)),
			clientv3.OpDelete(k+"\x00", clientv3.WithRange(s.keys.segment(e.TopicID, e.Partition, e.LastOffset+1))))
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return Layout{}, fmt.Errorf("meta: swap %s/%d %d..%d: %w", l.TopicID, l.Partition, first, last, err)
	}
	if !resp.Succeeded {
		return Layout{}, fmt.Errorf("%w: entries %d..%d of %s/%d changed since revision %d", ErrConflict, first, last, l.TopicID, l.Partition, l.Revision)
	}
	return l.swapped(old, repl, resp.Header.Revision), nil
}

// index returns the index of l's entry starting at first, or -1.
func (l Layout) index(first int64) int {
	return slices.IndexFunc(l.Entries, func(e SegmentEntry) bool { return e.FirstOffset == first })
}

// swapped returns l with old replaced by repl, as a snapshot at rev, the
// revision of the swap that did it (and bumped the fence).
func (l Layout) swapped(old, repl []SegmentEntry, rev int64) Layout {
	i := l.index(old[0].FirstOffset)
	l.Entries, l.Revision, l.fence = slices.Concat(l.Entries[:i], repl, l.Entries[i+len(old):]), rev, rev
	return l
}

// contiguous checks that es are consecutive entries of one partition.
func contiguous(es []SegmentEntry) error {
	for i := 1; i < len(es); i++ {
		if es[i].FirstOffset != es[i-1].LastOffset+1 || es[i].TopicID != es[0].TopicID || es[i].Partition != es[0].Partition {
			return fmt.Errorf("%w: entries %d..%d and %d..%d are not consecutive", ErrInvalidEntry,
				es[i-1].FirstOffset, es[i-1].LastOffset, es[i].FirstOffset, es[i].LastOffset)
		}
	}
	return nil
}

// ReferencedObjects returns the key of every object some segment entry of
// any topic points at, and the revision it was read at. It reads all
// entries a page at a time at one revision, so the set is a consistent
// snapshot.
func (s *Store) ReferencedObjects(ctx context.Context) (map[string]struct{}, int64, error) {
	refs := map[string]struct{}{}
	rev, err := s.scanPrefix(ctx, s.keys.root+"/segments/", 2048, "list referenced objects", func(kv *mvccpb.KeyValue) error {
		var e struct {
			V      int    `json:"v"`
			Object string `json:"object"`
		}
		if err := json.Unmarshal(kv.Value, &e); err != nil || e.V != valueVersion {
			return fmt.Errorf("%w: segment entry %s", ErrUnsupportedValue, kv.Key)
		}
		refs[e.Object] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return refs, rev, nil
}

// scanPrefix calls each for every key under prefix, read page keys per
// request, all at the revision of the first request, which it returns:
// a snapshot of a prefix too large for one response. what names the scan
// in errors; an error from each ends it.
func (s *Store) scanPrefix(ctx context.Context, prefix string, page int64, what string, each func(*mvccpb.KeyValue) error) (int64, error) {
	end := clientv3.GetPrefixRangeEnd(prefix)
	var rev int64
	for start := prefix; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Get(rctx, start, opts...)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("meta: %s: %w", what, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := each(kv); err != nil {
				return 0, err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// GarbageMark records when garbage collection first found an object
// unreferenced.
type GarbageMark struct {
	V int `json:"v"`
	// MarkedMs is when the object was first seen unreferenced (Unix ms).
	MarkedMs int64 `json:"marked_ms"`
}

// MarkGarbage records objects as unreferenced since markedMs. The caller
// passes only objects without a mark (garbage collection has a single
// writer, the coordinator leader), so an existing mark's time is kept.
func (s *Store) MarkGarbage(ctx context.Context, objects []string, markedMs int64) error {
	val := encode(GarbageMark{V: valueVersion, MarkedMs: markedMs})
	for len(objects) > 0 {
		n := min(len(objects), s.cfg.MaxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, o := range objects[:n] {
			ops = append(ops, clientv3.OpPut(s.keys.gcMark(o), val))
		}
		tctx, cancel := s.ctx(ctx)
		_, err := s.cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("meta: mark garbage: %w", err)
		}
		objects = objects[n:]
	}
	return nil
}

// GarbageMarks returns every garbage mark by object key.
func (s *Store) GarbageMarks(ctx context.Context) (map[string]GarbageMark, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	prefix := s.keys.gcMarks()
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("meta: list garbage marks: %w", err)
	}
	out := make(map[string]GarbageMark, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var m GarbageMark
		if err := decode(string(kv.Key), kv.Value, &m); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(string(kv.Key), prefix)] = m
	}
	return out, nil
}

// UnmarkGarbage removes the marks of objects (deleted, or referenced
// again).
func (s *Store) UnmarkGarbage(ctx context.Context, objects []string) error {
	for len(objects) > 0 {
		n := min(len(objects), s.cfg.MaxTxnOps)
		ops := make([]clientv3.Op, 0, n)
		for _, o := range objects[:n] {
			ops = append(ops, clientv3.OpDelete(s.keys.gcMark(o)))
		}
		tctx, cancel := s.ctx(ctx)
		_, err := s.cli.Txn(tctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("meta: unmark garbage: %w", err)
		}
		objects = objects[n:]
	}
	return nil
}

// AlterTopic changes a topic's configs and partition count with change,
// which gets a copy of the stored topic. The ID, name and creation time
// cannot change, and the partition count can only grow: the new
// partitions start unassigned and empty, as a new topic's do. It fails
// with ErrConflict if the topic changed meanwhile, ErrTopicNotFound if it
// does not exist, and ErrInvalidTopic if the result does not validate or
// has fewer partitions.
func (s *Store) AlterTopic(ctx context.Context, name string, change func(*Topic) error) (Topic, error) {
	cur, err := s.GetTopic(ctx, name)
	if err != nil {
		return Topic{}, err
	}
	t := cur
	if err := change(&t); err != nil {
		return Topic{}, err
	}
	t.V, t.ID, t.Name, t.CreatedAt = valueVersion, cur.ID, cur.Name, cur.CreatedAt
	if err := t.Validate(); err != nil {
		return Topic{}, err
	}
	if t.Partitions < cur.Partitions {
		return Topic{}, fmt.Errorf("%w: topic %s has %d partitions; partitions can only be added", ErrInvalidTopic, name, cur.Partitions)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.topic(name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", encode(cur))).
		Then(clientv3.OpPut(key, encode(t))).
		Commit()
	if err != nil {
		return Topic{}, fmt.Errorf("meta: alter topic %s: %w", name, err)
	}
	if !resp.Succeeded {
		return Topic{}, fmt.Errorf("%w: topic %s changed while altering", ErrConflict, name)
	}
	return t, nil
}

// gcMarks is the prefix of garbage marks: <root>/gc/<object key>.
func (k keys) gcMarks() string          { return k.root + "/gc/" }
func (k keys) gcMark(obj string) string { return k.gcMarks() + obj }
