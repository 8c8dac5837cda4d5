package txn

import (
	"context"
	"slices"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// StageOffsets stages offsets of group (Kafka's TxnOffsetCommit): they are
// committed if and when the transaction commits. The transaction must be
// ongoing with the group added; an offset staged again for the same
// partition replaces the earlier one.
func (c *Coordinator) StageOffsets(ctx context.Context, id, principal string, pid int64, epoch int16, group string, offs []meta.TxnOffset) error {
	if err := meta.ValidateTxnID(id); err != nil {
		return err
	}
	if err := meta.ValidateGroupName(group); err != nil {
		return err
	}
	staged := make([]meta.TxnOffset, 0, len(offs))
	for _, o := range offs {
		switch {
		case o.Group != "" && o.Group != group:
			return apierr.Errorf(apierr.ErrInvalidRequest, "offset of group %q staged for group %q", o.Group, group)
		case o.TopicID == "" || o.Partition < 0 || o.Offset < 0:
			return apierr.Errorf(apierr.ErrInvalidRequest, "invalid offset %s/%d@%d", o.TopicID, o.Partition, o.Offset)
		case len(o.Metadata) > meta.MaxOffsetMetadata:
			return apierr.Errorf(apierr.ErrInvalidRequest, "offset metadata of %d bytes, at most %d", len(o.Metadata), meta.MaxOffsetMetadata)
		}
		o.Group = group
		staged = append(staged, o)
	}
	return c.update(ctx, id, func(st meta.TxnState) error {
		if err := checkProducer(st, principal, pid, epoch); err != nil {
			return err
		}
		if st.Status != meta.TxnOngoing || !slices.Contains(st.Groups, group) {
			return apierr.Errorf(apierr.ErrInvalidTxnState, "transactional id %q: group %q is not in an ongoing transaction (add it first)", id, group)
		}
		next := st
		next.Offsets = mergeOffsets(st.Offsets, staged)
		if len(next.Offsets) > c.cfg.MaxPartitions {
			return apierr.Errorf(apierr.ErrInvalidRequest, "transactional id %q: %d staged offsets, at most %d", id, len(next.Offsets), c.cfg.MaxPartitions)
		}
		_, err := c.write(ctx, next)
		return err
	})
}

// mergeOffsets returns have with add applied: an offset of a group and
// partition already there replaces it, others are appended.
func mergeOffsets(have, add []meta.TxnOffset) []meta.TxnOffset {
	type key struct {
		group, topicID string
		partition      int32
	}
	out := slices.Clone(have)
	at := make(map[key]int, len(out))
	for i, o := range out {
		at[key{o.Group, o.TopicID, o.Partition}] = i
	}
	for _, o := range add {
		k := key{o.Group, o.TopicID, o.Partition}
		if i, ok := at[k]; ok {
			out[i] = o
			continue
		}
		at[k] = len(out)
		out = append(out, o)
	}
	return out
}

// End commits or aborts the producer's ongoing transaction (Kafka's
// EndTxn): the decision is written first, then a marker to every
// partition, then (on commit) the staged offsets, then complete_*. If a
// marker cannot be written, End returns the error and the transaction
// stays decided; End again with the same outcome, or Run, finishes it. End
// of a completed transaction with its outcome succeeds (a retry).
func (c *Coordinator) End(ctx context.Context, id, principal string, pid int64, epoch int16, commit bool) error {
	if err := meta.ValidateTxnID(id); err != nil {
		return err
	}
	return c.update(ctx, id, func(st meta.TxnState) error {
		if err := checkProducer(st, principal, pid, epoch); err != nil {
			return err
		}
		switch st.Status {
		case meta.TxnOngoing:
			next := st
			next.Status = prepared(commit)
			next, err := c.write(ctx, next)
			if err != nil {
				return err
			}
			_, err = c.complete(ctx, next)
			return err
		case prepared(commit):
			_, err := c.complete(ctx, st)
			return err
		case completed(commit):
			return nil
		}
		return apierr.Errorf(apierr.ErrInvalidTxnState, "transactional id %q: cannot %s a transaction in state %s", id, outcome(commit), st.Status)
	})
}
