package coordinator

import (
	"slices"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestPlaceOrphans(t *testing.T) {
	ps := func(specs ...string) []meta.PartitionState {
		var out []meta.PartitionState
		for i, b := range specs {
			out = append(out, meta.PartitionState{TopicID: "t", Partition: int32(i), Broker: b})
		}
		return out
	}
	live := func(ids ...string) []meta.BrokerInfo {
		var out []meta.BrokerInfo
		for _, id := range ids {
			out = append(out, meta.BrokerInfo{ID: id, Draining: id[0] == 'd'})
		}
		return out
	}
	tests := []struct {
		name     string
		parts    []meta.PartitionState
		brokers  []meta.BrokerInfo
		want     []string // broker per assignment, in partition order
		stranded int
	}{
		{"all unassigned, ties by id", ps("", "", "", "", ""), live("b3", "b1", "b2"), []string{"b1", "b2", "b3", "b1", "b2"}, 0},
		{"healthy stays", ps("b1", "b2"), live("b1", "b2"), nil, 0},
		{"dead owner to least loaded", ps("b1", "b1", "gone", "gone", "b2"), live("b1", "b2"), []string{"b2", "b1"}, 0},
		{"draining owner moves, draining gets nothing", ps("d1", "d1", ""), live("d1", "b1", "b2"), []string{"b1", "b2", "b1"}, 0},
		{"no brokers", ps("", "gone"), nil, nil, 2},
		{"only draining brokers", ps("d1", ""), live("d1"), nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, stranded := placeOrphans(tt.parts, tt.brokers)
			var got []string
			seen := map[int32]bool{}
			for _, a := range plan {
				if seen[a.From.Partition] {
					t.Fatalf("partition %d assigned twice", a.From.Partition)
				}
				seen[a.From.Partition] = true
				got = append(got, a.Broker)
			}
			if !slices.Equal(got, tt.want) || stranded != tt.stranded {
				t.Fatalf("plan %v stranded %d, want %v stranded %d", got, stranded, tt.want, tt.stranded)
			}
		})
	}
}

// owners counts the partitions of topicID per owner in v ("" = unassigned).
func owners(v *meta.View, topicID string) map[string]int {
	out := map[string]int{}
	for _, p := range v.Partitions() {
		if p.TopicID == topicID {
			out[p.Broker]++
		}
	}
	return out
}

func register(t *testing.T, store *meta.Store, id string) *meta.Registration {
	t.Helper()
	r, err := store.RegisterBroker(testCtx(t), meta.BrokerInfo{ID: id, Addr: "127.0.0.1:1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(testCtx(t)) })
	return r
}

func TestPlacementFailoverAndDrain(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1")
	waitFor(t, "leader", c.IsLeader)
	v := startView(t, store)
	b1 := register(t, store, "b1")
	b2 := register(t, store, "b2")
	register(t, store, "b3")
	// Without rebalancing (a later step), placement balances only what it
	// places, so the leader must see all three brokers first.
	waitView(t, c.view, "three brokers", func() bool { return len(c.view.Brokers()) == 3 })

	resp, err := client(t, c).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "orders", Partitions: 12})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetTopic().GetId()
	waitView(t, v, "4/4/4", func() bool {
		o := owners(v, id)
		return o["b1"] == 4 && o["b2"] == 4 && o["b3"] == 4
	})
	var committed meta.PartitionState
	for _, p := range v.Partitions() {
		if p.Epoch != 1 {
			t.Fatalf("partition %d epoch %d after first placement, want 1", p.Partition, p.Epoch)
		}
		if p.Broker == "b1" && committed.Broker == "" {
			committed = p
		}
	}

	// b1 commits data, then its registration ends: its partitions move to
	// the survivors with epoch 2 and the same next offset.
	e := meta.SegmentEntry{
		TopicID: id, Partition: committed.Partition, ObjectKey: "seg/1", ObjectSize: 1000,
		Pos: 0, Len: 100, FirstOffset: 0, LastOffset: 9, MinTimestamp: 1, MaxTimestamp: 2,
	}
	if errs := store.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: e}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := b1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitView(t, v, "6/6 after b1 left", func() bool {
		o := owners(v, id)
		return o["b2"] == 6 && o["b3"] == 6
	})
	moved := 0
	for _, p := range v.Partitions() {
		switch p.Epoch {
		case 2:
			moved++
		case 1:
		default:
			t.Errorf("partition %d epoch %d, want 1 or 2", p.Partition, p.Epoch)
		}
	}
	if moved != 4 {
		t.Errorf("%d partitions at epoch 2, want b1's 4", moved)
	}
	st, err := store.GetPartition(ctx, id, committed.Partition)
	if err != nil || st.Epoch != 2 || st.NextOffset != 10 || st.Broker == "b1" {
		t.Fatalf("committed partition after failover: %+v %v, want epoch 2 next offset 10", st, err)
	}

	// A draining broker gets nothing new: b2's partitions all go to b3.
	b4 := register(t, store, "b4")
	if err := b4.Update(ctx, meta.BrokerInfo{Addr: "127.0.0.1:1", Draining: true}); err != nil {
		t.Fatal(err)
	}
	waitView(t, v, "b4 draining", func() bool { b, ok := v.Broker("b4"); return ok && b.Draining })
	if err := b2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitView(t, v, "all 12 on b3", func() bool { return owners(v, id)["b3"] == 12 })
	// The pass that moved b2's partitions has finished writing; nothing
	// further may land on b4.
	waitFor(t, "unassigned gauge 0", func() bool { return testenv.MetricValue(t, c.metrics.unassigned) == 0 })
	if o := owners(v, id); o["b4"] != 0 {
		t.Fatalf("draining b4 owns %d partitions", o["b4"])
	}
}

func TestPlacementWaitsForBrokers(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1")
	waitFor(t, "leader", c.IsLeader)
	v := startView(t, store)
	resp, err := client(t, c).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "lonely", Partitions: 5})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetTopic().GetId()
	// A pass ran over the topic and could place nothing.
	waitFor(t, "5 unassigned", func() bool { return testenv.MetricValue(t, c.metrics.unassigned) == 5 })
	waitView(t, v, "5 unassigned", func() bool { return owners(v, id)[""] == 5 })
	st, err := client(t, c).ClusterStatus(ctx, &stratav1.ClusterStatusRequest{})
	if err != nil || len(st.GetUnassigned()) != 5 || len(st.GetBrokers()) != 0 {
		t.Fatalf("ClusterStatus = %v, %v; want 5 unassigned, no brokers", st, err)
	}

	register(t, store, "solo")
	waitView(t, v, "all on solo", func() bool { return owners(v, id)["solo"] == 5 })
	for _, p := range v.Partitions() {
		if p.Epoch != 1 {
			t.Errorf("partition %d epoch %d, want 1", p.Partition, p.Epoch)
		}
	}
	waitFor(t, "unassigned gauge 0", func() bool { return testenv.MetricValue(t, c.metrics.unassigned) == 0 })
	st, err = client(t, c).ClusterStatus(ctx, &stratav1.ClusterStatusRequest{})
	if err != nil || len(st.GetUnassigned()) != 0 || len(st.GetBrokers()) != 1 || len(st.GetBrokers()[0].GetPartitions()) != 5 {
		t.Fatalf("ClusterStatus = %v, %v; want solo with 5 partitions", st, err)
	}
	if st.GetCoordinatorLeader() != "c1" || st.GetCoordinatorAddr() != c.Addr() {
		t.Errorf("ClusterStatus leader %q %q, want c1 %q", st.GetCoordinatorLeader(), st.GetCoordinatorAddr(), c.Addr())
	}
}
