package txn

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// runOpTimeout bounds Run's work on one transaction, so that markers a
// broker does not answer for cannot stall the checks of the others; the
// next check tries again.
const runOpTimeout = 30 * time.Second

// Run finishes transactions left half-done (prepare_* for longer than a few seconds: a
// proxy died between decision and markers) and aborts ongoing ones past their timeout,
// until ctx ends. Its caller owns and waits for it.
//
// Run also keeps the Coordinator's in-memory copy of the states current
// for Verify. Every proxy runs it: the compare-and-swap on each state lets
// only one of them act on a transaction, and markers written twice are
// harmless. Call it once per Coordinator.
func (c *Coordinator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.follow(ctx)
	}()
	t := time.NewTicker(c.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.check(ctx)
	}
}

// due are the transactions a check acts on.
type due struct {
	timedOut, stuck, expired []string
	open                     int
}

// dueLocked finds, in the in-memory copy, the ongoing transactions past
// their timeout, the decided ones older than RecoverAfter, and the ids
// with none open unwritten for IDExpiration. c.mu must be held.
func (c *Coordinator) dueLocked(nowMs int64) due {
	var d due
	for id, e := range c.byID {
		st := e.st
		switch {
		case st.Status == meta.TxnOngoing:
			d.open++
			if nowMs-st.StartedMs > int64(st.TimeoutMs) {
				d.timedOut = append(d.timedOut, id)
			}
		case st.Status.Prepared():
			d.open++
			if nowMs-st.UpdatedMs >= c.cfg.RecoverAfter.Milliseconds() {
				d.stuck = append(d.stuck, id)
			}
		case nowMs-st.UpdatedMs > c.cfg.IDExpiration.Milliseconds():
			d.expired = append(d.expired, id)
		}
	}
	return d
}

// check aborts the timed-out transactions and completes the stuck ones,
// each after reading it again from etcd. Failures are logged; the next
// check tries again.
func (c *Coordinator) check(ctx context.Context) {
	c.mu.RLock()
	loaded := c.loaded
	d := c.dueLocked(c.nowMs())
	c.mu.RUnlock()
	if !loaded {
		return
	}
	c.metrics.ongoing.Set(float64(d.open))
	for _, id := range d.timedOut {
		if err := c.within(ctx, id, c.abortTimedOut); err != nil && ctx.Err() == nil {
			c.log.Warn("aborting a timed-out transaction failed", "transactional_id", id, "err", err)
		}
	}
	for _, id := range d.stuck {
		if err := c.within(ctx, id, c.finishStuck); err != nil && ctx.Err() == nil {
			c.log.Warn("completing a decided transaction failed", "transactional_id", id, "err", err)
		}
	}
	for _, id := range d.expired {
		if err := c.within(ctx, id, c.expire); err != nil && ctx.Err() == nil {
			c.log.Warn("deleting an expired transactional id failed", "transactional_id", id, "err", err)
		}
	}
}

// expire deletes id if, read again from etcd, it still has no transaction
// open and has gone unwritten for IDExpiration; a use meanwhile (a lost
// compare) keeps it.
func (c *Coordinator) expire(ctx context.Context, id string) error {
	st, err := c.read(ctx, id)
	if err != nil || st.Revision == 0 || st.Status == meta.TxnOngoing || st.Status.Prepared() ||
		c.nowMs()-st.UpdatedMs <= c.cfg.IDExpiration.Milliseconds() {
		return err
	}
	if err := c.cfg.Meta.DeleteTxn(ctx, st); err != nil {
		if errors.Is(err, meta.ErrConflict) {
			return nil
		}
		return storageErr(err)
	}
	c.forget(st)
	c.metrics.expired.Inc()
	c.log.Info("transactional id expired", "transactional_id", id, "unused_for", time.Duration(c.nowMs()-st.UpdatedMs)*time.Millisecond)
	return nil
}

// within runs f on id bounded by runOpTimeout.
func (c *Coordinator) within(ctx context.Context, id string, f func(context.Context, string) error) error {
	ctx, cancel := context.WithTimeout(ctx, runOpTimeout)
	defer cancel()
	return f(ctx, id)
}

// abortTimedOut aborts id's transaction if it is still ongoing past its
// timeout, at the next epoch: the producer is fenced and may recover with
// InitProducer at its old epoch (KIP-588).
func (c *Coordinator) abortTimedOut(ctx context.Context, id string) error {
	return c.update(ctx, id, func(st meta.TxnState) error {
		if st.Status != meta.TxnOngoing || c.nowMs()-st.StartedMs <= int64(st.TimeoutMs) {
			return nil // ended, or another proxy aborted it
		}
		next, err := c.write(ctx, fenced(st, true))
		if err != nil {
			return err
		}
		c.metrics.timedOut.Inc()
		c.log.Info("transaction timed out; aborting", "transactional_id", id, "producer_id", st.ProducerID,
			"epoch", next.Epoch, "timeout_ms", st.TimeoutMs, "partitions", len(st.Partitions))
		_, err = c.complete(ctx, next)
		return err
	})
}

// finishStuck completes id's decided transaction if it is still decided and
// older than RecoverAfter.
func (c *Coordinator) finishStuck(ctx context.Context, id string) error {
	return c.update(ctx, id, func(st meta.TxnState) error {
		if !st.Status.Prepared() || c.nowMs()-st.UpdatedMs < c.cfg.RecoverAfter.Milliseconds() {
			return nil
		}
		if _, err := c.complete(ctx, st); err != nil {
			return err
		}
		c.metrics.recovered.Inc()
		return nil
	})
}
