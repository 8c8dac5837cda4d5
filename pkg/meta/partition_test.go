package meta_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestCommitFencing(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "fence", 2)
	id := top.ID

	// Partition 0 goes to b1 (epoch 1), commits 10 records, then moves to b2
	// (epoch 2). Partition 1 is never assigned.
	assign(t, s, id, 0, "b1")
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	moved := assign(t, s, id, 0, "b2")
	if moved.Epoch != 2 || moved.NextOffset != 10 || moved.Broker != "b2" {
		t.Fatalf("after reassignment: %+v, want b2 epoch 2 next 10", moved)
	}

	tests := []struct {
		name   string
		commit meta.Commit
		want   error
	}{
		{"stale epoch, right offset", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 5)}, meta.ErrFenced},
		{"old owner, new epoch", meta.Commit{Broker: "b1", Epoch: 2, Entry: entry(id, 0, 10, 5)}, meta.ErrFenced},
		{"future epoch", meta.Commit{Broker: "b2", Epoch: 3, Entry: entry(id, 0, 10, 5)}, meta.ErrFenced},
		{"wrong next offset, behind", meta.Commit{Broker: "b2", Epoch: 2, Entry: entry(id, 0, 5, 5)}, meta.ErrOffsetMismatch},
		{"wrong next offset, gap", meta.Commit{Broker: "b2", Epoch: 2, Entry: entry(id, 0, 11, 5)}, meta.ErrOffsetMismatch},
		{"unassigned partition", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 1, 0, 5)}, meta.ErrFenced},
		{"no broker", meta.Commit{Epoch: 2, Entry: entry(id, 0, 10, 5)}, meta.ErrInvalidEntry},
		{"inverted offsets", meta.Commit{Broker: "b2", Epoch: 2, Entry: func() meta.SegmentEntry {
			e := entry(id, 0, 10, 5)
			e.LastOffset = 9
			return e
		}()}, meta.ErrInvalidEntry},
		{"range outside object", meta.Commit{Broker: "b2", Epoch: 2, Entry: func() meta.SegmentEntry {
			e := entry(id, 0, 10, 5)
			e.Pos = e.ObjectSize
			return e
		}()}, meta.ErrInvalidEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := s.CommitSegments(ctx, []meta.Commit{tt.commit})
			if !errors.Is(errs[0], tt.want) {
				t.Fatalf("CommitSegments = %v, want %v", errs[0], tt.want)
			}
			if meta.IsRetriable(errs[0]) {
				t.Fatalf("%v reported as retriable", errs[0])
			}
			st, err := s.GetPartition(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if st.NextOffset != 10 || st.Epoch != 2 {
				t.Fatalf("a rejected commit changed the partition: %+v", st)
			}
		})
	}

	// The new owner at the right offset commits.
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b2", Epoch: 2, Entry: entry(id, 0, 10, 5)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	st, err := s.GetPartition(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.NextOffset != 15 {
		t.Fatalf("next offset = %d, want 15", st.NextOffset)
	}
	segs, err := s.ListSegments(ctx, id, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[0].FirstOffset != 0 || segs[1].FirstOffset != 10 || segs[1].LastOffset != 14 {
		t.Fatalf("segments = %+v, want 0..9 and 10..14", segs)
	}
}

// TestCommitManyPartitionsOneFenced commits more partitions than fit in one
// transaction, with one of them fenced: only that one fails.
func TestCommitManyPartitionsOneFenced(t *testing.T) {
	// Eight ops per transaction: four partitions each.
	s := newStore(t, func(c *meta.Config) { c.MaxTxnOps = 8 })
	ctx := testCtx(t)
	const n = 11
	top := createTopic(t, s, "wide", n)
	for p := int32(0); p < n; p++ {
		assign(t, s, top.ID, p, "b1")
	}
	assign(t, s, top.ID, 5, "b2") // partition 5 moved away: epoch 2

	var commits []meta.Commit
	for p := int32(0); p < n; p++ {
		commits = append(commits, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(top.ID, p, 0, int64(p)+1)})
	}
	// A duplicate partition in one call is refused without touching the first.
	commits = append(commits, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 1, 1)})

	errs := s.CommitSegments(ctx, commits)
	for i, err := range errs {
		switch {
		case i == 5:
			if !errors.Is(err, meta.ErrFenced) {
				t.Errorf("partition 5: %v, want ErrFenced", err)
			}
		case i == n:
			if !errors.Is(err, meta.ErrInvalidEntry) {
				t.Errorf("duplicate: %v, want ErrInvalidEntry", err)
			}
		case err != nil:
			t.Errorf("partition %d: %v", i, err)
		}
	}
	for p := int32(0); p < n; p++ {
		st, err := s.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(p) + 1
		if p == 5 {
			want = 0
		}
		if st.NextOffset != want {
			t.Errorf("partition %d next offset %d, want %d", p, st.NextOffset, want)
		}
	}
}

// TestConcurrentCommitsStayDense has many committers race on one partition
// while its ownership moves between brokers. Some committers read the
// current owner and epoch before each commit; others keep the epoch they
// started with. Whatever wins, the committed entries must cover offsets
// 0..next-1 exactly once, and every stale commit must have been rejected.
func TestConcurrentCommitsStayDense(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "race", 1)
	first := assign(t, s, top.ID, 0, "b0")

	const (
		committers = 16
		rounds     = 40
		moves      = 8
	)
	type success struct{ first, last int64 }
	var (
		mu        sync.Mutex
		successes []success
		fenced    int
		stale     int // successful commits by a stale committer after its epoch moved on
		moved     atomic.Int32
	)
	var wg sync.WaitGroup
	for c := range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			fresh := c%2 == 0
			// A stale committer goes on (bounded) until the first move, so
			// that it commits at a superseded epoch at least once: the
			// mover retries whenever a commit lands in between, and on a
			// busy machine it could otherwise lose every race until the
			// committers were done.
			for r := 0; r < rounds || !fresh && moved.Load() == 0 && r < 50*rounds; r++ {
				st, err := s.GetPartition(ctx, top.ID, 0)
				if err != nil {
					t.Error(err)
					return
				}
				broker, epoch := st.Broker, st.Epoch
				if !fresh {
					broker, epoch = first.Broker, first.Epoch
				}
				n := int64(rng.IntN(5) + 1)
				errs := s.CommitSegments(ctx, []meta.Commit{{Broker: broker, Epoch: epoch, Entry: entry(top.ID, 0, st.NextOffset, n)}})
				mu.Lock()
				switch err := errs[0]; {
				case err == nil:
					successes = append(successes, success{st.NextOffset, st.NextOffset + n - 1})
					if !fresh && st.Epoch != first.Epoch {
						stale++
					}
				case errors.Is(err, meta.ErrFenced):
					fenced++
				case errors.Is(err, meta.ErrOffsetMismatch):
				default:
					t.Errorf("commit: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	// Move ownership around while they commit.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < moves; {
			st, err := s.GetPartition(ctx, top.ID, 0)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := s.AssignPartition(ctx, st, fmt.Sprintf("b%d", (i+1)%3)); errors.Is(err, meta.ErrConflict) {
				continue // a commit landed in between; read again
			} else if err != nil {
				t.Error(err)
				return
			}
			moved.Add(1)
			i++
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}

	final, err := s.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if final.Epoch != first.Epoch+moves {
		t.Fatalf("epoch %d, want %d", final.Epoch, first.Epoch+moves)
	}
	if stale != 0 {
		t.Fatalf("%d commits with a superseded epoch succeeded", stale)
	}
	if fenced == 0 {
		t.Fatal("no commit was fenced: the test did not exercise stale epochs")
	}
	slices.SortFunc(successes, func(a, b success) int { return int(a.first - b.first) })
	segs, err := s.ListSegments(ctx, top.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != len(successes) {
		t.Fatalf("%d segment entries, %d successful commits", len(segs), len(successes))
	}
	next := int64(0)
	for i, e := range segs {
		if e.FirstOffset != next {
			t.Fatalf("entry %d starts at %d, want %d (gap or overlap)", i, e.FirstOffset, next)
		}
		if successes[i].first != e.FirstOffset || successes[i].last != e.LastOffset {
			t.Fatalf("entry %d is %d..%d, acknowledged commit was %d..%d", i, e.FirstOffset, e.LastOffset, successes[i].first, successes[i].last)
		}
		next = e.LastOffset + 1
	}
	if next != final.NextOffset {
		t.Fatalf("entries end at %d, next offset is %d", next, final.NextOffset)
	}
	t.Logf("%d commits succeeded (%d offsets), %d fenced", len(successes), next, fenced)
}

func TestAssignPartitionConflict(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "assign", 1)
	st, err := s.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 0 || st.Revision != 0 || st.Broker != "" {
		t.Fatalf("fresh partition = %+v", st)
	}
	a, err := s.AssignPartition(ctx, st, "b1")
	if err != nil {
		t.Fatal(err)
	}
	// A second coordinator acting on the same old read loses.
	if _, err := s.AssignPartition(ctx, st, "b2"); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("second assign from stale read: %v, want ErrConflict", err)
	}
	got, err := s.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Broker != "b1" || got.Epoch != 1 || got.Revision != a.Revision {
		t.Fatalf("state = %+v, want b1 epoch 1 at revision %d", got, a.Revision)
	}
}

func TestLogStart(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "start", 1)
	assign(t, s, top.ID, 0, "b1")
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 0, 100)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for _, c := range []struct {
		offset, want int64
		err          error
	}{
		{40, 40, nil},
		{20, 40, nil}, // never backwards
		{101, 0, apierr.ErrOffsetOutOfRange},
		{-2, 0, apierr.ErrOffsetOutOfRange},
	} {
		got, err := s.SetLogStart(ctx, top.ID, 0, c.offset)
		if !errors.Is(err, c.err) || (err == nil && got != c.want) {
			t.Fatalf("SetLogStart(%d) = %d, %v; want %d, %v", c.offset, got, err, c.want, c.err)
		}
	}
	st, err := s.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.LogStart != 40 || st.NextOffset != 100 {
		t.Fatalf("state = %+v, want log start 40, next 100", st)
	}
	// The entry the log start falls inside stays; readers skip its
	// records below the log start.
	l, err := s.ReadLayout(ctx, top.ID, 0)
	if err != nil || len(l.Entries) != 1 || l.LogStart != 40 {
		t.Fatalf("layout = %+v, %v; want the entry 0..99 at log start 40", l, err)
	}
	// A lifecycle change read before the move is fenced off by it.
	if got, err := s.SetLogStart(ctx, top.ID, 0, -1); err != nil || got != 100 { // the high watermark
		t.Fatalf("SetLogStart(-1) = %d, %v; want 100", got, err)
	}
	if err := s.TruncateSegments(ctx, l, 100); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("truncate of a layout read before the move: %v, want ErrConflict", err)
	}
	// An entry wholly below the log start goes with the move.
	if l, err = s.ReadLayout(ctx, top.ID, 0); err != nil || len(l.Entries) != 0 || l.LogStart != 100 {
		t.Fatalf("layout = %+v, %v; want no entries at log start 100", l, err)
	}
	// Moving the log start does not disturb the owner's commits.
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 100, 1)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// TestAssignPartitionsBatches assigns 150 partitions — more than one
// transaction holds — of which two changed since they were read: those two
// get ErrConflict and keep their newer state, every other one is written at
// the next epoch with the state AssignPartitions returns.
func TestAssignPartitionsBatches(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	const n = 150
	top := createTopic(t, s, "assign-many", n)
	as := make([]meta.Assignment, n)
	for p := range int32(n) {
		st, err := s.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		as[p] = meta.Assignment{Prev: st, Broker: fmt.Sprintf("b%d", p%3)}
	}
	// Another coordinator moves partitions 7 and 140 after the read.
	for _, p := range []int32{7, 140} {
		if _, err := s.AssignPartition(ctx, as[p].Prev, "other"); err != nil {
			t.Fatal(err)
		}
	}
	states, errs := s.AssignPartitions(ctx, as)
	for p := range int32(n) {
		got, err := s.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if p == 7 || p == 140 {
			if !errors.Is(errs[p], meta.ErrConflict) || got.Broker != "other" {
				t.Fatalf("partition %d changed after the read: err %v, state %+v; want ErrConflict and broker other", p, errs[p], got)
			}
			continue
		}
		if errs[p] != nil {
			t.Fatalf("partition %d: %v", p, errs[p])
		}
		if got.Broker != as[p].Broker || got.Epoch != 1 || states[p].Revision != got.Revision || states[p].Broker != got.Broker {
			t.Fatalf("partition %d = %+v, returned %+v; want %s at epoch 1", p, got, states[p], as[p].Broker)
		}
	}
}

// TestCommitSeveralEntries commits entries of several flushes of one
// partition at once (group commit): all land with one state write, a
// non-contiguous or foreign entry refuses the whole commit, and commits
// with many entries are spread over transactions within MaxTxnOps.
func TestCommitSeveralEntries(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "group", 3)
	id := top.ID
	for p := range int32(3) {
		assign(t, s, id, p, "b1")
	}
	bad := []struct {
		name string
		more []meta.SegmentEntry
	}{
		{"gap", []meta.SegmentEntry{entry(id, 0, 11, 5)}},
		{"overlap", []meta.SegmentEntry{entry(id, 0, 9, 5)}},
		{"another partition", []meta.SegmentEntry{entry(id, 1, 10, 5)}},
		{"invalid entry", []meta.SegmentEntry{{TopicID: id, FirstOffset: 10, LastOffset: 14}}},
	}
	for _, tt := range bad {
		errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10), More: tt.more}})
		if !errors.Is(errs[0], meta.ErrInvalidEntry) {
			t.Fatalf("%s: CommitSegments = %v, want ErrInvalidEntry", tt.name, errs[0])
		}
	}
	if st, _ := s.GetPartition(ctx, id, 0); st.NextOffset != 0 {
		t.Fatalf("a refused commit moved the partition to %d", st.NextOffset)
	}

	// Partition 0: three entries at once. Partitions 1 and 2: as many
	// entries as need two transactions between them.
	many := func(p int32, n int) meta.Commit {
		c := meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, p, 0, 2)}
		for i := 1; i < n; i++ {
			c.More = append(c.More, entry(id, p, int64(2*i), 2))
		}
		return c
	}
	commits := []meta.Commit{many(0, 3), many(1, meta.DefaultMaxTxnOps/2), many(2, meta.DefaultMaxTxnOps/2)}
	for i, err := range s.CommitSegments(ctx, commits) {
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	for p, n := range []int{3, meta.DefaultMaxTxnOps / 2, meta.DefaultMaxTxnOps / 2} {
		st, err := s.GetPartition(ctx, id, int32(p))
		if err != nil {
			t.Fatal(err)
		}
		segs, err := s.ListSegments(ctx, id, int32(p), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st.NextOffset != int64(2*n) || len(segs) != n || segs[n-1].FirstOffset != int64(2*(n-1)) {
			t.Fatalf("partition %d: next offset %d and %d entries, want %d and %d", p, st.NextOffset, len(segs), 2*n, n)
		}
	}
	// The next commit of partition 0 follows the last entry.
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 6, 1)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	big := meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 7, 1)}
	for i := range meta.DefaultMaxTxnOps {
		big.More = append(big.More, entry(id, 0, int64(8+i), 1))
	}
	if errs := s.CommitSegments(ctx, []meta.Commit{big}); !errors.Is(errs[0], meta.ErrInvalidEntry) {
		t.Fatalf("a commit over MaxTxnOps: %v, want ErrInvalidEntry", errs[0])
	}
}

// TestGetPartitions reads more partitions than one transaction holds, in
// the order asked, with their log starts, the same as GetPartition.
func TestGetPartitions(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	const n = meta.DefaultMaxTxnOps // two transactions' worth
	top := createTopic(t, s, "many", n)
	assign(t, s, top.ID, 7, "b1")
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 7, 0, 10)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if _, err := s.SetLogStart(ctx, top.ID, 7, 4); err != nil {
		t.Fatal(err)
	}
	ids := make([]meta.PartitionID, 0, n)
	for p := n - 1; p >= 0; p-- {
		ids = append(ids, meta.PartitionID{TopicID: top.ID, Partition: int32(p)})
	}
	sts, err := s.GetPartitions(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != n {
		t.Fatalf("%d states for %d partitions", len(sts), n)
	}
	for i, st := range sts {
		one, err := s.GetPartition(ctx, ids[i].TopicID, ids[i].Partition)
		if err != nil {
			t.Fatal(err)
		}
		if st.Partition != ids[i].Partition || st.Broker != one.Broker || st.NextOffset != one.NextOffset || st.LogStart != one.LogStart || st.Revision != one.Revision {
			t.Fatalf("state %d: %+v, GetPartition says %+v", i, st, one)
		}
	}
	if st := sts[n-1-7]; st.Broker != "b1" || st.NextOffset != 10 || st.LogStart != 4 {
		t.Fatalf("partition 7: %+v, want b1 at 10 with log start 4", st)
	}
}
