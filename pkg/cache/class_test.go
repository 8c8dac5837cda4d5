package cache_test

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/pkg/cache"
)

// TestColdScanKeepsHotTail: a reader scanning many cold blocks evicts only
// cold blocks once the hot tail and the cold budget are full, so the hot
// blocks keep hitting.
func TestColdScanKeepsHotTail(t *testing.T) {
	ctx := context.Background()
	c, err := cache.New(cache.Config{MaxBytes: 1000, BlockSize: 100, ColdBytes: 300})
	if err != nil {
		t.Fatal(err)
	}
	hot, cold := newObject(700), newObject(100_000)
	if _, err := c.ReadRange(ctx, "hot", 700, 0, 700, hot.load); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < 100_000; off += 100 {
		if _, err := c.ReadRangeClass(ctx, cache.Cold, "cold", 100_000, off, 100, cold.load); err != nil {
			t.Fatal(err)
		}
	}
	before := c.Stats()
	if before.ColdBytes != 300 || before.HotBytes != 700 {
		t.Fatalf("after the scan: %+v, want 700 hot and 300 cold bytes", before)
	}
	if _, err := c.ReadRange(ctx, "hot", 700, 0, 700, hot.load); err != nil {
		t.Fatal(err)
	}
	if after := c.Stats(); after.Misses != before.Misses || after.Hits != before.Hits+7 {
		t.Fatalf("hot re-read: %+v after %+v, want 7 hits and no miss", after, before)
	}
	// A hot read of a cold block moves it to the hot budget.
	if _, err := c.ReadRange(ctx, "cold", 100_000, 99_900, 100, cold.load); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.ColdBytes != 200 || st.HotBytes != 800 {
		t.Fatalf("after promotion: %+v, want 800 hot and 200 cold", st)
	}
}
