package meta

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// PartitionState is who owns a partition and how far its log reaches.
type PartitionState struct {
	V int `json:"v"`
	// Broker is the owning broker's ID; empty while unassigned.
	Broker string `json:"broker"`
	// Epoch increases by one with every change of owner. Epoch 0 means the
	// partition was never assigned.
	Epoch int64 `json:"epoch"`
	// NextOffset is the offset the next record will get: the high
	// watermark. Every offset below it is committed.
	NextOffset int64 `json:"next_offset"`
	// Producers is the idempotent-producer state of the partition: for
	// each of the most recent producers (at most MaxProducersPerPartition),
	// the sequence numbers and offsets of its last committed produce, so
	// that the owner — and any later owner — recognises a retried batch and
	// answers it with its original offsets instead of writing it again.
	// Commits write it in the fencing transaction; assignments carry it
	// over unchanged. Omitted while empty, so partitions without
	// idempotent producers keep their old encoding.
	Producers map[int64]ProducerState `json:"producers,omitempty"`
	// LastAbort is the offset of the latest abort marker that closed an
	// open transaction in the partition; 0 if none. A read_committed
	// fetch from above it needs no aborted-transaction lookup. Omitted
	// while 0, like Producers.
	LastAbort int64 `json:"last_abort,omitempty"`

	// TopicID and Partition name the partition (from the key).
	TopicID   string `json:"-"`
	Partition int32  `json:"-"`
	// LogStart is the first offset still readable (from its own key, moved
	// by retention).
	LogStart int64 `json:"-"`
	// Revision is the etcd ModRevision of the state key; 0 if absent.
	Revision int64 `json:"-"`
	// Unstable is how far a View raised NextOffset past the last state
	// it read in full (View.Advance, from a produce's acknowledgement):
	// the producer states of the records above NextOffset-Unstable are
	// not known yet, so none of them counts as stable. 0 for a state read
	// from etcd.
	Unstable int64 `json:"-"`
}

// MaxProducersPerPartition bounds PartitionState.Producers: a commit that
// would leave more entries drops those whose last offset is lowest (the
// producers that wrote to the partition least recently), but never one
// with an open transaction.
const MaxProducersPerPartition = 32

// ProducerState is what a partition remembers of one idempotent producer:
// its epoch and its last committed produce request (one or more batches
// with consecutive sequence numbers and consecutive offsets).
type ProducerState struct {
	// Epoch is the producer's epoch.
	Epoch int16 `json:"epoch"`
	// FirstSeq and LastSeq are the sequence numbers of the first and last
	// record of the producer's last committed request.
	FirstSeq int32 `json:"first_seq"`
	LastSeq  int32 `json:"last_seq"`
	// FirstOffset and LastOffset are the offsets those records got.
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
	// Txn is the producer's open transaction in the partition: it wrote
	// transactional batches here and no end marker yet. Nil otherwise
	// (omitted, so states without transactions keep their encoding).
	Txn *OpenTxn `json:"txn,omitempty"`
}

// OpenTxn is a producer's transaction that has batches in the partition and
// no marker yet.
type OpenTxn struct {
	// First is the offset of the transaction's first batch in the partition.
	First int64 `json:"first"`
}

// LastStable is the partition's last stable offset: the lowest First of
// any open transaction, or when none is open the high watermark of the
// state as read in full (NextOffset less Unstable). read_committed
// readers are served below it.
func (p PartitionState) LastStable() int64 {
	lso := p.NextOffset - p.Unstable
	for _, ps := range p.Producers {
		if ps.Txn != nil {
			lso = min(lso, ps.Txn.First)
		}
	}
	return lso
}

// canonical is the exact value the fencing commit compares against. Go's
// encoding/json writes struct fields in declaration order and map keys
// sorted, so equal states always encode to equal bytes.
func (p PartitionState) canonical() string {
	return encode(PartitionState{V: valueVersion, Broker: p.Broker, Epoch: p.Epoch, NextOffset: p.NextOffset, Producers: p.Producers, LastAbort: p.LastAbort})
}

// BoundProducers drops the least recently written producers (lowest
// LastOffset) from m until it holds at most MaxProducersPerPartition, in
// place, and returns it. A producer with an open transaction is never
// dropped (its transaction holds the last stable offset until a marker
// closes it), so m may stay above the bound by such producers.
func BoundProducers(m map[int64]ProducerState) map[int64]ProducerState {
	for len(m) > MaxProducersPerPartition {
		var oldest int64
		first := true
		for id, ps := range m {
			if ps.Txn != nil {
				continue
			}
			if first || ps.LastOffset < m[oldest].LastOffset || (ps.LastOffset == m[oldest].LastOffset && id < oldest) {
				oldest, first = id, false
			}
		}
		if first {
			break // every one left has an open transaction
		}
		delete(m, oldest)
	}
	return m
}

// GetPartition returns one partition's state. A partition that was never
// assigned has epoch 0, no broker and next offset 0.
func (s *Store) GetPartition(ctx context.Context, topicID string, partition int32) (PartitionState, error) {
	sts, err := s.GetPartitions(ctx, []PartitionID{{TopicID: topicID, Partition: partition}})
	if err != nil {
		return PartitionState{}, err
	}
	return sts[0], nil
}

// txnConcurrency bounds the transactions one call that spans several has
// in flight. The transactions of one GetPartitions or CommitSegments call
// touch different partitions and need no order, and etcd batches
// concurrent proposals into one raft round, so the call waits about one
// round trip instead of one per transaction: reading 10,000 partitions
// one transaction after the other took a producer's DescribeTopic most of
// a second, and a flush over 1,024 partitions waited for 16 commit
// transactions in turn. Four keeps a wide call from flooding etcd with
// requests that would only queue there.
const txnConcurrency = 4

// GetPartitions reads the state of several partitions as GetPartition
// does, in as few transactions as MaxTxnOps allows (two reads each), up to
// txnConcurrency at a time, and returns them in the order of ids. A broker
// handing off its partitions, a topic's description and a Kafka
// ListOffsets read them all at once rather than one round trip each.
func (s *Store) GetPartitions(ctx context.Context, ids []PartitionID) ([]PartitionState, error) {
	out := make([]PartitionState, len(ids))
	per := max(s.cfg.MaxTxnOps/2, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(txnConcurrency)
	for start := 0; start < len(ids); start += per {
		group := ids[start:min(start+per, len(ids))]
		g.Go(func() error { return s.getGroup(gctx, group, out[start:]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// getGroup reads the partitions of group in one transaction into out.
func (s *Store) getGroup(ctx context.Context, group []PartitionID, out []PartitionState) error {
	ops := make([]clientv3.Op, 0, 2*len(group))
	for _, id := range group {
		ops = append(ops, clientv3.OpGet(s.keys.partition(id.TopicID, id.Partition)), clientv3.OpGet(s.keys.logStart(id.TopicID, id.Partition)))
	}
	tctx, cancel := s.ctx(ctx)
	resp, err := s.cli.Txn(tctx).Then(ops...).Commit()
	cancel()
	if err != nil {
		return fmt.Errorf("meta: get partition %s/%d: %w", group[0].TopicID, group[0].Partition, err)
	}
	for j, id := range group {
		st, err := s.partitionFrom(id, resp.Responses[2*j].GetResponseRange().Kvs, resp.Responses[2*j+1].GetResponseRange().Kvs)
		if err != nil {
			return err
		}
		out[j] = st
	}
	return nil
}

// partitionFrom decodes a partition's state and log start from the
// results of reading their keys (empty when absent).
func (s *Store) partitionFrom(id PartitionID, state, logStart []*mvccpb.KeyValue) (PartitionState, error) {
	st := PartitionState{TopicID: id.TopicID, Partition: id.Partition}
	if len(state) > 0 {
		if err := decode(string(state[0].Key), state[0].Value, &st); err != nil {
			return PartitionState{}, err
		}
		st.Revision = state[0].ModRevision
	}
	if len(logStart) > 0 {
		var ls LogStart
		if err := decode(string(logStart[0].Key), logStart[0].Value, &ls); err != nil {
			return PartitionState{}, err
		}
		st.LogStart = ls.Offset
	}
	return st, nil
}

// ListPartitions returns the stored state of every assigned partition of
// every topic and the revision it was read at, for building a routing
// table that WatchPartitions then keeps current. LogStart is not filled in.
func (s *Store) ListPartitions(ctx context.Context) ([]PartitionState, int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.partitions(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list partitions: %w", err)
	}
	out := make([]PartitionState, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		st, err := s.decodePartition(kv.Key, kv.Value, kv.ModRevision)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, st)
	}
	return out, resp.Header.Revision, nil
}

func (s *Store) decodePartition(key, value []byte, rev int64) (PartitionState, error) {
	f := parseTail(string(key), s.keys.partitions())
	if len(f) != 2 {
		return PartitionState{}, fmt.Errorf("meta: malformed partition key %q", key)
	}
	p, err := parseInt32(f[1])
	if err != nil {
		return PartitionState{}, fmt.Errorf("meta: malformed partition key %q: %w", key, err)
	}
	st := PartitionState{TopicID: f[0], Partition: p, Revision: rev}
	if len(value) > 0 {
		if err := decode(string(key), value, &st); err != nil {
			return PartitionState{}, err
		}
	}
	return st, nil
}

// AssignPartition gives a partition to broker with the next epoch, keeping
// its next offset. It succeeds only if the state is still at prev.Revision
// (0 for a partition never assigned); otherwise it returns ErrConflict and
// the caller reads the state again. An empty broker releases the partition:
// no one can commit to it until it is assigned again.
func (s *Store) AssignPartition(ctx context.Context, prev PartitionState, broker string) (PartitionState, error) {
	next := Assignment{Prev: prev, Broker: broker}.next()
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.partition(prev.TopicID, prev.Partition)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", prev.Revision)).
		Then(clientv3.OpPut(key, next.canonical())).
		Commit()
	if err != nil {
		return PartitionState{}, fmt.Errorf("meta: assign %s/%d: %w", prev.TopicID, prev.Partition, err)
	}
	if !resp.Succeeded {
		return PartitionState{}, fmt.Errorf("%w: partition %s/%d changed since revision %d",
			ErrConflict, prev.TopicID, prev.Partition, prev.Revision)
	}
	next.Revision = resp.Header.Revision
	return next, nil
}

// Assignment asks AssignPartitions to give Prev's partition to Broker.
type Assignment struct {
	Prev   PartitionState
	Broker string
}

// next is the state an assignment writes: the next epoch at the same
// offsets, producer state and last abort.
func (a Assignment) next() PartitionState {
	return PartitionState{
		V:          valueVersion,
		Broker:     a.Broker,
		Epoch:      a.Prev.Epoch + 1,
		NextOffset: a.Prev.NextOffset,
		Producers:  a.Prev.Producers,
		LastAbort:  a.Prev.LastAbort,
		TopicID:    a.Prev.TopicID,
		Partition:  a.Prev.Partition,
		LogStart:   a.Prev.LogStart,
	}
}

// AssignPartitions applies many assignments as AssignPartition applies
// one, grouped into as few transactions as MaxTxnOps allows (placing
// thousands of partitions at one transaction each takes seconds). It
// returns one state and one error per assignment: ErrConflict for a
// partition whose state is no longer at Prev.Revision, the etcd error when
// the outcome is unknown. A transaction applies all of its assignments or
// none; when some compares fail, the others are tried again without them.
func (s *Store) AssignPartitions(ctx context.Context, as []Assignment) ([]PartitionState, []error) {
	states := make([]PartitionState, len(as))
	errs := make([]error, len(as))
	per := s.cfg.MaxTxnOps / 2
	for start := 0; start < len(as); start += per {
		group := make([]int, 0, per)
		for i := start; i < min(start+per, len(as)); i++ {
			group = append(group, i)
		}
		s.assignGroup(ctx, as, group, states, errs)
	}
	return states, errs
}

// assignGroup applies one transaction's worth of assignments, dropping
// those whose partition changed and retrying the rest until the
// transaction applies or none is left. Each round drops at least one
// assignment, so it ends.
func (s *Store) assignGroup(ctx context.Context, as []Assignment, group []int, states []PartitionState, errs []error) {
	for len(group) > 0 {
		cmps := make([]clientv3.Cmp, 0, len(group))
		puts := make([]clientv3.Op, 0, len(group))
		gets := make([]clientv3.Op, 0, len(group))
		for _, i := range group {
			key := s.keys.partition(as[i].Prev.TopicID, as[i].Prev.Partition)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", as[i].Prev.Revision))
			puts = append(puts, clientv3.OpPut(key, as[i].next().canonical()))
			gets = append(gets, clientv3.OpGet(key, clientv3.WithKeysOnly()))
		}
		tctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Txn(tctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		cancel()
		if err != nil {
			for _, i := range group {
				errs[i] = fmt.Errorf("meta: assign %s/%d: %w", as[i].Prev.TopicID, as[i].Prev.Partition, err)
			}
			return
		}
		if resp.Succeeded {
			for _, i := range group {
				states[i] = as[i].next()
				states[i].Revision = resp.Header.Revision
			}
			return
		}
		retry := group[:0:0]
		for j, i := range group {
			var rev int64
			if kvs := resp.Responses[j].GetResponseRange().Kvs; len(kvs) > 0 {
				rev = kvs[0].ModRevision
			}
			if rev != as[i].Prev.Revision {
				errs[i] = fmt.Errorf("%w: partition %s/%d changed since revision %d",
					ErrConflict, as[i].Prev.TopicID, as[i].Prev.Partition, as[i].Prev.Revision)
				continue
			}
			retry = append(retry, i)
		}
		if len(retry) == len(group) {
			// Every compare holds now although the transaction failed: a
			// change came and went between the two reads. Rare; report
			// conflicts and let the caller read the states again.
			for _, i := range group {
				errs[i] = fmt.Errorf("%w: partition %s/%d", ErrConflict, as[i].Prev.TopicID, as[i].Prev.Partition)
			}
			return
		}
		group = retry
	}
}

// LogStart is the first readable offset of a partition, moved forward by
// retention.
type LogStart struct {
	V      int   `json:"v"`
	Offset int64 `json:"offset"`
}

// Commit appends one segment entry to a partition, on the condition that the
// partition is still owned by Broker at Epoch and that its next offset is
// still Entry.FirstOffset.
//
// Producers and NewProducers carry the partition's idempotent-producer
// state through the commit: Producers is the state the committer expects
// the partition to hold now (compared, byte for byte, with the rest of the
// state), NewProducers the state the commit leaves. Both nil (no idempotent
// producer ever wrote to the partition) keeps the state without producers.
// NewProducers nil with Producers set leaves Producers unchanged.
//
// More appends further entries of the same partition in the same
// transaction, each starting where the one before ends: a broker that
// commits several flushes at once (group commit) writes one partition
// state for all of them. The partition's next offset becomes the last
// entry's LastOffset + 1.
//
// LastAbort and NewLastAbort carry PartitionState.LastAbort as Producers
// and NewProducers carry the producers: LastAbort is compared, and
// NewLastAbort, when not 0, replaces it. Aborted are the transactions
// whose abort markers the commit's entries hold; each is put under its
// aborted key (AbortedTxns) in the same transaction.
type Commit struct {
	Broker       string
	Epoch        int64
	Entry        SegmentEntry
	More         []SegmentEntry
	Producers    map[int64]ProducerState
	NewProducers map[int64]ProducerState
	LastAbort    int64
	NewLastAbort int64
	Aborted      []AbortedTxn
}

// last is the commit's last entry.
func (c Commit) last() SegmentEntry {
	if n := len(c.More); n > 0 {
		return c.More[n-1]
	}
	return c.Entry
}

// validate checks the commit's entries: each valid, of one partition, and
// contiguous.
func (c Commit) validate() error {
	if err := c.Entry.Validate(); err != nil {
		return err
	}
	prev := c.Entry
	for _, e := range c.More {
		if err := e.Validate(); err != nil {
			return err
		}
		if e.TopicID != prev.TopicID || e.Partition != prev.Partition || e.FirstOffset != prev.LastOffset+1 {
			return fmt.Errorf("%w: entry %s/%d@%d does not follow %s/%d..%d",
				ErrInvalidEntry, e.TopicID, e.Partition, e.FirstOffset, prev.TopicID, prev.Partition, prev.LastOffset)
		}
		prev = e
	}
	for _, a := range c.Aborted {
		if a.ProducerID < 0 || a.First < 0 || a.First > a.Last || a.Last < c.Entry.FirstOffset || a.Last > prev.LastOffset {
			return fmt.Errorf("%w: aborted transaction %d..%d of producer %d is not closed by entries %d..%d",
				ErrInvalidEntry, a.First, a.Last, a.ProducerID, c.Entry.FirstOffset, prev.LastOffset)
		}
	}
	return nil
}

// ops is how many puts the commit takes: one per entry and aborted
// transaction, and the state.
func (c Commit) ops() int { return 2 + len(c.More) + len(c.Aborted) }

func (c Commit) expected() PartitionState {
	return PartitionState{Broker: c.Broker, Epoch: c.Epoch, NextOffset: c.Entry.FirstOffset, Producers: c.Producers, LastAbort: c.LastAbort}
}

func (c Commit) committed() PartitionState {
	np := c.NewProducers
	if np == nil {
		np = c.Producers
	}
	la := c.NewLastAbort
	if la == 0 {
		la = c.LastAbort
	}
	return PartitionState{Broker: c.Broker, Epoch: c.Epoch, NextOffset: c.last().LastOffset + 1, Producers: np, LastAbort: la}
}

// puts are the commit's writes: its entries, its aborted transactions and
// the partition's new state.
func (s *Store) puts(c Commit) []clientv3.Op {
	ops := make([]clientv3.Op, 0, c.ops()-1)
	for _, e := range append([]SegmentEntry{c.Entry}, c.More...) {
		e.V = valueVersion
		ops = append(ops, clientv3.OpPut(s.keys.segment(e.TopicID, e.Partition, e.FirstOffset), encode(e)))
	}
	for _, a := range c.Aborted {
		a.V = valueVersion
		ops = append(ops, clientv3.OpPut(s.keys.abortedTxn(c.Entry.TopicID, c.Entry.Partition, a.Last), encode(a)))
	}
	return append(ops, clientv3.OpPut(s.keys.partition(c.Entry.TopicID, c.Entry.Partition), c.committed().canonical()))
}

// CommitSegments applies commits with the fencing rule and returns one
// result per commit: nil when its entry and new next offset were written,
// ErrFenced when the partition has another owner or epoch, ErrOffsetMismatch
// when its next offset moved, ErrInvalidEntry for a malformed commit, or the
// etcd error when the outcome is unknown (the transaction may or may not
// have applied; read the partition state to find out).
//
// Commits are grouped into as few transactions as MaxTxnOps allows. A
// transaction either applies all its commits or none; when one of them is
// fenced, the others are retried without it, so one stale partition never
// fails another. A partition may appear at most once per call (its
// further entries go in More).
func (s *Store) CommitSegments(ctx context.Context, commits []Commit) []error {
	results := make([]error, len(commits))
	pending := make([]int, 0, len(commits))
	seen := make(map[PartitionID]bool, len(commits))
	for i, c := range commits {
		id := PartitionID{c.Entry.TopicID, c.Entry.Partition}
		switch {
		case seen[id]:
			results[i] = fmt.Errorf("%w: partition %s/%d twice in one commit", ErrInvalidEntry, id.TopicID, id.Partition)
		case c.Broker == "" || c.Epoch < 1:
			results[i] = fmt.Errorf("%w: commit needs a broker and an epoch", ErrInvalidEntry)
		case c.ops() > s.cfg.MaxTxnOps:
			results[i] = fmt.Errorf("%w: %d entries in one commit, at most %d", ErrInvalidEntry, 1+len(c.More), s.cfg.MaxTxnOps-1)
		default:
			results[i] = c.validate()
		}
		if results[i] == nil {
			seen[id] = true
			pending = append(pending, i)
		}
	}
	s.commitGroups(ctx, commits, s.txnGroups(commits, pending), results)
	return results
}

// txnGroups splits the pending commits into transactions: each commit
// takes one compare and a put per entry and one for the state, and a
// transaction holds at most MaxTxnOps of each.
func (s *Store) txnGroups(commits []Commit, pending []int) [][]int {
	var groups [][]int
	for start := 0; start < len(pending); {
		end, ops := start, 0
		for ; end < len(pending) && ops+commits[pending[end]].ops() <= s.cfg.MaxTxnOps; end++ {
			ops += commits[pending[end]].ops()
		}
		groups = append(groups, pending[start:end])
		start = end
	}
	return groups
}

// commitGroups commits each group in its own transaction, up to
// txnConcurrency at a time (a flush over many partitions spans several
// transactions, about 64 partitions each at etcd's default of 128 ops),
// and returns when all are settled. Each group writes only its own
// commits' results.
func (s *Store) commitGroups(ctx context.Context, commits []Commit, groups [][]int, results []error) {
	if len(groups) == 1 {
		s.commitGroup(ctx, commits, groups[0], results)
		return
	}
	var eg errgroup.Group
	eg.SetLimit(txnConcurrency)
	for _, g := range groups {
		eg.Go(func() error {
			s.commitGroup(ctx, commits, g, results)
			return nil
		})
	}
	_ = eg.Wait() // each group's outcome is in results
}

// commitGroup commits one transaction's worth of commits, dropping fenced
// ones and retrying the rest until the transaction applies or none is left.
func (s *Store) commitGroup(ctx context.Context, commits []Commit, group []int, results []error) {
	// Rounds in which no compare failed although the transaction did: the
	// state changed and changed back between the two reads. Bounded.
	const maxIdleRounds = 3
	for idle := 0; len(group) > 0; {
		cmps := make([]clientv3.Cmp, 0, len(group))
		puts := make([]clientv3.Op, 0, 3*len(group))
		gets := make([]clientv3.Op, 0, len(group))
		for _, i := range group {
			c := commits[i]
			key := s.keys.partition(c.Entry.TopicID, c.Entry.Partition)
			cmps = append(cmps, clientv3.Compare(clientv3.Value(key), "=", c.expected().canonical()))
			puts = append(puts, s.puts(c)...)
			gets = append(gets, clientv3.OpGet(key))
		}
		tctx, cancel := s.ctx(ctx)
		start := time.Now()
		resp, err := s.cli.Txn(tctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		cancel()
		s.metrics.observeCommit(start, len(group), err, err == nil && resp.Succeeded)
		if err != nil {
			for _, i := range group {
				results[i] = fmt.Errorf("meta: commit %s/%d: %w", commits[i].Entry.TopicID, commits[i].Entry.Partition, err)
			}
			return
		}
		if resp.Succeeded {
			return // results stay nil
		}
		retry := s.unfenced(commits, group, resp, results)
		if len(retry) == len(group) {
			if idle++; idle >= maxIdleRounds || ctx.Err() != nil {
				for _, i := range group {
					results[i] = fmt.Errorf("%w: commit %s/%d", ErrConflict, commits[i].Entry.TopicID, commits[i].Entry.Partition)
				}
				return
			}
		}
		group = retry
	}
}

// unfenced reads the partition states a failed commit transaction
// returned (its Else gets, in group order), settles in results the
// commits those states refuse — fenced, offset moved, producer state
// or last abort changed — and returns the others, to be tried again.
func (s *Store) unfenced(commits []Commit, group []int, resp *clientv3.TxnResponse, results []error) []int {
	retry := group[:0:0]
	for j, i := range group {
		c := commits[i]
		key := s.keys.partition(c.Entry.TopicID, c.Entry.Partition)
		var cur PartitionState
		if kvs := resp.Responses[j].GetResponseRange().Kvs; len(kvs) > 0 {
			if err := decode(key, kvs[0].Value, &cur); err != nil {
				results[i] = err
				continue
			}
		}
		switch {
		case cur.Broker != c.Broker || cur.Epoch != c.Epoch:
			results[i] = fmt.Errorf("%w: %s/%d is at broker %q epoch %d, commit from %q epoch %d",
				ErrFenced, c.Entry.TopicID, c.Entry.Partition, cur.Broker, cur.Epoch, c.Broker, c.Epoch)
			s.metrics.fenced.Inc()
		case cur.NextOffset != c.Entry.FirstOffset:
			results[i] = fmt.Errorf("%w: %s/%d is at %d, commit starts at %d",
				ErrOffsetMismatch, c.Entry.TopicID, c.Entry.Partition, cur.NextOffset, c.Entry.FirstOffset)
		case encode(cur.Producers) != encode(c.Producers) && (len(cur.Producers) > 0 || len(c.Producers) > 0),
			cur.LastAbort != c.LastAbort:
			results[i] = fmt.Errorf("%w: %s/%d producer state differs from the committer's",
				ErrOffsetMismatch, c.Entry.TopicID, c.Entry.Partition)
		default:
			retry = append(retry, i)
		}
	}
	return retry
}

// IsRetriable reports whether err from CommitSegments leaves the commit's
// outcome unknown (an etcd error), as opposed to a definite rejection.
func IsRetriable(err error) bool {
	return err != nil && !errors.Is(err, ErrFenced) && !errors.Is(err, ErrOffsetMismatch) &&
		!errors.Is(err, ErrInvalidEntry) && !errors.Is(err, ErrConflict)
}
