package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Reading and writing a transactional id's state: every change is a
// read, a check and a compare-and-swap, repeated when another writer (a
// second proxy, Run) changed the key in between.

// maxAttempts bounds the compare-and-swaps one call tries. A lost compare
// means another writer changed the id meanwhile; a producer's own calls
// are sequential, so only Run or a second instance races it, and a few
// rounds settle any such race.
const maxAttempts = 8

// update reads id's state from etcd and calls step with it until step
// returns anything but meta.ErrConflict (its write lost a compare, so it
// runs again on a fresh read). After maxAttempts it gives up with the
// retriable ErrConcurrentTxns.
func (c *Coordinator) update(ctx context.Context, id string, step func(meta.TxnState) error) error {
	for attempt := 1; ; attempt++ {
		st, err := c.read(ctx, id)
		if err != nil {
			return err
		}
		err = step(st)
		if !errors.Is(err, meta.ErrConflict) {
			return err
		}
		c.metrics.conflicts.Inc()
		if attempt == maxAttempts {
			return apierr.Errorf(apierr.ErrConcurrentTxns, "transactional id %q changed under %d attempts", id, attempt)
		}
		if err := backoff.Sleep(ctx, backoff.Delay(time.Millisecond, 100*time.Millisecond, attempt)); err != nil {
			return err
		}
	}
}

// read reads id's state from etcd (Revision 0: none) and remembers it.
func (c *Coordinator) read(ctx context.Context, id string) (meta.TxnState, error) {
	st, err := c.cfg.Meta.GetTxn(ctx, id)
	if err != nil {
		return meta.TxnState{}, storageErr(err)
	}
	if st.Revision > 0 {
		c.remember(st)
	}
	return st, nil
}

// write stores st with a compare on st.Revision, creating the id when
// st.Revision is 0; meta.ErrConflict when another writer was first.
func (c *Coordinator) write(ctx context.Context, st meta.TxnState) (meta.TxnState, error) {
	st.UpdatedMs = c.nowMs()
	var err error
	if st.Revision == 0 {
		st, err = c.cfg.Meta.CreateTxn(ctx, st)
	} else {
		st, err = c.cfg.Meta.PutTxn(ctx, st)
	}
	if err != nil {
		return meta.TxnState{}, storageErr(err)
	}
	c.remember(st)
	return st, nil
}

// storageErr maps a metadata failure to an API error: a lost compare
// stays meta.ErrConflict for update's loop, an error with an API reason
// stays, anything else is STORAGE_UNAVAILABLE.
func storageErr(err error) error {
	if errors.Is(err, meta.ErrConflict) || apierr.Label(err) != "INTERNAL" {
		return err
	}
	return apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
}

// checkProducer is the check of every call but InitProducer: the id
// exists, pid at epoch is its producer, and the caller is that producer's
// principal (a fenced producer hears that it is fenced, whoever took over).
func checkProducer(st meta.TxnState, principal string, pid int64, epoch int16) error {
	switch {
	case st.Revision == 0:
		return apierr.Errorf(apierr.ErrUnknownProducerID, "transactional id %q has no producer: call InitProducerId first", st.ID)
	case pid != st.ProducerID:
		return apierr.Errorf(apierr.ErrUnknownProducerID, "producer id %d is not transactional id %q's", pid, st.ID)
	case epoch < st.Epoch:
		return apierr.Errorf(apierr.ErrProducerFenced, "transactional id %q: epoch %d is older than %d", st.ID, epoch, st.Epoch)
	case epoch > st.Epoch:
		return apierr.Errorf(apierr.ErrProducerFenced, "transactional id %q: epoch %d was never handed out (current %d)", st.ID, epoch, st.Epoch)
	case st.Principal != principal:
		return apierr.Errorf(apierr.ErrPermissionDenied, "transactional id %q: its producer is another principal's", st.ID)
	}
	return nil
}

// checkInit is InitProducer's check of an existing id. A producer that
// names its pid and epoch (KIP-360) must be the id's current producer, of
// the same principal, or its previous epoch when that epoch was bumped over
// it by a timeout or at its own request (Recoverable, KIP-588); pid -1 is
// a new instance, which fences whoever had the id, of any principal the
// ACLs let produce on it (as in Kafka: credentials can be rotated).
func checkInit(st meta.TxnState, principal string, pid int64, epoch int16) error {
	switch {
	case pid < 0:
		return nil
	case st.Principal != principal:
		return apierr.Errorf(apierr.ErrPermissionDenied, "transactional id %q: its producer is another principal's; take the id over as a new instance (producer id -1)", st.ID)
	case pid != st.ProducerID:
		return apierr.Errorf(apierr.ErrUnknownProducerID, "producer id %d is not transactional id %q's", pid, st.ID)
	case epoch == st.Epoch, st.Recoverable && epoch == st.Epoch-1:
		return nil
	}
	return apierr.Errorf(apierr.ErrProducerFenced, "transactional id %q: epoch %d is not the current %d", st.ID, epoch, st.Epoch)
}

// begin returns st as a new ongoing transaction, if it is not ongoing
// yet: the partitions, groups and offsets of the last one are cleared.
func (c *Coordinator) begin(st meta.TxnState) meta.TxnState {
	if st.Status == meta.TxnOngoing {
		return st
	}
	st.Status, st.StartedMs = meta.TxnOngoing, c.nowMs()
	st.Partitions, st.Groups, st.Offsets = nil, nil, nil
	return st
}

// fenced returns st's ongoing transaction decided for abort by the
// coordinator itself, at the next epoch so that the producer's later
// batches and calls are refused (its abort markers carry that epoch).
// recoverable lets the producer at st's epoch take the id over again.
func fenced(st meta.TxnState, recoverable bool) meta.TxnState {
	if st.Epoch < math.MaxInt16 {
		st.Epoch++
	}
	st.Status, st.Recoverable = meta.TxnPrepareAbort, recoverable
	return st
}

// prepared is the decided state of an ongoing transaction.
func prepared(commit bool) meta.TxnStatus {
	if commit {
		return meta.TxnPrepareCommit
	}
	return meta.TxnPrepareAbort
}

// completed is the final state of a transaction.
func completed(commit bool) meta.TxnStatus {
	if commit {
		return meta.TxnCompleteCommit
	}
	return meta.TxnCompleteAbort
}

func outcome(commit bool) string {
	if commit {
		return "commit"
	}
	return "abort"
}

// complete carries out st's decision (st is prepare_*): the markers at
// st's epoch, on commit the staged offsets, then complete_*. When the
// markers fail the state stays decided, for a retry or Run.
func (c *Coordinator) complete(ctx context.Context, st meta.TxnState) (meta.TxnState, error) {
	commit := st.Status == meta.TxnPrepareCommit
	if len(st.Partitions) > 0 {
		if err := c.cfg.Markers.WriteMarkers(ctx, st.ProducerID, st.Epoch, commit, st.Partitions); err != nil {
			c.metrics.markerFailures.Inc()
			return st, storageErr(fmt.Errorf("txn: %s markers of transactional id %q: %w", outcome(commit), st.ID, err))
		}
	}
	if commit {
		if err := c.commitOffsets(ctx, st); err != nil {
			return st, err
		}
	}
	next := st
	next.Status = completed(commit)
	next.Partitions, next.Groups, next.Offsets = nil, nil, nil
	next, err := c.write(ctx, next)
	if err != nil {
		return st, err
	}
	c.metrics.ended.WithLabelValues(outcome(commit)).Inc()
	return next, nil
}

// commitOffsets commits st's staged offsets, one group at a time.
func (c *Coordinator) commitOffsets(ctx context.Context, st meta.TxnState) error {
	byGroup := map[string][]meta.CommittedOffset{}
	for _, o := range st.Offsets {
		byGroup[o.Group] = append(byGroup[o.Group], meta.CommittedOffset{
			TopicID: o.TopicID, Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata,
		})
	}
	for _, g := range st.Groups {
		if len(byGroup[g]) == 0 {
			continue
		}
		if err := c.cfg.Meta.CommitOffsets(ctx, g, byGroup[g]); err != nil {
			return storageErr(fmt.Errorf("txn: commit offsets of group %s for transactional id %q: %w", g, st.ID, err))
		}
	}
	return nil
}
