package txn

import (
	"context"
	"slices"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// InitProducer is InitProducerId with a transactional id. pid/epoch are -1/-1 for a
// fresh producer, or the producer's current ones (KIP-360 recovery after a timeout).
//
// A new id gets a random producer id at epoch 0. An existing one first
// has its transaction finished: a decided one is completed at its own
// epoch; an ongoing one is aborted at the next epoch, which fences the
// producer that ran it. Then the epoch is bumped (a new producer id at
// epoch 0 once the epoch would pass 32766) and the id is empty.
func (c *Coordinator) InitProducer(ctx context.Context, id, principal string, timeout time.Duration, pid int64, epoch int16) (int64, int16, error) {
	if err := meta.ValidateTxnID(id); err != nil {
		return -1, -1, err
	}
	if timeout < time.Millisecond || timeout > c.cfg.MaxTimeout {
		return -1, -1, apierr.Errorf(apierr.ErrInvalidTxnTimeout, "transaction timeout %v, want 1 ms to %v", timeout, c.cfg.MaxTimeout)
	}
	if (pid < 0) != (epoch < 0) {
		return -1, -1, apierr.Errorf(apierr.ErrInvalidRequest, "producer id %d and epoch %d: give both or neither", pid, epoch)
	}
	timeoutMs := int32(timeout / time.Millisecond)
	var out meta.TxnState
	err := c.update(ctx, id, func(st meta.TxnState) error {
		if st.Revision == 0 {
			// Unknown id: a fresh producer, whatever pid it names (as Kafka).
			st = meta.TxnState{ID: id, ProducerID: newProducerID(), Status: meta.TxnEmpty, TimeoutMs: timeoutMs, Principal: principal}
			var err error
			out, err = c.write(ctx, st)
			return err
		}
		if err := checkInit(st, principal, pid, epoch); err != nil {
			return err
		}
		st, err := c.settle(ctx, st, pid >= 0)
		if err != nil {
			return err
		}
		next := bumped(st, timeoutMs, pid >= 0)
		next.Principal = principal
		out, err = c.write(ctx, next)
		return err
	})
	if err != nil {
		return -1, -1, err
	}
	return out.ProducerID, out.Epoch, nil
}

// settle finishes st's transaction for InitProducer: a decided one is
// completed, an ongoing one aborted at the next epoch (recoverable: the
// caller is that transaction's own producer, which may continue).
func (c *Coordinator) settle(ctx context.Context, st meta.TxnState, recoverable bool) (meta.TxnState, error) {
	if st.Status == meta.TxnOngoing {
		var err error
		if st, err = c.write(ctx, fenced(st, recoverable)); err != nil {
			return st, err
		}
	}
	if st.Status.Prepared() {
		return c.complete(ctx, st)
	}
	return st, nil
}

// bumped returns the empty state st moves to when its producer
// (re)initialises: the next epoch, or a new producer id at epoch 0 past
// maxEpoch. recoverable: the caller named its pid and epoch, so it may
// repeat the call if the answer is lost.
func bumped(st meta.TxnState, timeoutMs int32, recoverable bool) meta.TxnState {
	if st.Epoch >= maxEpoch {
		st.ProducerID, st.Epoch, st.Recoverable = newProducerID(), 0, false
	} else {
		st.Epoch, st.Recoverable = st.Epoch+1, recoverable
	}
	st.Status, st.TimeoutMs, st.StartedMs = meta.TxnEmpty, timeoutMs, 0
	st.Partitions, st.Groups, st.Offsets = nil, nil, nil
	return st
}

// AddPartitions adds partitions to the producer's transaction, starting
// one if none is ongoing.
func (c *Coordinator) AddPartitions(ctx context.Context, id, principal string, pid int64, epoch int16, parts []Partition) error {
	if err := meta.ValidateTxnID(id); err != nil {
		return err
	}
	for _, p := range parts {
		if p.Topic == "" || p.TopicID == "" || p.Partition < 0 {
			return apierr.Errorf(apierr.ErrInvalidRequest, "partition %q (%s) %d: a partition needs a topic, its ID and a number ≥ 0", p.Topic, p.TopicID, p.Partition)
		}
	}
	return c.update(ctx, id, func(st meta.TxnState) error {
		if err := checkAdd(st, principal, pid, epoch); err != nil || len(parts) == 0 {
			return err
		}
		next := c.begin(st)
		next.Partitions = withPartitions(next.Partitions, parts)
		if len(next.Partitions) > c.cfg.MaxPartitions {
			return apierr.Errorf(apierr.ErrInvalidRequest, "transactional id %q: %d partitions, at most %d per transaction", id, len(next.Partitions), c.cfg.MaxPartitions)
		}
		if st.Status == meta.TxnOngoing && len(next.Partitions) == len(st.Partitions) {
			return nil // nothing new
		}
		_, err := c.write(ctx, next)
		return err
	})
}

// withPartitions returns have with the partitions of add it lacks
// appended.
func withPartitions(have, add []Partition) []Partition {
	seen := make(map[meta.PartitionID]struct{}, len(have)+len(add))
	for _, p := range have {
		seen[meta.PartitionID{TopicID: p.TopicID, Partition: p.Partition}] = struct{}{}
	}
	out := slices.Clone(have)
	for _, p := range add {
		k := meta.PartitionID{TopicID: p.TopicID, Partition: p.Partition}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, p)
		}
	}
	return out
}

// checkAdd is the check of AddPartitions and AddGroup: the producer's
// own id, and no transaction being completed.
func checkAdd(st meta.TxnState, principal string, pid int64, epoch int16) error {
	if err := checkProducer(st, principal, pid, epoch); err != nil {
		return err
	}
	if st.Status.Prepared() {
		return apierr.Errorf(apierr.ErrConcurrentTxns, "transactional id %q: the last transaction is still being completed", st.ID)
	}
	return nil
}

// AddGroup adds a consumer group to the producer's transaction (Kafka's
// AddOffsetsToTxn), starting one if none is ongoing; StageOffsets may then
// stage offsets of it.
func (c *Coordinator) AddGroup(ctx context.Context, id, principal string, pid int64, epoch int16, group string) error {
	if err := meta.ValidateTxnID(id); err != nil {
		return err
	}
	if err := meta.ValidateGroupName(group); err != nil {
		return err
	}
	return c.update(ctx, id, func(st meta.TxnState) error {
		if err := checkAdd(st, principal, pid, epoch); err != nil {
			return err
		}
		if st.Status == meta.TxnOngoing && slices.Contains(st.Groups, group) {
			return nil
		}
		next := c.begin(st)
		next.Groups = append(slices.Clone(next.Groups), group)
		_, err := c.write(ctx, next)
		return err
	})
}
