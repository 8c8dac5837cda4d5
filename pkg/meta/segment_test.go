package meta_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// commitRun commits entries of the given sizes to a fresh partition and
// returns the topic id.
func commitRun(t *testing.T, s *meta.Store, sizes ...int64) string {
	t.Helper()
	ctx := testCtx(t)
	top := createTopic(t, s, "seg", 1)
	assign(t, s, top.ID, 0, "b1")
	next := int64(0)
	for _, n := range sizes {
		if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, next, n)}}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		next += n
	}
	return top.ID
}

func TestFindSegment(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	// Entries: 0..9, 10..10, 11..110, 111..112.
	id := commitRun(t, s, 10, 1, 100, 2)
	tests := []struct {
		offset    int64
		wantFirst int64
		wantErr   error
	}{
		{0, 0, nil}, {5, 0, nil}, {9, 0, nil}, {10, 10, nil}, {11, 11, nil},
		{60, 11, nil}, {110, 11, nil}, {111, 111, nil}, {112, 111, nil},
		{113, 0, meta.ErrNotFound}, {1 << 40, 0, meta.ErrNotFound}, {-1, 0, meta.ErrNotFound},
	}
	for _, tt := range tests {
		e, err := s.FindSegment(ctx, id, 0, tt.offset)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("FindSegment(%d) = %+v, %v; want %v", tt.offset, e, err, tt.wantErr)
			}
			continue
		}
		if err != nil || e.FirstOffset != tt.wantFirst || e.TopicID != id || e.Partition != 0 {
			t.Errorf("FindSegment(%d) = %+v, %v; want entry at %d", tt.offset, e, err, tt.wantFirst)
		}
	}
	// Another partition with no data finds nothing.
	if _, err := s.FindSegment(ctx, id, 1, 0); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("empty partition: %v, want ErrNotFound", err)
	}
}

// TestSegmentsStartingAt lists the entries whose first offset is at or
// after an offset, in one read, up to a limit.
func TestSegmentsStartingAt(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	// Entries: 0..9, 10..10, 11..110, 111..112.
	id := commitRun(t, s, 10, 1, 100, 2)
	for _, tt := range []struct {
		first int64
		limit int
		want  []int64
	}{
		{10, 16, []int64{10, 11, 111}}, {10, 2, []int64{10, 11}}, {5, 16, []int64{10, 11, 111}},
		{0, 1, []int64{0}}, {111, 16, []int64{111}}, {113, 16, nil},
	} {
		es, err := s.SegmentsStartingAt(ctx, id, 0, tt.first, tt.limit)
		var got []int64
		for _, e := range es {
			got = append(got, e.FirstOffset)
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("SegmentsStartingAt(%d, %d) = %v, %v; want %v", tt.first, tt.limit, got, err, tt.want)
		}
	}
}

func TestListSegmentsPages(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	// More entries than one page of the iterator (256).
	sizes := make([]int64, 600)
	for i := range sizes {
		sizes[i] = int64(i%3 + 1)
	}
	id := commitRun(t, s, sizes...)

	all, err := s.ListSegments(ctx, id, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(sizes) {
		t.Fatalf("%d entries, want %d", len(all), len(sizes))
	}
	for i := 1; i < len(all); i++ {
		if all[i].FirstOffset != all[i-1].LastOffset+1 {
			t.Fatalf("entry %d starts at %d after %d", i, all[i].FirstOffset, all[i-1].LastOffset)
		}
	}
	// From the middle of an entry: that entry comes first.
	mid := all[300]
	from, err := s.ListSegments(ctx, id, 0, mid.LastOffset, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(from) != 3 || from[0].FirstOffset != mid.FirstOffset || from[2].FirstOffset != all[302].FirstOffset {
		t.Fatalf("ListSegments from %d = %+v", mid.LastOffset, from)
	}
}

func TestFindSegmentByTime(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	id := commitRun(t, s, 10, 10, 10) // timestamps 0..29000 ms, 1000 ms per offset
	tests := []struct {
		ts        int64
		wantFirst int64
		wantErr   error
	}{
		{-5, 0, nil}, {0, 0, nil}, {9000, 0, nil}, {9001, 10, nil}, {25000, 20, nil}, {29000, 20, nil},
		{29001, 0, meta.ErrNotFound},
	}
	for _, tt := range tests {
		e, err := s.FindSegmentByTime(ctx, id, 0, tt.ts)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("FindSegmentByTime(%d) = %v, want %v", tt.ts, err, tt.wantErr)
			}
			continue
		}
		if err != nil || e.FirstOffset != tt.wantFirst {
			t.Errorf("FindSegmentByTime(%d) = %+v, %v; want entry at %d", tt.ts, e, err, tt.wantFirst)
		}
	}
}
