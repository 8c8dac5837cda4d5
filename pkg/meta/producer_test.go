package meta_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestCommitProducers pins that idempotent-producer state is written by the
// fencing commit, compared by it, and carried over by an assignment, so
// that a new owner after failover knows which batches were committed.
func TestCommitProducers(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	id := createTopic(t, s, "producers", 1).ID
	assign(t, s, id, 0, "b1")

	p1 := map[int64]meta.ProducerState{7: {FirstSeq: 0, LastSeq: 9, FirstOffset: 0, LastOffset: 9}}
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 0, 10), NewProducers: p1}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	p2 := maps.Clone(p1)
	p2[7] = meta.ProducerState{FirstSeq: 10, LastSeq: 14, FirstOffset: 10, LastOffset: 14}
	p2[3] = meta.ProducerState{Epoch: 1, FirstSeq: 0, LastSeq: 0, FirstOffset: 15, LastOffset: 15}

	tests := []struct {
		name   string
		commit meta.Commit
		want   error
	}{
		{"expects no producers", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 6), NewProducers: p2}, meta.ErrOffsetMismatch},
		{"expects other producers", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 6), Producers: p2, NewProducers: p2}, meta.ErrOffsetMismatch},
		{"right producers", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 10, 6), Producers: p1, NewProducers: p2}, nil},
		{"unchanged producers", meta.Commit{Broker: "b1", Epoch: 1, Entry: entry(id, 0, 16, 1), Producers: p2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if errs := s.CommitSegments(ctx, []meta.Commit{tt.commit}); !errors.Is(errs[0], tt.want) {
				t.Fatalf("CommitSegments = %v, want %v", errs[0], tt.want)
			}
		})
	}
	st, err := s.GetPartition(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.NextOffset != 17 || !maps.Equal(st.Producers, p2) {
		t.Fatalf("state %+v, want next offset 17 and producers %v", st, p2)
	}
	// A new owner inherits the producers.
	moved := assign(t, s, id, 0, "b2")
	if !maps.Equal(moved.Producers, p2) {
		t.Fatalf("after assignment producers %v, want %v", moved.Producers, p2)
	}
	st, err = s.GetPartition(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(st.Producers, p2) || st.Broker != "b2" || st.Epoch != 2 {
		t.Fatalf("stored state after assignment %+v", st)
	}
	// And commits with them.
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b2", Epoch: 2, Entry: entry(id, 0, 17, 1), Producers: p2}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func TestBoundProducers(t *testing.T) {
	m := map[int64]meta.ProducerState{}
	for i := range int64(meta.MaxProducersPerPartition + 5) {
		m[100-i] = meta.ProducerState{LastOffset: i}
	}
	meta.BoundProducers(m)
	if len(m) != meta.MaxProducersPerPartition {
		t.Fatalf("%d producers left, want %d", len(m), meta.MaxProducersPerPartition)
	}
	for id, ps := range m {
		if ps.LastOffset < 5 {
			t.Fatalf("producer %d with last offset %d kept; the 5 oldest should go", id, ps.LastOffset)
		}
	}
}
