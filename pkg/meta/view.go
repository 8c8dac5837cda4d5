package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-mq/strata/internal/backoff"
)

// ErrViewBehind reports that etcd has a topic the view did not show within
// the wait: the view's watch is lagging. It is worth retrying.
var ErrViewBehind = errors.New("meta: view has not caught up with etcd")

// View is an in-memory copy of the cluster's topics, partition states and
// live brokers, kept current by etcd watches. Proxies route with it, brokers
// learn what they own from it and the coordinator places partitions with it.
//
// A View lists each kind of value and then watches from the revision of the
// list, so it misses no change; when a watch fails (etcd compacted, leader
// lost) it lists again. Changed lets callers wait for the next change
// instead of polling.
type View struct {
	s   *Store
	log *slog.Logger

	ready chan struct{} // closed once every kind has loaded
	// loaded receives one value per kind when its first list succeeds.
	loaded chan struct{}
	// wg tracks Start's goroutines; Wait waits for them.
	wg sync.WaitGroup

	mu sync.RWMutex // guards every field below
	// topics by name and by ID.
	topics   map[string]Topic
	topicIDs map[string]string
	// partitions by topic ID, then partition.
	partitions map[string]map[int32]PartitionState
	// owned indexes partitions by owning broker, so that a broker finds
	// its own without reading every partition (PartitionsOf).
	owned   map[string]map[PartitionID]struct{}
	brokers map[string]BrokerInfo
	// changed is closed and replaced on every change; placed on every
	// change but those that only move a partition's next offset or
	// producer state (commits), which are most of them; owners only on
	// changes of topics and of partitions' owners or epochs (not of
	// brokers' registrations, which their load reports rewrite).
	changed, placed, owners chan struct{}
}

// NewView returns a View of s; Start fills it.
func NewView(s *Store) *View {
	return &View{
		s:          s,
		log:        s.log,
		ready:      make(chan struct{}),
		loaded:     make(chan struct{}, viewKinds),
		topics:     map[string]Topic{},
		topicIDs:   map[string]string{},
		partitions: map[string]map[int32]PartitionState{},
		owned:      map[string]map[PartitionID]struct{}{},
		brokers:    map[string]BrokerInfo{},
		changed:    make(chan struct{}),
		placed:     make(chan struct{}),
		owners:     make(chan struct{}),
	}
}

// viewKinds is the number of kinds of value a View follows.
const viewKinds = 3

// Start loads the view and keeps it current until ctx ends. Ready closes
// once the first complete copy is loaded. Start is called once; Wait
// returns when every goroutine it started has ended.
func (v *View) Start(ctx context.Context) {
	v.wg.Add(viewKinds + 1)
	go func() {
		defer v.wg.Done()
		for range viewKinds {
			select {
			case <-v.loaded:
			case <-ctx.Done():
				return
			}
		}
		close(v.ready)
	}()
	run := func(f func()) {
		go func() {
			defer v.wg.Done()
			f()
		}()
	}
	run(func() { follow(ctx, v, "topics", v.s.ListTopics, v.s.WatchTopics, v.resetTopics, v.applyTopic) })
	run(func() {
		follow(ctx, v, "partitions", v.s.ListPartitions, v.s.WatchPartitions, v.resetPartitions, v.applyPartition)
	})
	run(func() { follow(ctx, v, "brokers", v.s.ListBrokers, v.s.WatchBrokers, v.resetBrokers, v.applyBroker) })
}

// Wait blocks until the goroutines Start began have ended, which they do
// soon after Start's context ends.
func (v *View) Wait() { v.wg.Wait() }

// Ready is closed once the view holds a complete copy.
func (v *View) Ready() <-chan struct{} { return v.ready }

// follow keeps one kind of value current: list, then watch from the list's
// revision, and list again whenever the watch fails.
func follow[T any](ctx context.Context, v *View, what string,
	list func(context.Context) ([]T, int64, error),
	watch func(context.Context, int64) <-chan Event[T],
	reset func([]T), apply func(Event[T]),
) {
	loaded := false
	// Capped at 2 s: every router and placement decision waits on the view.
	retry := backoff.New(50*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		items, rev, err := list(ctx)
		if err != nil {
			v.log.Warn("meta view: list failed", "what", what, "err", err)
			_ = retry.Wait(ctx)
			continue
		}
		retry.Reset()
		reset(items)
		if !loaded {
			loaded = true
			v.loaded <- struct{}{}
		}
		wctx, cancel := context.WithCancel(ctx)
		for ev := range watch(wctx, rev) {
			if ev.Err != nil {
				if ctx.Err() == nil {
					v.log.Warn("meta view: watch failed, listing again", "what", what, "err", ev.Err)
				}
				break
			}
			apply(ev)
		}
		cancel()
	}
}

// notifyLocked wakes every waiter on Changed, PlacementChanged and
// OwnersChanged: for a change of topics or of partitions' owners or
// epochs. v.mu must be held for writing.
func (v *View) notifyLocked() {
	close(v.owners)
	v.owners = make(chan struct{})
	v.notifyBrokerLocked()
}

// notifyBrokerLocked wakes the waiters on Changed and PlacementChanged:
// for a change of brokers' registrations. v.mu must be held for writing.
func (v *View) notifyBrokerLocked() {
	close(v.placed)
	v.placed = make(chan struct{})
	v.notifyCommitLocked()
}

// notifyCommitLocked wakes the waiters on Changed only: for a change that
// moved a partition's next offset or producer state and nothing else.
// v.mu must be held for writing.
func (v *View) notifyCommitLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *View) resetTopics(ts []Topic) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.topics, v.topicIDs = make(map[string]Topic, len(ts)), make(map[string]string, len(ts))
	for _, t := range ts {
		v.topics[t.Name], v.topicIDs[t.ID] = t, t.Name
	}
	v.notifyLocked()
}

func (v *View) applyTopic(ev Event[Topic]) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Type == EventDelete {
		if old, ok := v.topics[ev.Value.Name]; ok {
			delete(v.topicIDs, old.ID)
			for _, p := range v.partitions[old.ID] {
				v.disownLocked(p)
			}
			delete(v.partitions, old.ID)
		}
		delete(v.topics, ev.Value.Name)
	} else {
		v.topics[ev.Value.Name], v.topicIDs[ev.Value.ID] = ev.Value, ev.Value.Name
	}
	v.notifyLocked()
}

func (v *View) resetPartitions(ps []PartitionState) {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.partitions
	v.partitions = map[string]map[int32]PartitionState{}
	v.owned = map[string]map[PartitionID]struct{}{}
	for _, p := range ps {
		if was, ok := old[p.TopicID][p.Partition]; ok {
			p.NextOffset = max(p.NextOffset, was.NextOffset)
		}
		v.putPartitionLocked(p)
	}
	v.notifyLocked()
}

// putPartitionLocked stores p, keeping the higher NextOffset if the view
// already knew more (Advance): a partition's next offset never goes back
// in etcd, so an older value is only a watch that lags. v.mu must be held
// for writing.
func (v *View) putPartitionLocked(p PartitionState) {
	m := v.partitions[p.TopicID]
	if m == nil {
		m = map[int32]PartitionState{}
		v.partitions[p.TopicID] = m
	}
	if was, ok := m[p.Partition]; ok {
		if was.NextOffset > p.NextOffset {
			// An acknowledged produce raised the view past this state:
			// keep the high watermark, and count as stable only what
			// either knew to be.
			top := max(was.NextOffset-was.Unstable, p.NextOffset-p.Unstable)
			p.NextOffset = was.NextOffset
			p.Unstable = p.NextOffset - top
		}
		if was.Broker != p.Broker {
			v.disownLocked(was)
		}
	}
	m[p.Partition] = p
	if p.Broker != "" {
		o := v.owned[p.Broker]
		if o == nil {
			o = map[PartitionID]struct{}{}
			v.owned[p.Broker] = o
		}
		o[PartitionID{TopicID: p.TopicID, Partition: p.Partition}] = struct{}{}
	}
}

// disownLocked removes p from its owner's index. v.mu must be held for
// writing.
func (v *View) disownLocked(p PartitionState) {
	if o := v.owned[p.Broker]; o != nil {
		delete(o, PartitionID{TopicID: p.TopicID, Partition: p.Partition})
		if len(o) == 0 {
			delete(v.owned, p.Broker)
		}
	}
}

// Advance records that every offset of a partition below next is
// committed, learned ahead of the watch: a proxy learns it from the
// owner's acknowledgement, which comes after the commit. It raises the
// partition's NextOffset (never lowers it) and wakes Changed's waiters.
// stable is the partition's last stable offset as that commit left it (0
// when not known): offsets learned this way count as stable only below
// it, since the view has not seen the producer states behind them
// (PartitionState.Unstable).
func (v *View) Advance(topicID string, partition int32, next, stable int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.topics[v.topicIDs[topicID]]
	if !ok || partition < 0 || partition >= t.Partitions {
		return
	}
	st, ok := v.partitions[topicID][partition]
	if !ok {
		st = PartitionState{TopicID: topicID, Partition: partition}
	}
	if next <= st.NextOffset {
		return
	}
	top := max(st.NextOffset-st.Unstable, min(stable, next))
	st.NextOffset = next
	st.Unstable = next - top
	v.putPartitionLocked(st)
	v.notifyCommitLocked()
}

func (v *View) applyPartition(ev Event[PartitionState]) {
	v.mu.Lock()
	defer v.mu.Unlock()
	was, known := v.partitions[ev.Value.TopicID][ev.Value.Partition]
	if ev.Type == EventDelete {
		if known {
			v.disownLocked(was)
		}
		delete(v.partitions[ev.Value.TopicID], ev.Value.Partition)
	} else {
		v.putPartitionLocked(ev.Value)
	}
	if ev.Type != EventDelete && known && was.Broker == ev.Value.Broker && was.Epoch == ev.Value.Epoch {
		v.notifyCommitLocked() // a commit: same owner, same epoch
		return
	}
	v.notifyLocked()
}

func (v *View) resetBrokers(bs []BrokerInfo) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.brokers = make(map[string]BrokerInfo, len(bs))
	for _, b := range bs {
		v.brokers[b.ID] = b
	}
	v.notifyBrokerLocked()
}

func (v *View) applyBroker(ev Event[BrokerInfo]) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Type == EventDelete {
		delete(v.brokers, ev.Value.ID)
	} else {
		v.brokers[ev.Value.ID] = ev.Value
	}
	v.notifyBrokerLocked()
}

// Changed returns a channel that is closed at the next change to the view.
// Take it before reading what you wait on, then wait on it:
//
//	for {
//		ch := v.Changed()
//		if st, _ := v.Partition(id, p); st.NextOffset > off { break }
//		<-ch
//	}
func (v *View) Changed() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.changed
}

// PlacementChanged is Changed for those who follow where partitions are
// rather than how far they have been written: it is closed at the next
// change of a topic, a broker, or a partition's owner or epoch (and at
// every fresh listing), not at commits, which move only a partition's next
// offset and producer state. Brokers reconciling what they own and the
// coordinator placing partitions wait on it: a full pass over every
// partition on every commit grows with partitions × commits.
func (v *View) PlacementChanged() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.placed
}

// OwnersChanged is PlacementChanged without the changes of brokers'
// registrations: it is closed at the next change of a topic or of a
// partition's owner or epoch (and at every fresh listing of them). A
// broker following what it owns waits on it; every broker's load report
// rewrites its registration, and would wake every other broker.
func (v *View) OwnersChanged() <-chan struct{} {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.owners
}

// Topic returns the topic named name.
func (v *View) Topic(name string) (Topic, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.topics[name]
	return t, ok
}

// WaitTopic returns the topic named name. The view watches topics and
// partition states separately and trails etcd by a few milliseconds, so a
// topic created a moment ago may be missing from it; then WaitTopic asks
// etcd and, if the topic is there, waits up to maxWait for the view to show
// it (ErrViewBehind if it does not). A topic etcd does not have fails with
// ErrTopicNotFound.
func (v *View) WaitTopic(ctx context.Context, name string, maxWait time.Duration) (Topic, error) {
	if t, ok := v.Topic(name); ok {
		return t, nil
	}
	stored, err := v.s.GetTopic(ctx, name)
	if err != nil {
		return Topic{}, err
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	for {
		ch := v.Changed()
		if t, ok := v.Topic(name); ok && t.ID == stored.ID {
			return t, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Topic{}, ctx.Err()
		case <-timer.C:
			return Topic{}, fmt.Errorf("%w: topic %q", ErrViewBehind, name)
		}
	}
}

// TopicByID returns the topic with the given ID.
func (v *View) TopicByID(id string) (Topic, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.topics[v.topicIDs[id]]
	return t, ok
}

// Topics returns every topic, in no particular order.
func (v *View) Topics() []Topic {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]Topic, 0, len(v.topics))
	for _, t := range v.topics {
		out = append(out, t)
	}
	return out
}

// Partition returns a partition's state; a partition with no stored state
// is unassigned at epoch 0 (ok is still true if its topic exists and the
// partition is in range).
func (v *View) Partition(topicID string, partition int32) (PartitionState, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.topics[v.topicIDs[topicID]]
	if !ok || partition < 0 || partition >= t.Partitions {
		return PartitionState{}, false
	}
	if st, ok := v.partitions[topicID][partition]; ok {
		return st, true
	}
	return PartitionState{TopicID: topicID, Partition: partition}, true
}

// PartitionsOf returns the state of every partition broker owns, as
// Partitions would list them, without reading the others: a broker of
// thousands of partitions checks its own every second.
func (v *View) PartitionsOf(broker string) []PartitionState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]PartitionState, 0, len(v.owned[broker]))
	for k := range v.owned[broker] {
		t, ok := v.topics[v.topicIDs[k.TopicID]]
		if !ok || k.Partition >= t.Partitions {
			continue
		}
		out = append(out, v.partitions[k.TopicID][k.Partition])
	}
	return out
}

// OwnerCounts returns how many partitions each broker owns and how many
// partitions there are, counting those Partitions would list, without
// copying them: placement checks, at every change of a broker's load,
// that every partition has an owner and that the counts are even before
// it reads the partitions themselves.
func (v *View) OwnerCounts() (owned map[string]int, total int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, t := range v.topics {
		total += int(t.Partitions)
	}
	owned = make(map[string]int, len(v.owned))
	for broker, ps := range v.owned {
		for k := range ps {
			if t, ok := v.topics[v.topicIDs[k.TopicID]]; ok && k.Partition < t.Partitions {
				owned[broker]++
			}
		}
	}
	return owned, total
}

// Partitions returns the state of every partition of every topic,
// including unassigned ones.
func (v *View) Partitions() []PartitionState {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n := 0
	for _, t := range v.topics {
		n += int(t.Partitions)
	}
	out := make([]PartitionState, 0, n)
	for _, t := range v.topics {
		for p := int32(0); p < t.Partitions; p++ {
			st, ok := v.partitions[t.ID][p]
			if !ok {
				st = PartitionState{TopicID: t.ID, Partition: p}
			}
			out = append(out, st)
		}
	}
	return out
}

// Broker returns a live broker's registration.
func (v *View) Broker(id string) (BrokerInfo, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	b, ok := v.brokers[id]
	return b, ok
}

// Brokers returns the live brokers, in no particular order.
func (v *View) Brokers() []BrokerInfo {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]BrokerInfo, 0, len(v.brokers))
	for _, b := range v.brokers {
		out = append(out, b)
	}
	return out
}
