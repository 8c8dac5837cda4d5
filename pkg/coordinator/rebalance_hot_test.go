package coordinator

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// loadSim is a cluster whose partitions carry fixed produce rates: it
// reports each broker's rate and busiest partitions as brokers do, and
// applies planned moves.
type loadSim struct {
	brokers []string
	parts   []meta.PartitionState
	rate    map[int32]float64 // by partition
}

func (s *loadSim) infos() []meta.BrokerInfo {
	var out []meta.BrokerInfo
	for _, id := range s.brokers {
		info := meta.BrokerInfo{ID: id}
		for _, p := range s.parts {
			if p.Broker == id {
				info.BytesInPerSec += s.rate[p.Partition]
				info.HotPartitions = append(info.HotPartitions, meta.PartitionLoad{TopicID: p.TopicID, Partition: p.Partition, BytesInPerSec: s.rate[p.Partition]})
			}
		}
		slices.SortFunc(info.HotPartitions, func(a, b meta.PartitionLoad) int { return cmp.Compare(b.BytesInPerSec, a.BytesInPerSec) })
		info.HotPartitions = info.HotPartitions[:min(len(info.HotPartitions), meta.MaxHotPartitions)]
		out = append(out, info)
	}
	return out
}

func (s *loadSim) apply(ms []move) {
	for _, m := range ms {
		i := slices.IndexFunc(s.parts, func(p meta.PartitionState) bool { return p.Partition == m.From.Partition })
		s.parts[i].Broker = m.To
	}
}

// spread returns the busiest broker's rate over the mean, and how many
// partitions the broker of partition 0 owns.
func (s *loadSim) spread() (float64, int) {
	total, top, n := 0.0, 0.0, 0
	for _, b := range s.infos() {
		total += b.BytesInPerSec
		top = max(top, b.BytesInPerSec)
	}
	for _, p := range s.parts {
		if p.Broker == s.parts[0].Broker {
			n++
		}
	}
	return top / (total / float64(len(s.brokers))), n
}

// TestPlanRebalanceHotPartition: one partition of 12 takes 60 % of 100
// MiB/s, and partition counts are equal. Rounds of planning move load
// until no broker exceeds the mean by more than 25 % where that is
// possible (two brokers), or the hot partition is alone on its broker
// where it is not (three: 60 % is already 80 % over a third); then the
// plan is empty round after round (no flapping).
func TestPlanRebalanceHotPartition(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		brokers   int
		maxSpread float64
	}{{2, 1.25}, {3, 1.81}} {
		t.Run(fmt.Sprintf("%d brokers", tt.brokers), func(t *testing.T) {
			s := &loadSim{rate: map[int32]float64{}}
			for i := range tt.brokers {
				s.brokers = append(s.brokers, fmt.Sprintf("b%d", i+1))
			}
			for p := range int32(12) {
				s.parts = append(s.parts, meta.PartitionState{TopicID: "t", Partition: p, Broker: s.brokers[int(p)%tt.brokers]})
				s.rate[p] = 40 * mib / 11
			}
			s.rate[0] = 60 * mib
			before, _ := s.spread()
			moves, quiet := 0, 0
			for round := 0; round < 20 && quiet < 3; round++ {
				plan := planRebalance(s.parts, s.infos(), DefaultRebalanceMaxMoves, true)
				if len(plan) == 0 {
					quiet++
					continue
				}
				if quiet > 0 {
					t.Fatalf("round %d moved %d partitions after a quiet round: flapping", round, len(plan))
				}
				moves += len(plan)
				s.apply(plan)
			}
			after, alone := s.spread()
			t.Logf("%d brokers: busiest at %.2f× the mean before, %.2f× after %d moves; the hot partition's broker owns %d",
				tt.brokers, before, after, moves, alone)
			if quiet < 3 {
				t.Fatal("planning never settled")
			}
			if after > tt.maxSpread || alone != 1 {
				t.Fatalf("busiest broker at %.2f× the mean, hot partition's broker owns %d partitions", after, alone)
			}
		})
	}
}
