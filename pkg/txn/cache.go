package txn

import (
	"context"
	"errors"
	"time"

	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// The in-memory copy of every transactional id's state, kept current by
// Run's watch (list, then watch from the list's revision, list again when
// the watch fails) and by the Coordinator's own reads and writes. A state
// only ever replaces one of a lower revision, so a late watch event never
// undoes a newer write.

func newEntry(st meta.TxnState) *entry {
	e := &entry{st: st}
	if st.Status == meta.TxnOngoing {
		e.parts = make(map[meta.PartitionID]struct{}, len(st.Partitions))
		for _, p := range st.Partitions {
			e.parts[meta.PartitionID{TopicID: p.TopicID, Partition: p.Partition}] = struct{}{}
		}
	}
	return e
}

// remember puts st into the copy unless the copy holds a newer revision.
func (c *Coordinator) remember(st meta.TxnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(st)
}

// putLocked puts st into the copy unless it holds a newer revision. c.mu
// must be held for writing.
func (c *Coordinator) putLocked(st meta.TxnState) {
	old, ok := c.byID[st.ID]
	if ok && old.st.Revision >= st.Revision {
		return
	}
	if ok && old.st.ProducerID != st.ProducerID && c.byPID[old.st.ProducerID] == st.ID {
		delete(c.byPID, old.st.ProducerID)
	}
	c.byID[st.ID] = newEntry(st)
	c.byPID[st.ProducerID] = st.ID
}

// reset replaces the copy with a listing made at revision rev, keeping
// states the Coordinator wrote or read after it.
func (c *Coordinator) reset(list []meta.TxnState, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.byID
	c.byID = make(map[string]*entry, len(list))
	c.byPID = make(map[int64]string, len(list))
	for _, st := range list {
		c.putLocked(st)
	}
	for _, e := range old {
		if e.st.Revision > rev {
			c.putLocked(e.st)
		}
	}
	c.loaded = true
}

// forget removes id st.ID from the copy if the copy holds st or an older
// state of it: st was deleted.
func (c *Coordinator) forget(st meta.TxnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(st.ID, st.Revision+1)
}

// forgetLocked removes id from the copy if the copy's state of it is
// older than rev, the revision of its deletion. c.mu must be held for
// writing.
func (c *Coordinator) forgetLocked(id string, rev int64) {
	if old, ok := c.byID[id]; ok && old.st.Revision < rev {
		delete(c.byID, id)
		if c.byPID[old.st.ProducerID] == id {
			delete(c.byPID, old.st.ProducerID)
		}
	}
}

// apply applies one watch event.
func (c *Coordinator) apply(ev meta.Event[meta.TxnState]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Type == meta.EventDelete {
		c.forgetLocked(ev.Value.ID, ev.Revision)
		return
	}
	st := ev.Value
	st.Revision = ev.Revision
	c.putLocked(st)
}

// follow keeps the copy current until ctx ends.
func (c *Coordinator) follow(ctx context.Context) {
	// Capped at 2 s: Verify falls back to etcd meanwhile, and Run's
	// checks wait for the copy.
	retry := backoff.New(50*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		list, rev, err := c.cfg.Meta.ListTxns(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("listing transactions failed", "err", err)
			}
			_ = retry.Wait(ctx)
			continue
		}
		retry.Reset()
		c.reset(list, rev)
		wctx, cancel := context.WithCancel(ctx)
		for ev := range c.cfg.Meta.WatchTxns(wctx, rev) {
			if ev.Err != nil {
				if ctx.Err() == nil {
					c.log.Warn("transaction watch failed, listing again", "err", ev.Err)
				}
				break
			}
			c.apply(ev)
		}
		cancel()
	}
}

// Verify reports whether producer pid at epoch may write transactional batches to the
// partition: nil when its transaction is ongoing and holds the partition;
// ErrInvalidTxnState when the partition was not added or no transaction is ongoing;
// ErrProducerFenced for an older epoch; ErrUnknownProducerID for an unknown pid.
//
// A yes, or a fence, from the in-memory copy stands (a state only moves
// to newer epochs); any other answer is checked against etcd first, since
// the copy may not show a partition added through another proxy yet.
func (c *Coordinator) Verify(ctx context.Context, pid int64, epoch int16, topicID string, partition int32) error {
	p := meta.PartitionID{TopicID: topicID, Partition: partition}
	c.mu.RLock()
	e := c.byID[c.byPID[pid]]
	c.mu.RUnlock()
	if e != nil && e.st.ProducerID == pid {
		if err := verify(e, pid, epoch, p); err == nil || epoch < e.st.Epoch {
			return err
		}
	}
	id, err := c.cfg.Meta.TxnIDOf(ctx, pid)
	if errors.Is(err, meta.ErrNotFound) {
		return apierr.Errorf(apierr.ErrUnknownProducerID, "producer id %d has no transactional id", pid)
	}
	if err != nil {
		return storageErr(err)
	}
	st, err := c.read(ctx, id)
	if err != nil {
		return err
	}
	return verify(newEntry(st), pid, epoch, p)
}

// verify is Verify's decision on one state.
func verify(e *entry, pid int64, epoch int16, p meta.PartitionID) error {
	st := e.st
	switch {
	case st.Revision == 0 || st.ProducerID != pid:
		return apierr.Errorf(apierr.ErrUnknownProducerID, "producer id %d has no transactional id", pid)
	case epoch < st.Epoch:
		return apierr.Errorf(apierr.ErrProducerFenced, "transactional id %q: epoch %d is older than %d", st.ID, epoch, st.Epoch)
	case epoch > st.Epoch:
		return apierr.Errorf(apierr.ErrProducerFenced, "transactional id %q: epoch %d was never handed out (current %d)", st.ID, epoch, st.Epoch)
	case st.Status != meta.TxnOngoing:
		return apierr.Errorf(apierr.ErrInvalidTxnState, "transactional id %q has no ongoing transaction (%s)", st.ID, st.Status)
	}
	if _, ok := e.parts[p]; !ok {
		return apierr.Errorf(apierr.ErrInvalidTxnState, "transactional id %q: partition %s/%d was not added to the transaction", st.ID, p.TopicID, p.Partition)
	}
	return nil
}
