package meta_test

import (
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestCompactSwapManyEntries swaps more old entries than one transaction
// may compare (a partition that went a long time without compaction): the
// swap must still fit etcd's --max-txn-ops and apply.
func TestCompactSwapManyEntries(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	sizes := make([]int64, 3*meta.DefaultMaxTxnOps)
	for i := range sizes {
		sizes[i] = 1
	}
	id := commitRun(t, s, sizes...)
	l, err := s.ReadLayout(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	merged := entry(id, 0, 0, int64(len(sizes)))
	merged.ObjectKey = "compacted/0"
	if err := s.SwapSegments(ctx, l, l.Entries, []meta.SegmentEntry{merged}); err != nil {
		t.Fatal(err)
	}
	segs, err := s.ListSegments(ctx, id, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 || segs[0].ObjectKey != "compacted/0" || segs[0].LastOffset != int64(len(sizes))-1 {
		t.Fatalf("after the swap: %+v", segs)
	}
}
