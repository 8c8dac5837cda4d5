package broker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// handoffSettleTimeout bounds how long a hand-off waits for the
// partitions' buffered and in-flight produces to be answered before it
// moves them anyway (their commits are then fenced and their producers
// retry on the new owner).
const handoffSettleTimeout = 5 * time.Second

// ReleasePartitions hands partitions this broker owns to req.Target (or
// releases them with no owner when the target is empty) gracefully:
//
//  1. it refuses new produces for them with NOT_OWNER;
//  2. it waits until their buffered produces are flushed and committed and
//     every in-flight flush of them is answered (bounded);
//  3. it moves each one with meta.AssignPartition (epoch + 1) from the
//     state in etcd, and forgets it. Without a target each goes straight
//     to the live, non-draining broker with the fewest partitions (see
//     handoffTargets), so the partition is served again after one etcd
//     write instead of two (release, then the coordinator's placement).
//
// Producers therefore pause for about one flush and one etcd transaction
// and lose nothing; the proxy retries their NOT_OWNER on the new owner as
// soon as its view shows the move. With req.Drain the broker first marks
// itself draining, so placement gives it nothing new, and an empty
// partition list means every partition it owns.
func (s *Server) ReleasePartitions(ctx context.Context, req *stratav1.ReleasePartitionsRequest) (*stratav1.ReleasePartitionsResponse, error) {
	target := req.GetTarget()
	if target != "" {
		if err := (meta.BrokerInfo{ID: target, Addr: "-"}).Validate(); err != nil {
			return nil, apierr.Errorf(apierr.ErrInvalidRequest, "target: %v", err)
		}
		if target == s.id {
			return nil, apierr.Errorf(apierr.ErrInvalidRequest, "target %q is this broker", target)
		}
	}
	if len(req.GetPartitions()) == 0 && !req.GetDrain() {
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "no partitions to release")
	}
	s.mu.Lock()
	closing, member := s.closing, s.member
	s.mu.Unlock()
	switch {
	case closing:
		return nil, apierr.Errorf(apierr.ErrShuttingDown, "broker %s is shutting down and releases everything itself", s.id)
	case !member:
		return nil, apierr.Errorf(apierr.ErrNotOwner, "broker %s has no membership lease", s.id)
	}
	if req.GetDrain() {
		if err := s.updateInfo(ctx, func(i *meta.BrokerInfo) { i.Draining = true }); err != nil {
			return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "marking broker %s draining: %v", s.id, err)
		}
		s.log.Info("draining: handing off every partition")
	}

	keys, err := s.releaseKeys(req)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	s.mu.Lock()
	for _, k := range keys {
		if p := s.parts[k]; p != nil {
			p.releasing = true
		}
	}
	s.mu.Unlock()
	// If anything below fails, partitions not moved take produces again.
	defer func() {
		s.mu.Lock()
		for _, k := range keys {
			if p := s.parts[k]; p != nil {
				p.releasing = false
			}
		}
		s.mu.Unlock()
	}()
	s.awaitSettled(ctx, keys)

	resp := &stratav1.ReleasePartitionsResponse{}
	pick := s.handoffTargets().next
	if target != "" {
		pick = func() string { return target }
	}
	moved, err := s.handOff(ctx, keys, pick)
	for _, st := range moved {
		resp.Released = append(resp.Released, s.handedOff(st, start))
	}
	if err != nil {
		return resp, apierr.Errorf(apierr.ErrStorageUnavailable, "hand-off: %v", err)
	}
	return resp, nil
}

// handOff reads the partitions' states from etcd and moves those this
// broker still owns to pick()'s brokers at epoch + 1, all in as few
// transactions as the store allows (a broker of hundreds of partitions
// used to take two round trips for each). It returns the new states of
// the partitions it moved; a partition that moved meanwhile (another
// owner, or changed since the read) is left out. err is the first etcd
// failure; the partitions it concerns stay with this broker.
func (s *Server) handOff(ctx context.Context, keys []meta.PartitionID, pick func() string) ([]meta.PartitionState, error) {
	sts, err := s.cfg.Meta.GetPartitions(ctx, keys)
	if err != nil {
		return nil, err
	}
	as := make([]meta.Assignment, 0, len(sts))
	for _, st := range sts {
		if st.Broker == s.id {
			as = append(as, meta.Assignment{Prev: st, Broker: pick()})
		}
	}
	next, errs := s.cfg.Meta.AssignPartitions(ctx, as)
	moved := make([]meta.PartitionState, 0, len(as))
	var first error
	for i := range as {
		switch {
		case errs[i] == nil:
			moved = append(moved, next[i])
		case errors.Is(errs[i], meta.ErrConflict):
			// moved meanwhile
		case first == nil:
			first = errs[i]
		}
	}
	return moved, first
}

// handedOff forgets a partition handed off at st (its new owner and
// epoch), counts it, and returns its reference.
func (s *Server) handedOff(st meta.PartitionState, start time.Time) *stratav1.PartitionRef {
	k := meta.PartitionID{TopicID: st.TopicID, Partition: st.Partition}
	s.mu.Lock()
	if p := s.parts[k]; p != nil {
		s.dropLocked(p, apierr.Errorf(apierr.ErrNotOwner, "%s/%d handed to broker %q at epoch %d", k.TopicID, k.Partition, st.Broker, st.Epoch))
	}
	s.mu.Unlock()
	s.metrics.handoffs.Inc()
	s.metrics.handoffPause.Observe(time.Since(start).Seconds())
	name := k.TopicID
	if t, ok := s.view.TopicByID(k.TopicID); ok {
		name = t.Name
	}
	s.log.Info("handed off partition", "topic_id", k.TopicID, "partition", k.Partition, "to", st.Broker,
		"epoch", st.Epoch, "next_offset", st.NextOffset, "pause", time.Since(start))
	return &stratav1.PartitionRef{Topic: name, Partition: k.Partition, Epoch: st.Epoch}
}

// Undrain clears the broker's draining mark, so placement gives it
// partitions again (see strata broker undrain). A broker that is shutting
// down stays draining.
func (s *Server) Undrain(ctx context.Context, _ *stratav1.UndrainBrokerRequest) (*stratav1.UndrainBrokerResponse, error) {
	s.mu.Lock()
	closing, member := s.closing, s.member
	s.mu.Unlock()
	switch {
	case closing:
		return nil, apierr.Errorf(apierr.ErrShuttingDown, "broker %s is shutting down", s.id)
	case !member:
		return nil, apierr.Errorf(apierr.ErrNotOwner, "broker %s has no membership lease", s.id)
	}
	if err := s.updateInfo(ctx, func(i *meta.BrokerInfo) { i.Draining = false }); err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "clearing the draining mark of broker %s: %v", s.id, err)
	}
	s.log.Info("undrained: placement may give this broker partitions again")
	return &stratav1.UndrainBrokerResponse{}, nil
}

// releaseKeys resolves the partitions a ReleasePartitions request names
// to those this broker owns (or, for a drain of everything, every
// partition it owns or the view assigns to it).
func (s *Server) releaseKeys(req *stratav1.ReleasePartitionsRequest) ([]meta.PartitionID, error) {
	var keys []meta.PartitionID
	if len(req.GetPartitions()) == 0 {
		keys = s.ownedKeys()
	} else {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ref := range req.GetPartitions() {
			t, ok := s.view.Topic(ref.GetTopic())
			if !ok {
				return nil, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", ref.GetTopic())
			}
			if ref.GetPartition() < 0 || ref.GetPartition() >= t.Partitions {
				return nil, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q", ref.GetPartition(), t.Name)
			}
			k := meta.PartitionID{TopicID: t.ID, Partition: ref.GetPartition()}
			p := s.parts[k]
			if p == nil || (ref.GetEpoch() != 0 && ref.GetEpoch() != p.epoch) {
				continue // not ours (any more); nothing to hand off
			}
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, meta.PartitionID.Compare)
	return keys, nil
}

// ownedKeys returns, sorted, every partition this broker holds or the
// view assigns to it (its view may lag an assignment it has not taken up
// yet, or a move it has not noticed).
func (s *Server) ownedKeys() []meta.PartitionID {
	seen := map[meta.PartitionID]bool{}
	for _, st := range s.view.PartitionsOf(s.id) {
		seen[meta.PartitionID{TopicID: st.TopicID, Partition: st.Partition}] = true
	}
	s.mu.Lock()
	for k := range s.parts {
		seen[k] = true
	}
	s.mu.Unlock()
	return slices.SortedFunc(maps.Keys(seen), meta.PartitionID.Compare)
}

// awaitSettled waits until none of the partitions has produces buffered or
// in flight, or handoffSettleTimeout or ctx ends.
func (s *Server) awaitSettled(ctx context.Context, keys []meta.PartitionID) {
	timeout := time.NewTimer(handoffSettleTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		busy := false
		for _, k := range keys {
			if p := s.parts[k]; p != nil && (len(p.pending) > 0 || p.inflight > 0) {
				busy = true
				break
			}
		}
		settled := s.settled
		s.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-settled:
		case <-timeout.C:
			s.log.Warn("hand-off: produces still in flight; moving the partitions anyway", "timeout", handoffSettleTimeout)
			return
		case <-ctx.Done():
			return
		}
	}
}

// handoffPicker hands out targets for partitions this broker gives away:
// each time the eligible broker with the fewest partitions, counting the
// ones handed out already.
type handoffPicker struct {
	load map[string]int
	ids  []string // eligible brokers, sorted
}

// handoffTargets returns a picker over the live brokers of the view that
// are neither this one nor draining. With none it hands out "" (no owner:
// the coordinator places the partition when a broker appears).
func (s *Server) handoffTargets() *handoffPicker {
	h := &handoffPicker{load: map[string]int{}}
	for _, b := range s.view.Brokers() {
		if b.ID != s.id && !b.Draining {
			h.ids = append(h.ids, b.ID)
			h.load[b.ID] = 0
		}
	}
	slices.Sort(h.ids)
	for _, p := range s.view.Partitions() {
		if _, ok := h.load[p.Broker]; ok {
			h.load[p.Broker]++
		}
	}
	return h
}

// next returns the target of the next partition.
func (h *handoffPicker) next() string {
	if len(h.ids) == 0 {
		return ""
	}
	best := h.ids[0]
	for _, id := range h.ids[1:] {
		if h.load[id] < h.load[best] {
			best = id
		}
	}
	h.load[best]++
	return best
}
