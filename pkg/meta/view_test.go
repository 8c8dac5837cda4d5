package meta_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// waitFor waits on the view's change notifications until cond holds.
func waitFor(t *testing.T, v *meta.View, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		ch := v.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("view never showed %s", what)
		}
	}
}

// startedView returns a store and a ready View of it, stopped at the end
// of the test, and the test's context.
func startedView(t *testing.T) (*meta.Store, *meta.View, context.Context) {
	t.Helper()
	s := newStore(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	t.Cleanup(cancel)
	v := meta.NewView(s)
	v.Start(ctx)
	<-v.Ready()
	return s, v, ctx
}

func TestView(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	before := createTopic(t, s, "before", 2) // present at the first list

	v := meta.NewView(s)
	v.Start(ctx)
	select {
	case <-v.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("view not ready")
	}
	if got, ok := v.Topic("before"); !ok || got.ID != before.ID {
		t.Fatalf("Topic(before) = %+v, %v", got, ok)
	}
	if st, ok := v.Partition(before.ID, 1); !ok || st.Epoch != 0 || st.Broker != "" {
		t.Fatalf("unassigned partition = %+v, %v", st, ok)
	}
	if _, ok := v.Partition(before.ID, 2); ok {
		t.Fatal("partition out of range reported present")
	}

	after := createTopic(t, s, "after", 3)
	waitFor(t, v, "the new topic", func() bool { _, ok := v.TopicByID(after.ID); return ok })
	if len(v.Partitions()) != 5 {
		t.Fatalf("%d partitions, want 5", len(v.Partitions()))
	}

	reg, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, v, "the broker", func() bool { _, ok := v.Broker("b1"); return ok })

	assign(t, s, after.ID, 2, "b1")
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(after.ID, 2, 0, 9)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, v, "the commit", func() bool {
		st, _ := v.Partition(after.ID, 2)
		return st.Broker == "b1" && st.NextOffset == 9
	})

	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, v, "the broker leave", func() bool { return len(v.Brokers()) == 0 })
	if err := s.DeleteTopic(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, v, "the topic deleted", func() bool { _, ok := v.Topic("after"); return !ok })
	if _, ok := v.Partition(after.ID, 2); ok {
		t.Fatal("partition of a deleted topic still present")
	}
}

// TestViewWaitTopic asks the view for a topic the moment etcd has it: the
// view may not show it yet, and WaitTopic must still return it rather than
// report it unknown; a topic etcd lacks is ErrTopicNotFound.
func TestViewWaitTopic(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	v := meta.NewView(s)
	v.Start(ctx)
	<-v.Ready()
	for i := range 20 {
		created := createTopic(t, s, fmt.Sprintf("fresh-%d", i), 1)
		got, err := v.WaitTopic(ctx, created.Name, 30*time.Second)
		if err != nil || got.ID != created.ID {
			t.Fatalf("WaitTopic(%s) right after create = %+v, %v", created.Name, got, err)
		}
	}
	if _, err := v.WaitTopic(ctx, "never-created", time.Second); !errors.Is(err, meta.ErrTopicNotFound) {
		t.Fatalf("WaitTopic of a missing topic: %v, want ErrTopicNotFound", err)
	}
}

// TestViewStopsBeforeFirstList ends the view's context before it could list
// anything: every goroutine Start began must still end, and Ready must stay
// open because the view never held a complete copy.
func TestViewStopsBeforeFirstList(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()

	v := meta.NewView(s)
	v.Start(ctx)
	done := make(chan struct{})
	go func() { v.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("View.Wait did not return after its context ended before the first list")
	}
	select {
	case <-v.Ready():
		t.Fatal("Ready closed although no list completed")
	default:
	}
}

// TestViewAdvance raises a partition's next offset ahead of the watch, as
// a proxy does on an owner's acknowledgement: waiters wake, a lagging
// watch event does not lower it, the event's other fields still apply,
// and a later commit past it wins. Offsets known only from an
// acknowledgement are never stable: the last stable offset stays at the
// last state the view read in full until the watch shows the commit.
func TestViewAdvance(t *testing.T) {
	s, v, ctx := startedView(t)
	top := createTopic(t, s, "adv", 1)
	waitFor(t, v, "the topic", func() bool { _, ok := v.TopicByID(top.ID); return ok })

	ch := v.Changed()
	v.Advance(top.ID, 0, 5, 0)
	select {
	case <-ch:
	default:
		t.Fatal("Advance did not wake Changed's waiters")
	}
	if st, _ := v.Partition(top.ID, 0); st.NextOffset != 5 {
		t.Fatalf("NextOffset after Advance(5) = %d", st.NextOffset)
	}
	ch = v.Changed()
	v.Advance(top.ID, 0, 3, 0)
	v.Advance(top.ID, 1, 50, 0)   // out of range
	v.Advance("no-such", 0, 5, 0) // unknown topic
	select {
	case <-ch:
		t.Fatal("an Advance that changes nothing woke waiters")
	default:
	}
	if st, _ := v.Partition(top.ID, 0); st.NextOffset != 5 {
		t.Fatalf("Advance(3) lowered NextOffset to %d", st.NextOffset)
	}
	if _, ok := v.Partition(top.ID, 1); ok {
		t.Fatal("Advance created an out-of-range partition")
	}

	// The owner acknowledged up to 20 before the watch showed the commit
	// of 0..8 (and the assignment): the view keeps 20 and takes the rest.
	assign(t, s, top.ID, 0, "b1")
	v.Advance(top.ID, 0, 20, 0)
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 0, 9)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, v, "the assignment", func() bool { st, _ := v.Partition(top.ID, 0); return st.Broker == "b1" })
	if st, _ := v.Partition(top.ID, 0); st.NextOffset != 20 || st.Epoch != 1 {
		t.Fatalf("after a lagging event: %+v, want NextOffset 20 at epoch 1", st)
	}
	waitFor(t, v, "the commit of 0..8", func() bool { st, _ := v.Partition(top.ID, 0); return st.LastStable() == 9 })
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 9, 21)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, v, "the commit past the advance", func() bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 30 })
	if st, _ := v.Partition(top.ID, 0); st.LastStable() != 30 {
		t.Fatalf("last stable offset %d after the commit of 9..29, want 30", st.LastStable())
	}
	// An acknowledgement that says how far its commit left the partition
	// stable moves the last stable offset that far, and no further.
	v.Advance(top.ID, 0, 40, 35)
	if st, _ := v.Partition(top.ID, 0); st.NextOffset != 40 || st.LastStable() != 35 {
		t.Fatalf("after Advance(40, stable 35): next %d, last stable %d", st.NextOffset, st.LastStable())
	}
}

// TestViewPlacementChanged: an assignment, a new broker and a new topic
// wake PlacementChanged's waiters; a commit (next offset and producers
// only) and an Advance wake Changed's and not PlacementChanged's.
func TestViewPlacementChanged(t *testing.T) {
	s, v, ctx := startedView(t)
	top := createTopic(t, s, "placed", 1)
	waitFor(t, v, "the topic", func() bool { _, ok := v.TopicByID(top.ID); return ok })

	placed := v.PlacementChanged()
	assign(t, s, top.ID, 0, "b1")
	waitFor(t, v, "the assignment", func() bool { st, _ := v.Partition(top.ID, 0); return st.Broker == "b1" })
	select {
	case <-placed:
	default:
		t.Fatal("an assignment did not wake PlacementChanged")
	}

	placed = v.PlacementChanged()
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 0, 9)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, v, "the commit", func() bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 9 })
	v.Advance(top.ID, 0, 20, 0)
	select {
	case <-placed:
		t.Fatal("a commit or an Advance woke PlacementChanged")
	default:
	}

	reg, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b2", Addr: "127.0.0.1:1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	waitFor(t, v, "the broker", func() bool { _, ok := v.Broker("b2"); return ok })
	select {
	case <-placed:
	default:
		t.Fatal("a new broker did not wake PlacementChanged")
	}
	placed = v.PlacementChanged()
	createTopic(t, s, "later", 1)
	waitFor(t, v, "the new topic", func() bool { _, ok := v.Topic("later"); return ok })
	select {
	case <-placed:
	default:
		t.Fatal("a new topic did not wake PlacementChanged")
	}
}

// TestViewOwnersChanged: OwnersChanged wakes at an assignment and a new
// topic, not at a commit, and not at a broker's registration, which wakes
// PlacementChanged.
func TestViewOwnersChanged(t *testing.T) {
	s, v, ctx := startedView(t)
	top := createTopic(t, s, "owners", 1)
	waitFor(t, v, "the topic", func() bool { _, ok := v.TopicByID(top.ID); return ok })
	woke := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	owners := v.OwnersChanged()
	assign(t, s, top.ID, 0, "b1")
	waitFor(t, v, "the assignment", func() bool { st, _ := v.Partition(top.ID, 0); return st.Broker == "b1" })
	if !woke(owners) {
		t.Fatal("an assignment did not wake OwnersChanged")
	}

	owners = v.OwnersChanged()
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(top.ID, 0, 0, 9)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitFor(t, v, "the commit", func() bool { st, _ := v.Partition(top.ID, 0); return st.NextOffset == 9 })
	placed := v.PlacementChanged()
	reg, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b2", Addr: "127.0.0.1:1"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(ctx)
	waitFor(t, v, "the broker", func() bool { _, ok := v.Broker("b2"); return ok })
	if !woke(placed) {
		t.Fatal("a new broker did not wake PlacementChanged")
	}
	if woke(owners) {
		t.Fatal("a commit or a broker's registration woke OwnersChanged")
	}

	createTopic(t, s, "owners-later", 1)
	waitFor(t, v, "the new topic", func() bool { _, ok := v.Topic("owners-later"); return ok })
	if !woke(owners) {
		t.Fatal("a new topic did not wake OwnersChanged")
	}
}

// TestViewPartitionsOf follows partitions from owner to owner, and out of
// the view with their topic: each broker's list is what Partitions shows
// it owning.
func TestViewPartitionsOf(t *testing.T) {
	s, v, ctx := startedView(t)
	tp := createTopic(t, s, "owned", 4)
	other := createTopic(t, s, "other", 1)
	owned := func(broker string) string {
		var ps []int32
		for _, st := range v.PartitionsOf(broker) {
			ps = append(ps, st.Partition)
		}
		slices.Sort(ps)
		return fmt.Sprint(ps)
	}
	check := func(what string, want map[string]string) {
		t.Helper()
		waitFor(t, v, what, func() bool {
			for b, w := range want {
				if owned(b) != w {
					return false
				}
			}
			return true
		})
		for b := range want {
			var ps []int32
			for _, st := range v.Partitions() {
				if st.Broker == b && st.TopicID == tp.ID {
					ps = append(ps, st.Partition)
				}
			}
			slices.Sort(ps)
			if got := fmt.Sprint(ps); got != owned(b) {
				t.Fatalf("%s: PartitionsOf(%s) = %s, Partitions shows %s", what, b, owned(b), got)
			}
		}
		checkOwnerCounts(t, v, what)
	}
	assign(t, s, tp.ID, 0, "b1")
	assign(t, s, tp.ID, 1, "b1")
	assign(t, s, tp.ID, 2, "b2")
	check("first owners", map[string]string{"b1": "[0 1]", "b2": "[2]", "b3": "[]"})
	assign(t, s, tp.ID, 1, "b2")
	assign(t, s, tp.ID, 0, "")
	check("moves and a release", map[string]string{"b1": "[]", "b2": "[1 2]"})
	assign(t, s, other.ID, 0, "b2")
	if err := s.DeleteTopic(ctx, "owned"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, v, "the topic deleted", func() bool {
		_, ok := v.Topic("owned")
		return !ok && len(v.PartitionsOf("b2")) == 1
	})
	if got := v.PartitionsOf("b2"); got[0].TopicID != other.ID {
		t.Fatalf("b2 owns %+v after the delete, want only %s/0", got, other.ID)
	}
	checkOwnerCounts(t, v, "the topic deleted")
	if owned, total := v.OwnerCounts(); total != 1 || owned["b2"] != 1 {
		t.Fatalf("after the delete OwnerCounts = %v, %d; want b2 owning the one partition left", owned, total)
	}
}

// checkOwnerCounts waits until OwnerCounts agrees with counting the
// owners of what Partitions lists (two reads, between which a change
// still on its way may land).
func checkOwnerCounts(t *testing.T, v *meta.View, what string) {
	t.Helper()
	var got, want string
	waitFor(t, v, what+": OwnerCounts agreeing with Partitions", func() bool {
		owned, total := v.OwnerCounts()
		parts := v.Partitions()
		counts := map[string]int{}
		for _, st := range parts {
			if st.Broker != "" {
				counts[st.Broker]++
			}
		}
		got, want = fmt.Sprint(owned, total), fmt.Sprint(counts, len(parts))
		return got == want
	})
	t.Logf("%s: owner counts and total %s", what, got)
}
