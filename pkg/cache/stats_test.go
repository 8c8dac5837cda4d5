package cache_test

import (
	"context"
	"testing"

	"github.com/strata-mq/strata/pkg/cache"
)

// TestClassStats: reads are counted by class, and a warm read fills the
// hot budget so that the tail read after it hits.
func TestClassStats(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, 1000, 100)
	obj := newObject(300)
	reads := []struct {
		class cache.Class
		off   int64
	}{
		{cache.Warm, 0},   // load
		{cache.Hot, 0},    // hit
		{cache.Cold, 0},   // hit
		{cache.Cold, 200}, // load
		{cache.Hot, 200},  // hit: promoted to hot
	}
	for _, r := range reads {
		if _, err := c.ReadRangeClass(ctx, r.class, "o", 300, r.off, 100, obj.load); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	want := [3]cache.ClassStats{
		cache.Hot:  {Hits: 2},
		cache.Cold: {Hits: 1, Loads: 1},
		cache.Warm: {Loads: 1},
	}
	for class, w := range want {
		if got := st.Classes[class]; got != w {
			t.Errorf("%v: %+v, want %+v", cache.Class(class), got, w)
		}
	}
	if st.HotBytes != 200 || st.ColdBytes != 0 {
		t.Errorf("%+v, want 200 hot bytes and no cold", st)
	}
	if r := st.Classes[cache.Hot].HitRatio(); r != 1 {
		t.Errorf("hot hit ratio %v, want 1", r)
	}
}
