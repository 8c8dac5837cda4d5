package meta_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// next receives one event or fails the test after a generous bound.
func next[T any](t *testing.T, ch <-chan meta.Event[T]) meta.Event[T] {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no watch event within 30s")
	}
	panic("unreachable")
}

func TestBrokerRegistration(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	_, rev, err := s.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.WatchBrokers(wctx, rev)

	reg, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:9001", Zone: "a"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != meta.EventPut || ev.Value.ID != "b1" || ev.Value.Addr != "127.0.0.1:9001" {
		t.Fatalf("event = %+v, want put of b1", ev)
	}

	// The same id cannot register twice while the first is alive.
	if _, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:9002"}, 5*time.Second); !errors.Is(err, meta.ErrBrokerExists) {
		t.Fatalf("duplicate register: %v, want ErrBrokerExists", err)
	}

	info := reg.Info()
	info.BytesInPerSec, info.Draining = 1234, true
	if err := reg.Update(ctx, info); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Value.BytesInPerSec != 1234 || !ev.Value.Draining {
		t.Fatalf("event = %+v, want updated load and draining", ev)
	}
	brokers, _, err := s.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 1 || brokers[0].ID != "b1" || !brokers[0].Draining {
		t.Fatalf("ListBrokers = %+v", brokers)
	}

	// Closing revokes the lease: the broker is gone at once.
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if ev := next(t, events); ev.Type != meta.EventDelete || ev.Value.ID != "b1" {
		t.Fatalf("event = %+v, want delete of b1", ev)
	}
	if err := reg.Update(ctx, info); !errors.Is(err, meta.ErrLeaseLost) {
		t.Fatalf("update after close: %v, want ErrLeaseLost", err)
	}
	// The id is free again.
	reg2, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:9003"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer reg2.Close(ctx)
}

// TestBrokerLeaseExpires lets a broker's process vanish without closing
// its registration: its keep-alives stop, etcd expires the lease after the
// TTL, and every watcher sees the broker leave.
func TestBrokerLeaseExpires(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	_, rev, err := s.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := s.WatchBrokers(ctx, rev)

	// The broker's own connection to the same cluster.
	gone := newStore(t, func(c *meta.Config) { c.Prefix = s.Prefix() })
	reg, err := gone.RegisterBroker(ctx, meta.BrokerInfo{ID: "short", Addr: "127.0.0.1:1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != meta.EventPut {
		t.Fatalf("event = %+v, want put", ev)
	}
	gone.Close() // no revoke: only the TTL can end the lease now
	select {
	case <-reg.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Done not closed after the connection went away")
	}
	if ev := next(t, events); ev.Type != meta.EventDelete || ev.Value.ID != "short" {
		t.Fatalf("event = %+v, want delete of short", ev)
	}
}

// TestRegisterAgain: a broker whose registration was lost registers again
// and takes over the ID's registration if it is still under the broker's
// own old lease (as after etcd restarted and kept that lease), without
// waiting for the lease to expire; one under another lease still refuses.
func TestRegisterAgain(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	old, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:9001", Zone: "a"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	info := old.Info()
	info.Draining = true
	if err := old.Update(ctx, info); err != nil {
		t.Fatal(err)
	}
	again, err := s.RegisterAgain(ctx, old, 5*time.Second)
	if err != nil {
		t.Fatalf("register again over the own old lease: %v", err)
	}
	defer again.Close(ctx)
	if again.LeaseID() == old.LeaseID() {
		t.Fatal("registered again under the old lease")
	}
	brokers, _, err := s.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 1 || brokers[0].ID != "b1" || brokers[0].Zone != "a" || !brokers[0].Draining {
		t.Fatalf("ListBrokers = %+v, want b1 as last published (zone a, draining)", brokers)
	}
	// The old lease was revoked with the takeover.
	if ttl, err := s.Client().TimeToLive(ctx, old.LeaseID()); err != nil || ttl.TTL != -1 {
		t.Fatalf("old lease: ttl %v, err %v; want it revoked", ttl, err)
	}
	// A registration under a lease that is not the caller's is refused.
	if _, err := s.RegisterAgain(ctx, old, 5*time.Second); !errors.Is(err, meta.ErrBrokerExists) {
		t.Fatalf("register again over another lease: %v, want ErrBrokerExists", err)
	}
}

func TestBrokerInfoValidate(t *testing.T) {
	tests := []struct {
		info meta.BrokerInfo
		ok   bool
	}{
		{meta.BrokerInfo{ID: "b-1", Addr: "127.0.0.1:1"}, true},
		{meta.BrokerInfo{ID: "", Addr: "127.0.0.1:1"}, false},
		{meta.BrokerInfo{ID: "a/b", Addr: "127.0.0.1:1"}, false},
		{meta.BrokerInfo{ID: "a b", Addr: "127.0.0.1:1"}, false},
		{meta.BrokerInfo{ID: "b1"}, false},
	}
	for _, tt := range tests {
		if err := tt.info.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.info, err, tt.ok)
		}
	}
}

func TestWatchPartitions(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	top := createTopic(t, s, "watched", 2)
	_, rev, err := s.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.WatchPartitions(wctx, rev)

	a := assign(t, s, top.ID, 1, "b7")
	ev := next(t, events)
	if ev.Type != meta.EventPut || ev.Value.TopicID != top.ID || ev.Value.Partition != 1 ||
		ev.Value.Broker != "b7" || ev.Value.Epoch != 1 || ev.Value.Revision != a.Revision {
		t.Fatalf("event = %+v, want assignment of partition 1 to b7 at %d", ev, a.Revision)
	}
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b7", Epoch: 1, Entry: entry(top.ID, 1, 0, 3)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if ev := next(t, events); ev.Value.NextOffset != 3 {
		t.Fatalf("event = %+v, want next offset 3", ev)
	}
	list, _, err := s.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Partition != 1 || list[0].NextOffset != 3 {
		t.Fatalf("ListPartitions = %+v", list)
	}
	if err := s.DeleteTopic(ctx, "watched"); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.Type != meta.EventDelete || ev.Value.TopicID != top.ID || ev.Value.Partition != 1 {
		t.Fatalf("event = %+v, want delete of partition 1", ev)
	}
}

// TestWatchCompacted starts a watch at a revision etcd has compacted away:
// the watch reports the error and closes, so the caller knows to list again.
func TestWatchCompacted(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	createTopic(t, s, "c1", 1)
	_, rev, err := s.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	createTopic(t, s, "c2", 1)
	createTopic(t, s, "c3", 1)
	_, now, err := s.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	events := s.WatchTopics(ctx, rev-1)
	select {
	case ev, ok := <-events:
		if !ok || ev.Err == nil {
			t.Fatalf("event = %+v (open=%v), want an error", ev, ok)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event")
	}
	if _, ok := <-events; ok {
		t.Fatal("watch still open after its error")
	}
}

// EvictBroker revokes the lease of the registration that started at the
// given time and of no other: a process of the same ID that started at
// another time (a restart) is left alone; the evicted one sees Done.
func TestEvictBroker(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	started := time.Now().UTC()
	reg, err := s.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: "127.0.0.1:9001", StartedAt: started}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.EvictBroker(ctx, "b1", started.Add(-time.Second)); ok || err != nil {
		t.Fatalf("evict with another start time = %v, %v; want false, nil", ok, err)
	}
	select {
	case <-reg.Done():
		t.Fatal("registration ended by an eviction aimed at another process")
	default:
	}
	if ok, err := s.EvictBroker(ctx, "b1", started); !ok || err != nil {
		t.Fatalf("evict = %v, %v; want true, nil", ok, err)
	}
	select {
	case <-reg.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("evicted registration still kept alive")
	}
	if bs, _, err := s.ListBrokers(ctx); err != nil || len(bs) != 0 {
		t.Fatalf("brokers after eviction: %v, %v", bs, err)
	}
	if ok, err := s.EvictBroker(ctx, "b1", started); ok || err != nil {
		t.Fatalf("evicting a gone broker = %v, %v; want false, nil", ok, err)
	}
}
