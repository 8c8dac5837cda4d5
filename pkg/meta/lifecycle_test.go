package meta_test

import (
	"errors"
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
	if _, err := s.SwapSegments(ctx, l, l.Entries, []meta.SegmentEntry{merged}); err != nil {
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

// TestSwapReturnsLayout: the layout a swap returns is the partition as the
// swap left it, so a second swap of later entries against it applies
// without reading the layout again, while a swap against the snapshot the
// first one started from is refused (the first bumped the fence).
func TestSwapReturnsLayout(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	id := commitRun(t, s, 1, 1, 1, 1)
	l, err := s.ReadLayout(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	merge := func(from meta.Layout, i int, key string) (meta.Layout, error) {
		m := entry(id, 0, from.Entries[i].FirstOffset, 2)
		m.ObjectKey = key
		return s.SwapSegments(ctx, from, from.Entries[i:i+2], []meta.SegmentEntry{m})
	}
	after, err := merge(l, 0, "compacted/0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := merge(l, 2, "compacted/stale"); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("swap against the snapshot before the first swap: %v, want ErrConflict", err)
	}
	if len(after.Entries) != 3 || after.Entries[0].ObjectKey != "compacted/0" {
		t.Fatalf("layout after the first swap: %+v", after.Entries)
	}
	final, err := merge(after, 1, "compacted/2")
	if err != nil {
		t.Fatalf("second swap against the returned layout: %v", err)
	}
	read, err := s.ReadLayout(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Entries) != 2 || len(final.Entries) != 2 {
		t.Fatalf("after both swaps: read %+v, returned %+v", read.Entries, final.Entries)
	}
	for i := range read.Entries {
		if read.Entries[i].ObjectKey != final.Entries[i].ObjectKey || read.Entries[i].FirstOffset != final.Entries[i].FirstOffset {
			t.Fatalf("entry %d: read %+v, returned %+v", i, read.Entries[i], final.Entries[i])
		}
	}
}
