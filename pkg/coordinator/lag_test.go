package coordinator

import (
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestGroupLagMetric: the leader's lag metric is the high watermark minus
// the committed offset, counted from the log start once retention passed
// the committed offset, for every partition a group committed to.
func TestGroupLagMetric(t *testing.T) {
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	ctx := testCtx(t)
	top, err := store.CreateTopic(ctx, meta.Topic{Name: "lagged", Partitions: 3, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for p, last := range map[int32]int64{0: 9, 1: 4} { // next offsets 10 and 5
		st, err := store.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.AssignPartition(ctx, st, "b1"); err != nil {
			t.Fatal(err)
		}
		e := meta.SegmentEntry{TopicID: top.ID, Partition: p, ObjectKey: "seg/lag", ObjectSize: 1000, Len: 100, LastOffset: last, MinTimestamp: 1, MaxTimestamp: 2}
		if errs := store.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: e}}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	if _, err := store.SetLogStart(ctx, top.ID, 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := store.CommitOffsets(ctx, "g", []meta.CommittedOffset{{TopicID: top.ID, Partition: 0, Offset: 4}, {TopicID: top.ID, Partition: 1, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	c := startCoordinator(t, store, "c1", func(c *Config) { c.LagInterval = 50 * time.Millisecond })
	lag := func(p string) float64 {
		return testenv.MetricValue(t, c.metrics.groupLag.WithLabelValues("g", "lagged", p))
	}
	waitFor(t, "the lag of both committed partitions", func() bool { return lag("0") == 6 && lag("1") == 2 })
}
