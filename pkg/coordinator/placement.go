package coordinator

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// assignBatch is how many assignments one placement transaction carries
// at most (meta.AssignPartitions splits further at MaxTxnOps), and
// assignConcurrency bounds the transactions one placement pass has in
// flight: placing 10,000 partitions one transaction each took ~7 s; in
// batches it takes a small part of that, without flooding etcd.
const (
	assignBatch       = 64
	assignConcurrency = 4
)

// conflictRetry is how soon a pass runs again after an assignment lost a
// race with a commit (the partition's state changed since the view read
// it, typically an owner that is still alive committing its last flushes):
// long enough for the view to show the commit. Commits do not wake
// placement by themselves.
const conflictRetry = 20 * time.Millisecond

// assignment gives one partition to a broker. From is the state the
// decision was based on; AssignPartition compares its revision.
type assignment struct {
	From   meta.PartitionState
	Broker string
}

// placeOrphans decides the owners of orphaned partitions: those with no
// broker, with a broker that is not live, or with a draining broker. Each
// goes to the eligible (live, not draining) broker that owns the fewest
// partitions at that moment, ties broken by broker ID, so the result is
// deterministic. Partitions are taken in (topic ID, partition) order and
// each appears at most once. With no eligible broker nothing is assigned;
// the second result counts the orphans left without an owner.
//
// This is the first step of placement: it restores ownership. Moving
// partitions between healthy brokers (to a new broker, or by measured
// bytes-in) needs a graceful hand-off by the old owner and is a separate,
// later step of the pass (see placementPass).
func placeOrphans(parts []meta.PartitionState, brokers []meta.BrokerInfo) ([]assignment, int) {
	live := make(map[string]meta.BrokerInfo, len(brokers))
	var eligible []string
	for _, b := range brokers {
		live[b.ID] = b
		if !b.Draining {
			eligible = append(eligible, b.ID)
		}
	}
	slices.Sort(eligible)
	load := make(map[string]int, len(eligible))
	var orphans []meta.PartitionState
	for _, p := range parts {
		b, ok := live[p.Broker]
		if p.Broker == "" || !ok || b.Draining {
			orphans = append(orphans, p)
			continue
		}
		load[p.Broker]++
	}
	if len(eligible) == 0 {
		return nil, len(orphans)
	}
	slices.SortFunc(orphans, func(a, b meta.PartitionState) int {
		return cmp.Or(cmp.Compare(a.TopicID, b.TopicID), cmp.Compare(a.Partition, b.Partition))
	})
	out := make([]assignment, 0, len(orphans))
	for _, p := range orphans {
		best := eligible[0]
		for _, id := range eligible[1:] {
			if load[id] < load[best] {
				best = id
			}
		}
		load[best]++
		out = append(out, assignment{From: p, Broker: best})
	}
	return out, 0
}

// placementLoop runs placement passes until ctx ends: at once, on every
// change of the view, every PlacementInterval as a safety net, and when a
// pass asks to be woken (a rebalancing round or a drain timeout is due).
func (s *Server) placementLoop(ctx context.Context) {
	select {
	case <-s.view.Ready():
	case <-ctx.Done():
		return
	}
	r := newRebalancer(s)
	defer r.close()
	tick := time.NewTicker(s.cfg.PlacementInterval)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	for {
		// Take the channel before reading the view, so no change is missed.
		changed := s.view.PlacementChanged()
		if d := s.placementPass(ctx, r); d > 0 {
			wake.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-s.unreachable.changed:
		case <-tick.C:
		case <-wake.C:
		}
	}
}

// placementPass makes one round of placement decisions from the view and
// writes them, passing over the brokers marked unreachable: orphans
// first; then, when every partition has a healthy owner, a bounded round
// of graceful moves between healthy brokers. It returns when it wants to
// run again although nothing changes (0: no need).
//
// A pass runs at every broker's load report, so it reads the partitions
// themselves only when the owner counts show an orphan or an uneven
// spread (or a load report an uneven load): with 10,000 partitions,
// copying and sorting them took most of an idle coordinator's CPU.
func (s *Server) placementPass(ctx context.Context, r *rebalancer) time.Duration {
	brokers := s.unreachable.reachable(s.view.Brokers())
	// Partitions of a broker draining itself are its own to hand off for
	// a while; after DrainTimeout they are orphans like any other.
	busy, wake := r.handingOff(brokers, time.Now())
	r.forget(brokers)
	counts, total := s.view.OwnerCounts()
	if len(busy) > 0 || placed(counts, brokers) < total {
		plan, stranded, conflicts := s.placeAll(ctx, busy, brokers)
		if conflicts > 0 {
			return conflictRetry
		}
		if len(plan) > 0 || stranded > 0 || len(busy) > 0 {
			return wake // restore ownership first; rebalance on a settled view
		}
	} else {
		s.metrics.unassigned.Set(0)
	}
	if r.round(ctx, counts, brokers) > 0 {
		// The view shows the moves shortly and triggers the next pass;
		// wake anyway once the next round is allowed.
		return s.cfg.RebalanceInterval
	}
	if !r.lastRound.IsZero() {
		if left := s.cfg.RebalanceInterval - time.Since(r.lastRound); left > 0 {
			return left
		}
	}
	return wake
}

// placed counts the partitions owned by brokers that may keep them: live
// (in brokers) and not draining. The rest are placeOrphans's orphans.
func placed(counts map[string]int, brokers []meta.BrokerInfo) int {
	n := 0
	for _, b := range brokers {
		if !b.Draining {
			n += counts[b.ID]
		}
	}
	return n
}

// placeAll places the orphans among every partition but those of the
// brokers in busy (handing off their own), and returns the plan, how many
// orphans were left without an eligible broker and how many assignments
// lost a race.
func (s *Server) placeAll(ctx context.Context, busy map[string]bool, brokers []meta.BrokerInfo) (plan []assignment, stranded, conflicts int) {
	candidates := s.view.Partitions()
	if len(busy) > 0 {
		candidates = slices.DeleteFunc(candidates, func(p meta.PartitionState) bool { return busy[p.Broker] })
	}
	plan, stranded = placeOrphans(candidates, brokers)
	failed, conflicts := s.apply(ctx, plan)
	s.metrics.unassigned.Set(float64(stranded + failed))
	return plan, stranded, conflicts
}

// apply writes assignments in batches of assignBatch per etcd transaction
// (meta.AssignPartitions), assignConcurrency transactions at a time, and
// returns how many were left undone and how many of those lost a race
// (ErrConflict: the state changed since the view read it). Those are left
// to the next pass, conflictRetry later, so they are decided again on
// current state rather than retried with a stale choice.
func (s *Server) apply(ctx context.Context, plan []assignment) (failed, conflicts int) {
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, assignConcurrency)
		mu      sync.Mutex // guards written, failed and conflicts
		written []meta.PartitionState
	)
	live := plan[:0:0]
	for _, a := range plan {
		if _, ok := s.view.TopicByID(a.From.TopicID); ok {
			live = append(live, a)
		} else {
			failed++ // topic deleted meanwhile
		}
	}
	for start := 0; start < len(live); start += assignBatch {
		batch := live[start:min(start+assignBatch, len(live))]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			mu.Lock()
			failed += len(batch)
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			w, lost := s.assignAll(ctx, batch)
			mu.Lock()
			defer mu.Unlock()
			written = append(written, w...)
			failed += len(batch) - len(w)
			conflicts += lost
		})
	}
	wg.Wait()
	s.awaitView(ctx, written)
	return failed, conflicts
}

// assignAll performs a batch of assignments in as few transactions as
// etcd allows and returns the states written and how many assignments
// lost a race.
func (s *Server) assignAll(ctx context.Context, batch []assignment) (written []meta.PartitionState, conflicts int) {
	as := make([]meta.Assignment, len(batch))
	for i, a := range batch {
		as[i] = meta.Assignment{Prev: a.From, Broker: a.Broker}
	}
	states, errs := s.cfg.Meta.AssignPartitions(ctx, as)
	for i, err := range errs {
		a, st := batch[i], states[i]
		switch {
		case err == nil:
			s.metrics.assignments.Inc()
			s.log.Info("assigned partition", "topic_id", st.TopicID, "partition", st.Partition,
				"broker", st.Broker, "epoch", st.Epoch, "previous_broker", a.From.Broker, "next_offset", st.NextOffset)
			written = append(written, st)
		case ctx.Err() != nil:
		case errors.Is(err, meta.ErrConflict):
			conflicts++
			s.log.Debug("assign partition lost a race; next pass decides again", "topic_id", a.From.TopicID,
				"partition", a.From.Partition, "err", err)
		default:
			s.log.Warn("assign partition failed", "topic_id", a.From.TopicID, "partition", a.From.Partition,
				"broker", a.Broker, "err", err)
		}
	}
	return written, conflicts
}

// viewCatchUpTimeout bounds how long a pass waits for the view to show its
// own writes.
const viewCatchUpTimeout = 5 * time.Second

// awaitView waits until the view shows every written state (or a later
// one), so that the next pass counts partitions per broker on current data
// instead of planning again from a view that lags behind this pass.
func (s *Server) awaitView(ctx context.Context, written []meta.PartitionState) {
	if len(written) == 0 {
		return
	}
	timeout := time.NewTimer(viewCatchUpTimeout)
	defer timeout.Stop()
	for {
		changed := s.view.Changed()
		caughtUp := true
		for _, w := range written {
			if cur, ok := s.view.Partition(w.TopicID, w.Partition); ok && cur.Revision < w.Revision {
				caughtUp = false
				break
			}
		}
		if caughtUp {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-timeout.C:
			s.log.Warn("placement: view did not catch up with this pass's writes", "timeout", viewCatchUpTimeout)
			return
		}
	}
}
