package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

func TestPlanRebalance(t *testing.T) {
	ps := func(specs ...string) []meta.PartitionState {
		var out []meta.PartitionState
		for i, b := range specs {
			out = append(out, meta.PartitionState{TopicID: "t", Partition: int32(i), Broker: b})
		}
		return out
	}
	type br struct {
		id   string
		rate float64
	}
	brokers := func(bs ...br) []meta.BrokerInfo {
		var out []meta.BrokerInfo
		for _, b := range bs {
			out = append(out, meta.BrokerInfo{ID: b.id, BytesInPerSec: b.rate, Draining: b.id[0] == 'd'})
		}
		return out
	}
	const mib = 1 << 20
	tests := []struct {
		name     string
		parts    []meta.PartitionState
		brokers  []meta.BrokerInfo
		maxMoves int
		byLoad   bool
		want     []string // "partition->broker"
	}{
		{"one to four brokers", ps("b1", "b1", "b1", "b1", "b1", "b1", "b1", "b1"),
			brokers(br{"b1", 0}, br{"b2", 0}, br{"b3", 0}, br{"b4", 0}), 8, true,
			[]string{"7->b2", "6->b3", "5->b4", "4->b2", "3->b3", "2->b4"}},
		{"bounded per round", ps("b1", "b1", "b1", "b1"), brokers(br{"b1", 0}, br{"b2", 0}), 1, true, []string{"3->b2"}},
		{"off by one is balanced", ps("b1", "b1", "b2"), brokers(br{"b1", 0}, br{"b2", 0}), 8, true, nil},
		{"draining broker neither gives nor takes", ps("d1", "d1", "d1", "b1"), brokers(br{"d1", 0}, br{"b1", 0}, br{"b2", 0}), 8, true, nil},
		{"single broker", ps("b1", "b1"), brokers(br{"b1", 0}), 8, true, nil},
		{"hot broker gives, then swaps", ps("b1", "b1", "b1", "b2", "b2", "b3", "b3"),
			brokers(br{"b1", 30 * mib}, br{"b2", 2 * mib}, br{"b3", 4 * mib}), 8, true, []string{"2->b2", "1->b3", "6->b1"}},
		{"load moves bounded per round", ps("b1", "b1", "b1", "b2", "b2", "b3", "b3"),
			brokers(br{"b1", 30 * mib}, br{"b2", 2 * mib}, br{"b3", 4 * mib}), 1, true, []string{"2->b2"}},
		{"load moves damped by interval", ps("b1", "b1", "b1", "b2", "b2", "b3", "b3"),
			brokers(br{"b1", 30 * mib}, br{"b2", 2 * mib}, br{"b3", 4 * mib}), 8, false, nil},
		{"small imbalance is noise", ps("b1", "b1", "b1", "b2", "b2"),
			brokers(br{"b1", 11 * mib}, br{"b2", 10 * mib}), 8, true, nil},
		{"low total rate is noise", ps("b1", "b1", "b1", "b2", "b2"),
			brokers(br{"b1", 1000}, br{"b2", 0}), 8, true, nil},
		{"equal counts still move for load", ps("b1", "b1", "b2", "b2"),
			brokers(br{"b1", 30 * mib}, br{"b2", 0}), 8, true, []string{"1->b2"}},
		{"count step prefers the hot giver", ps("b1", "b1", "b1", "b2", "b2", "b2", "b3"),
			brokers(br{"b1", 1}, br{"b2", 9}, br{"b3", 0}), 1, true, []string{"5->b3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, m := range planRebalance(tt.parts, tt.brokers, tt.maxMoves, tt.byLoad) {
				got = append(got, fmt.Sprintf("%d->%s", m.From.Partition, m.To))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("moves %v, want %v", got, tt.want)
			}
		})
	}
}

// countingStore counts object-store operations.
type countingStore struct {
	objstore.Store
	ops atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte) error {
	c.ops.Add(1)
	return c.Store.Put(ctx, key, data)
}

func (c *countingStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.ops.Add(1)
	return c.Store.Get(ctx, key, off, n)
}

// startBroker runs an in-process broker on store and st.
func startBroker(t testing.TB, m *meta.Store, st objstore.Store, id string) *broker.Server {
	t.Helper()
	b, err := broker.New(broker.Config{ID: id, Meta: m, Store: st, LeaseTTL: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// owners counts partitions per broker in the view.
func ownerCounts(v *meta.View) map[string]int {
	out := map[string]int{}
	for _, p := range v.Partitions() {
		out[p.Broker]++
	}
	return out
}

// TestScaleOutAndDrain starts one broker with every partition, adds three
// more and waits for a fair share each (graceful hand-offs, bounded
// rounds); then drains one broker and waits until its partitions live on
// the others.
func TestScaleOutAndDrain(t *testing.T) {
	store := newStore(t, etcd.Endpoints(), fmt.Sprintf("/t-scale-%d", time.Now().UnixNano()))
	dir, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fs := &countingStore{Store: dir}
	c := startCoordinator(t, store, "c1", func(c *Config) { c.RebalanceInterval = 100 * time.Millisecond })
	cli := client(t, c)
	view := startView(t, store)
	waitFor(t, "leadership", c.IsLeader)
	startBroker(t, store, fs, "b0")
	ctx := testCtx(t)
	if _, err := cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "scale", Partitions: 8}); err != nil {
		t.Fatal(err)
	}
	waitView(t, view, "b0 owns all 8", func() bool { return ownerCounts(view)["b0"] == 8 })

	start := time.Now()
	for i := 1; i <= 3; i++ {
		startBroker(t, store, fs, fmt.Sprintf("b%d", i))
	}
	waitView(t, view, "2 partitions per broker", func() bool {
		o := ownerCounts(view)
		return o["b0"] == 2 && o["b1"] == 2 && o["b2"] == 2 && o["b3"] == 2
	})
	t.Logf("rebalanced 1 -> 4 brokers in %v", time.Since(start))

	start = time.Now()
	resp, err := cli.DrainBroker(ctx, &stratav1.DrainBrokerRequest{BrokerId: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Released) != 2 {
		t.Fatalf("drain released %v, want 2 partitions", resp.Released)
	}
	waitView(t, view, "b1 drained, partitions owned by others", func() bool {
		o := ownerCounts(view)
		return o["b1"] == 0 && o[""] == 0 && o["b0"]+o["b2"]+o["b3"] == 8
	})
	t.Logf("drained in %v", time.Since(start))
	// Moving partitions (no produce load here) read and wrote no object.
	if n := fs.ops.Load(); n != 0 {
		t.Fatalf("moves did %d object-store operations, want 0", n)
	}
	if _, err := cli.DrainBroker(ctx, &stratav1.DrainBrokerRequest{BrokerId: "nope"}); err == nil {
		t.Fatal("draining an unknown broker succeeded")
	}
}

// TestUnbalancedCoversPlanRebalance: on random spreads of partitions,
// loads and hot partitions over live, draining and departed brokers,
// whenever planRebalance plans a move unbalanced says so, so that the
// placement pass that asks unbalanced first never skips a needed move.
func TestUnbalancedCoversPlanRebalance(t *testing.T) {
	const mib = 1 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	var skipped, planned int
	for trial := range 5000 {
		var brokers []meta.BrokerInfo
		for i := range 1 + rng.IntN(4) {
			b := meta.BrokerInfo{ID: fmt.Sprintf("b%d", i), Draining: rng.IntN(5) == 0}
			if rng.IntN(2) == 0 {
				b.BytesInPerSec = rng.Float64() * 2 * mib
			}
			brokers = append(brokers, b)
		}
		owners := append([]string{"gone", ""}, func() (ids []string) {
			for _, b := range brokers {
				ids = append(ids, b.ID)
			}
			return ids
		}()...)
		var parts []meta.PartitionState
		counts := map[string]int{}
		for p := range int32(rng.IntN(12)) {
			st := meta.PartitionState{TopicID: "t", Partition: p, Broker: owners[rng.IntN(len(owners))]}
			if st.Broker != "" {
				counts[st.Broker]++
			}
			parts = append(parts, st)
			if i := rng.IntN(len(brokers) + 2); i < len(brokers) && st.Broker == brokers[i].ID {
				brokers[i].HotPartitions = append(brokers[i].HotPartitions, meta.PartitionLoad{TopicID: "t", Partition: p, BytesInPerSec: rng.Float64() * mib})
			}
		}
		byLoad := rng.IntN(2) == 0
		plan := planRebalance(parts, brokers, DefaultRebalanceMaxMoves, byLoad)
		if !unbalanced(counts, brokers, byLoad) {
			skipped++
			if len(plan) > 0 {
				t.Fatalf("trial %d: unbalanced said no move, planRebalance planned %+v\nparts %+v\nbrokers %+v", trial, plan, parts, brokers)
			}
		}
		if len(plan) > 0 {
			planned++
		}
	}
	if skipped < 500 || planned < 500 {
		t.Fatalf("trials skipped %d, planned %d: the random spreads no longer exercise both outcomes", skipped, planned)
	}
}

// TestBestLoadMoveMatchesEveryPair: the binary-searched bestLoadMove
// chooses what trying every pair of partitions chooses, ties included,
// on random rates with many repeats (a broker's unreported partitions
// share one estimated rate).
func TestBestLoadMoveMatchesEveryPair(t *testing.T) {
	const mib = 1 << 20
	everyPair := func(b *balance, hot, cold string, limit float64, swaps bool) (bestI, bestJ int) {
		h, c := b.rate[hot], b.rate[cold]
		bestI, bestJ = -1, -1
		for i := len(b.owned[hot]) - 1; i >= 0; i-- {
			rp := b.prate[partitionID(b.owned[hot][i])]
			if m := max(h-rp, c+rp); m < limit {
				bestI, bestJ, limit = i, -1, m
			}
			for j := len(b.owned[cold]) - 1; swaps && j >= 0; j-- {
				rq := b.prate[partitionID(b.owned[cold][j])]
				if m := max(h-rp+rq, c+rp-rq); rq < rp && m < limit {
					bestI, bestJ, limit = i, j, m
				}
			}
		}
		return bestI, bestJ
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var moves, swaps int
	for trial := range 20000 {
		b := &balance{rate: map[string]float64{}, owned: map[string][]meta.PartitionState{}, prate: map[meta.PartitionID]float64{}}
		levels := make([]float64, 1+rng.IntN(6))
		for k := range levels {
			levels[k] = float64(rng.IntN(8)) * mib / 4
		}
		n := int32(0)
		for _, id := range []string{"hot", "cold"} {
			for range rng.IntN(9) {
				p := meta.PartitionState{TopicID: "t", Partition: n, Broker: id}
				n++
				b.owned[id] = append(b.owned[id], p)
				r := levels[rng.IntN(len(levels))]
				if rng.IntN(4) == 0 {
					r = rng.Float64() * 2 * mib
				}
				b.prate[partitionID(p)] = r
				b.rate[id] += r
			}
		}
		b.rate["hot"] += float64(rng.IntN(4)) * mib
		limit := b.rate["hot"] - rng.Float64()*mib/8
		allow := rng.IntN(4) != 0
		wantI, wantJ := everyPair(b, "hot", "cold", limit, allow)
		gotI, gotJ := b.bestLoadMove("hot", "cold", limit, allow)
		if gotI != wantI || gotJ != wantJ {
			t.Fatalf("trial %d: bestLoadMove = %d, %d; every pair gives %d, %d\nrates %v\nowned %v", trial, gotI, gotJ, wantI, wantJ, b.prate, b.owned)
		}
		switch {
		case wantJ >= 0:
			swaps++
		case wantI >= 0:
			moves++
		}
	}
	if moves < 1000 || swaps < 1000 {
		t.Fatalf("moves %d, swaps %d: the random balances no longer exercise both", moves, swaps)
	}
}
