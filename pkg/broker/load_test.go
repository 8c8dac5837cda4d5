package broker

import (
	"fmt"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestHotPartitions: the load report names the busiest partitions by
// their rate over the interval, busiest first, at most
// meta.MaxHotPartitions of them; idle partitions are left out, and one
// taken anew (its count restarted) counts from zero.
func TestHotPartitions(t *testing.T) {
	before, now := map[meta.PartitionID]int64{}, map[meta.PartitionID]int64{}
	key := func(topicID string, p int32) meta.PartitionID {
		return meta.PartitionID{TopicID: topicID, Partition: p}
	}
	for i := range int32(40) {
		k := key("t", i)
		before[k], now[k] = 1000, 1000+int64(i)*10 // partition i: i bytes/s over 10 s
	}
	now[key("t", 0)] = 1000                              // idle
	now[key("u", 0)] = 5000                              // new since: 500 bytes/s
	before[key("t", 39)], now[key("t", 39)] = 90000, 100 // restarted: 10 bytes/s
	got := hotPartitions(before, now, 10)
	if len(got) != meta.MaxHotPartitions {
		t.Fatalf("%d partitions reported, want %d", len(got), meta.MaxHotPartitions)
	}
	want := []string{"u/0@500", "t/38@38", "t/37@37"}
	for i, w := range want {
		if g := fmt.Sprintf("%s/%d@%.0f", got[i].TopicID, got[i].Partition, got[i].BytesInPerSec); g != w {
			t.Errorf("report[%d] = %s, want %s", i, g, w)
		}
	}
	if last := got[len(got)-1]; last.BytesInPerSec != 24 {
		t.Errorf("last reported rate %v, want 24 (the 16th busiest)", last.BytesInPerSec)
	}
}
