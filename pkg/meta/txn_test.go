package meta_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestValidateTxnID(t *testing.T) {
	for _, id := range []string{"a", "orders/eu-1 ✓", strings.Repeat("x", meta.MaxTxnIDLen)} {
		if err := meta.ValidateTxnID(id); err != nil {
			t.Errorf("ValidateTxnID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", meta.MaxTxnIDLen+1), "bad\xff"} {
		err := meta.ValidateTxnID(id)
		if !errors.Is(err, meta.ErrInvalidTxnID) || !errors.Is(err, apierr.ErrInvalidRequest) {
			t.Errorf("ValidateTxnID(%.20q) = %v, want ErrInvalidTxnID (INVALID_REQUEST)", id, err)
		}
	}
}

func newTxn(id string, pid int64) meta.TxnState {
	return meta.TxnState{ID: id, ProducerID: pid, Status: meta.TxnEmpty, TimeoutMs: 60000, Principal: "alice", UpdatedMs: 1}
}

func TestTxnCreateGetPut(t *testing.T) {
	s, ctx := newStore(t), testCtx(t)
	st, err := s.GetTxn(ctx, "t1")
	if err != nil || st.Revision != 0 || st.ID != "t1" {
		t.Fatalf("GetTxn of a new id = %+v, %v; want Revision 0", st, err)
	}
	st, err = s.CreateTxn(ctx, newTxn("t1", 42))
	if err != nil || st.Revision == 0 {
		t.Fatalf("CreateTxn = %+v, %v", st, err)
	}
	if _, err := s.CreateTxn(ctx, newTxn("t1", 43)); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("CreateTxn of an existing id: %v, want ErrConflict", err)
	}
	if _, err := s.CreateTxn(ctx, newTxn("t2", 42)); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("CreateTxn with a taken producer id: %v, want ErrConflict", err)
	}
	if id, err := s.TxnIDOf(ctx, 42); err != nil || id != "t1" {
		t.Fatalf("TxnIDOf(42) = %q, %v", id, err)
	}
	if _, err := s.TxnIDOf(ctx, 43); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("TxnIDOf of an unknown producer: %v, want ErrNotFound", err)
	}

	next := st
	next.Status, next.Epoch, next.Recoverable = meta.TxnOngoing, 1, true
	next.Partitions = []meta.TxnPartition{{Topic: "orders", TopicID: "abc", Partition: 3}}
	next.Groups = []string{"billing"}
	next.Offsets = []meta.TxnOffset{{Group: "billing", TopicID: "abc", Partition: 3, Offset: 17, LeaderEpoch: 2, Metadata: "m"}}
	next.StartedMs = 5
	put, err := s.PutTxn(ctx, next)
	if err != nil || put.Revision <= st.Revision {
		t.Fatalf("PutTxn = %+v, %v", put, err)
	}
	if _, err := s.PutTxn(ctx, next); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("PutTxn at a stale revision: %v, want ErrConflict", err)
	}
	got, err := s.GetTxn(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", put) {
		t.Fatalf("GetTxn = %+v\nwant      %+v", got, put)
	}
}

func TestTxnPutMovesProducerID(t *testing.T) {
	s, ctx := newStore(t), testCtx(t)
	st, err := s.CreateTxn(ctx, newTxn("t1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTxn(ctx, newTxn("t2", 2)); err != nil {
		t.Fatal(err)
	}
	// A producer id another transactional id holds: refused, nothing moved.
	taken := st
	taken.ProducerID = 2
	if _, err := s.PutTxn(ctx, taken); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("PutTxn onto a taken producer id: %v, want ErrConflict", err)
	}
	if again, _ := s.GetTxn(ctx, "t1"); again.Revision != st.Revision {
		t.Fatalf("a refused move changed the state: revision %d, want %d", again.Revision, st.Revision)
	}
	moved := st
	moved.ProducerID = 3
	if moved, err = s.PutTxn(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TxnIDOf(ctx, 1); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("old producer id still maps: %v", err)
	}
	if id, err := s.TxnIDOf(ctx, 3); err != nil || id != "t1" {
		t.Fatalf("TxnIDOf(3) = %q, %v", id, err)
	}
	if id, _ := s.TxnIDOf(ctx, 2); id != "t2" {
		t.Fatalf("TxnIDOf(2) = %q, want t2", id)
	}
	// A stale writer that still thinks the id has producer 1 loses.
	stale := st
	stale.Epoch = 5
	if _, err := s.PutTxn(ctx, stale); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("stale PutTxn after a move: %v, want ErrConflict", err)
	}
	if got, _ := s.GetTxn(ctx, "t1"); got.ProducerID != 3 || got.Revision != moved.Revision {
		t.Fatalf("state after the stale write: %+v", got)
	}
}

func TestTxnRejectsBadStates(t *testing.T) {
	s, ctx := newStore(t), testCtx(t)
	bad := newTxn("t1", 1)
	bad.Status = "weird"
	if _, err := s.CreateTxn(ctx, bad); err == nil {
		t.Fatal("CreateTxn accepted an unknown status")
	}
	if _, err := s.CreateTxn(ctx, newTxn("", 1)); !errors.Is(err, meta.ErrInvalidTxnID) {
		t.Fatalf("CreateTxn with an empty id: %v", err)
	}
	big := newTxn("t1", 1)
	for i := range 20000 {
		big.Partitions = append(big.Partitions, meta.TxnPartition{Topic: strings.Repeat("t", 40), TopicID: fmt.Sprint(i), Partition: int32(i)})
	}
	if _, err := s.CreateTxn(ctx, big); !errors.Is(err, meta.ErrTxnTooLarge) {
		t.Fatalf("CreateTxn of %d partitions: %v, want ErrTxnTooLarge", len(big.Partitions), err)
	}
}

func TestTxnListAndWatch(t *testing.T) {
	s, ctx := newStore(t), testCtx(t)
	const n = 70 // more than one page
	for i := range n {
		if _, err := s.CreateTxn(ctx, newTxn(fmt.Sprintf("t%03d", i), int64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	list, rev, err := s.ListTxns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n || list[0].ID != "t000" || list[n-1].ID != fmt.Sprintf("t%03d", n-1) || list[5].Revision == 0 {
		t.Fatalf("ListTxns: %d states, first %+v", len(list), list[0])
	}
	ch := s.WatchTxns(ctx, rev)
	next := list[7]
	next.Status = meta.TxnOngoing
	put, err := s.PutTxn(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Err != nil || ev.Type != meta.EventPut || ev.Value.ID != "t007" || ev.Value.Status != meta.TxnOngoing || ev.Revision != put.Revision {
			t.Fatalf("watch event %+v, want the put of t007 at %d", ev, put.Revision)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event")
	}
}
