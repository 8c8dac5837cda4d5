package meta_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// commit1 applies one commit and fails the test on an error.
func commit1(t *testing.T, s *meta.Store, c meta.Commit) {
	t.Helper()
	if errs := s.CommitSegments(testCtx(t), []meta.Commit{c}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// rawState returns the stored bytes of a partition's state key.
func rawState(t *testing.T, s *meta.Store, topicID string, p int32) string {
	t.Helper()
	resp, err := s.Client().Get(testCtx(t), fmt.Sprintf("%s/partitions/%s/%06d", s.Prefix(), topicID, p))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("read state: %v (%d keys)", err, len(resp.Kvs))
	}
	return string(resp.Kvs[0].Value)
}

// TestCommitOpenTxn walks a partition through a committed and an aborted
// transaction: the open transaction holds the last stable offset, markers
// release it, the abort lands in the index and in LastAbort, all of it
// compared by the fencing commit and carried over by an assignment.
func TestCommitOpenTxn(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	id := createTopic(t, s, "txn", 1).ID
	assign(t, s, id, 0, "b1")
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10)})

	open := map[int64]meta.ProducerState{7: {FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14, Txn: &meta.OpenTxn{First: 10}}}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 5), NewProducers: open})
	st, err := s.GetPartition(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastStable() != 10 || st.NextOffset != 15 || st.Producers[7].Txn == nil {
		t.Fatalf("open transaction: LSO %d, state %+v", st.LastStable(), st)
	}
	if want := `{"v":1,"broker":"b1","epoch":1,"next_offset":15,"producers":{"7":{"epoch":0,"first_seq":0,"last_seq":4,"first_offset":10,"last_offset":14,"txn":{"first":10}}}}`; rawState(t, s, id, 0) != want {
		t.Fatalf("stored %s, want %s", rawState(t, s, id, 0), want)
	}

	// A commit marker at 15 closes it: the LSO is the high watermark.
	closed := map[int64]meta.ProducerState{7: {FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14}}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 15, 1), Producers: open, NewProducers: closed})
	// The next transaction, 16..18, is aborted by the marker at 19.
	open2 := map[int64]meta.ProducerState{7: {FirstSeq: 5, LastSeq: 7, FirstOffset: 16, LastOffset: 18, Txn: &meta.OpenTxn{First: 16}}}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 16, 3), Producers: closed, NewProducers: open2})
	closed2 := map[int64]meta.ProducerState{7: {FirstSeq: 5, LastSeq: 7, FirstOffset: 16, LastOffset: 18}}
	abort := meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 19, 1), Producers: open2, NewProducers: closed2,
		NewLastAbort: 19, Aborted: []meta.AbortedTxn{{ProducerID: 7, First: 16, Last: 19}}}
	commit1(t, s, abort)
	st, err = s.GetPartition(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastStable() != 20 || st.LastAbort != 19 {
		t.Fatalf("after the abort: LSO %d, last abort %d; want 20, 19", st.LastStable(), st.LastAbort)
	}
	got, err := s.AbortedTxns(ctx, id, 0, 0, 20, 10)
	if err != nil || len(got) != 1 || got[0] != (meta.AbortedTxn{V: 1, ProducerID: 7, First: 16, Last: 19}) {
		t.Fatalf("AbortedTxns = %+v, %v", got, err)
	}

	// The last abort is compared like the rest of the state.
	stale := meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 20, 2), Producers: closed2}
	if errs := s.CommitSegments(ctx, []meta.Commit{stale}); !errors.Is(errs[0], meta.ErrOffsetMismatch) {
		t.Fatalf("commit expecting no last abort: %v, want ErrOffsetMismatch", errs[0])
	}
	open3 := maps.Clone(closed2)
	open3[8] = meta.ProducerState{Epoch: 2, FirstSeq: 0, LastSeq: 1, FirstOffset: 20, LastOffset: 21, Txn: &meta.OpenTxn{First: 20}}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 20, 2), Producers: closed2, LastAbort: 19, NewProducers: open3})

	// A new owner inherits the open transaction and the last abort.
	moved := assign(t, s, id, 0, "b2")
	if moved.LastAbort != 19 || moved.LastStable() != 20 || moved.Producers[8].Txn == nil {
		t.Fatalf("after assignment: %+v", moved)
	}
	commit1(t, s, meta.Commit{Broker: "b2", Epoch: 2, Entry: entry(id, 0, 22, 1), Producers: open3, LastAbort: 19})
}

// TestOldStateEncoding pins that states without transactions keep the
// exact bytes older brokers wrote, so a commit by a new broker applies
// on a state an old one left, and the other way round.
func TestOldStateEncoding(t *testing.T) {
	s := newStore(t)
	id := createTopic(t, s, "old", 1).ID
	assign(t, s, id, 0, "b1")
	p := map[int64]meta.ProducerState{7: {FirstSeq: 0, LastSeq: 9, FirstOffset: 0, LastOffset: 9}}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10), NewProducers: p})
	want := `{"v":1,"broker":"b1","epoch":1,"next_offset":10,"producers":{"7":{"epoch":0,"first_seq":0,"last_seq":9,"first_offset":0,"last_offset":9}}}`
	if got := rawState(t, s, id, 0); got != want {
		t.Fatalf("stored %s, want %s", got, want)
	}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 1), Producers: p})
}

// TestAbortedTxns pins the overlap query over the aborted-transaction
// index, its paging, and the commit's checks of aborted transactions.
func TestAbortedTxns(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	id := createTopic(t, s, "aborted", 1).ID
	assign(t, s, id, 0, "b1")
	aborted := []meta.AbortedTxn{{ProducerID: 1, First: 0, Last: 10}, {ProducerID: 2, First: 5, Last: 30},
		{ProducerID: 3, First: 20, Last: 25}, {ProducerID: 4, First: 40, Last: 50}}
	bad := []meta.AbortedTxn{{ProducerID: 1, First: 0, Last: 100}}
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 100), Aborted: bad}}); !errors.Is(errs[0], meta.ErrInvalidEntry) {
		t.Fatalf("abort marker past the entries: %v, want ErrInvalidEntry", errs[0])
	}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 100), Aborted: aborted})
	tests := []struct {
		from, to int64
		limit    int
		want     []int64 // producer ids
	}{
		{0, 100, 0, []int64{1, 3, 2, 4}},
		{0, 100, 1, []int64{1}},
		{11, 20, 0, []int64{2}},
		{26, 41, 0, []int64{2, 4}},
		{10, 11, 0, []int64{1, 2}},
		{51, 100, 0, nil},
		{30, 30, 0, nil},
	}
	for _, tt := range tests {
		got, err := s.AbortedTxns(ctx, id, 0, tt.from, tt.to, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, a := range got {
			ids = append(ids, a.ProducerID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("AbortedTxns(%d, %d, %d) = %v, want %v", tt.from, tt.to, tt.limit, ids, tt.want)
		}
	}

	// More than a page, over several commits.
	next := int64(100)
	for range 3 {
		var as []meta.AbortedTxn
		for i := range int64(100) {
			as = append(as, meta.AbortedTxn{ProducerID: 9, First: next + i, Last: next + i})
		}
		commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, next, 100), Aborted: as})
		next += 100
	}
	got, err := s.AbortedTxns(ctx, id, 0, 100, next, 0)
	if err != nil || len(got) != 300 || got[0].Last != 100 || got[299].Last != 399 {
		t.Fatalf("AbortedTxns over 300 keys: %d, %v", len(got), err)
	}

	small := newStore(t, func(c *meta.Config) { c.MaxTxnOps = 8 })
	sid := createTopic(t, small, "small", 1).ID
	assign(t, small, sid, 0, "b1")
	many := make([]meta.AbortedTxn, 7)
	for i := range many {
		many[i] = meta.AbortedTxn{ProducerID: int64(i), First: int64(i), Last: int64(i)}
	}
	if errs := small.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(sid, 0, 0, 10), Aborted: many}}); !errors.Is(errs[0], meta.ErrInvalidEntry) {
		t.Fatalf("commit of 9 puts with MaxTxnOps 8: %v, want ErrInvalidEntry", errs[0])
	}
}

// TestAbortedFollowLogStart: retention and DeleteRecords drop the aborted
// transactions whose markers fall below the new log start, and deleting
// the topic drops the rest.
func TestAbortedFollowLogStart(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "abortlog", 1)
	id := top.ID
	assign(t, s, id, 0, "b1")
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10), Aborted: []meta.AbortedTxn{{ProducerID: 1, First: 0, Last: 5}}})
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 10), Aborted: []meta.AbortedTxn{{ProducerID: 2, First: 12, Last: 15}}})
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 20, 10), Aborted: []meta.AbortedTxn{{ProducerID: 3, First: 8, Last: 25}}})
	lasts := func() []int64 {
		t.Helper()
		got, err := s.AbortedTxns(ctx, id, 0, 0, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, a := range got {
			out = append(out, a.Last)
		}
		return out
	}
	l, err := s.ReadLayout(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.TruncateSegments(ctx, l, 20); err != nil {
		t.Fatal(err)
	}
	if got := lasts(); !slices.Equal(got, []int64{25}) {
		t.Fatalf("after retention to 20: aborted markers at %v, want [25]", got)
	}
	if _, err := s.SetLogStart(ctx, id, 0, 26); err != nil {
		t.Fatal(err)
	}
	if got := lasts(); len(got) != 0 {
		t.Fatalf("after DeleteRecords to 26: aborted markers at %v, want none", got)
	}
	commit1(t, s, meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 30, 10), Aborted: []meta.AbortedTxn{{ProducerID: 4, First: 30, Last: 35}}})
	if err := s.DeleteTopic(ctx, top.Name); err != nil {
		t.Fatal(err)
	}
	if got := lasts(); len(got) != 0 {
		t.Fatalf("after deleting the topic: aborted markers at %v, want none", got)
	}
}

func TestBoundProducersKeepsOpenTxns(t *testing.T) {
	m := map[int64]meta.ProducerState{}
	n := int64(meta.MaxProducersPerPartition + 8)
	for i := range n {
		ps := meta.ProducerState{LastOffset: i}
		if i < 10 {
			ps.Txn = &meta.OpenTxn{First: i} // the ten oldest
		}
		m[i] = ps
	}
	meta.BoundProducers(m)
	if len(m) != meta.MaxProducersPerPartition {
		t.Fatalf("%d producers left, want %d", len(m), meta.MaxProducersPerPartition)
	}
	for i := range n {
		_, kept := m[i]
		if want := i < 10 || i >= 18; kept != want {
			t.Fatalf("producer %d kept %v, want %v", i, kept, want)
		}
	}
	all := map[int64]meta.ProducerState{}
	for i := range n {
		all[i] = meta.ProducerState{LastOffset: i, Txn: &meta.OpenTxn{First: i}}
	}
	if meta.BoundProducers(all); len(all) != int(n) {
		t.Fatalf("%d producers with open transactions left, want all %d", len(all), n)
	}
}
