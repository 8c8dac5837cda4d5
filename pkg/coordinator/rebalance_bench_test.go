package coordinator

import (
	"fmt"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// BenchmarkPlanRebalance plans a round of load moves for 10,000
// partitions on four brokers, one of them 60 % above the mean with its
// partitions unreported (so they share one estimated rate, 1.3 KiB/s):
// no single move or swap gains loadMinGain, so the plan is empty after
// trying each, and the placement pass at every broker's load report does
// it again while the load stays uneven.
//
//	go test ./pkg/coordinator -run '^$' -bench PlanRebalance
func BenchmarkPlanRebalance(b *testing.B) {
	const mib = 1 << 20
	brokers := []meta.BrokerInfo{
		{ID: "b0", BytesInPerSec: 3.2 * mib},
		{ID: "b1", BytesInPerSec: 1.6 * mib},
		{ID: "b2", BytesInPerSec: 1.6 * mib},
		{ID: "b3", BytesInPerSec: 1.6 * mib},
	}
	var parts []meta.PartitionState
	for p := range int32(10_000) {
		parts = append(parts, meta.PartitionState{TopicID: "t", Partition: p, Broker: fmt.Sprintf("b%d", p%4)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if plan := planRebalance(parts, brokers, DefaultRebalanceMaxMoves, true); len(plan) != 0 {
			b.Fatalf("planned %d moves of partitions too quiet to gain anything", len(plan))
		}
	}
}
