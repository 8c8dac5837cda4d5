package txn

import (
	"context"

	"github.com/strata-mq/strata/pkg/meta"
)

// Describe returns transactional id's state as etcd holds it (Kafka's
// DescribeTransactions); Revision 0 when the id has never been used.
func (c *Coordinator) Describe(ctx context.Context, id string) (meta.TxnState, error) {
	if err := meta.ValidateTxnID(id); err != nil {
		return meta.TxnState{}, err
	}
	return c.read(ctx, id)
}

// List returns the state of every transactional id, by id, as etcd holds
// them (Kafka's ListTransactions). It reads etcd rather than the watched
// copy, so an administrator sees an id created through any proxy at once.
func (c *Coordinator) List(ctx context.Context) ([]meta.TxnState, error) {
	list, _, err := c.cfg.Meta.ListTxns(ctx)
	if err != nil {
		return nil, storageErr(err)
	}
	return list, nil
}

// PendingOffsets returns the partitions of group whose offsets an ongoing
// or decided transaction has staged and not committed yet, from the
// in-memory copy (KIP-447: a consumer that asks for stable offsets waits
// for them). loaded is false until Run's first listing filled the copy.
func (c *Coordinator) PendingOffsets(group string) (pending map[meta.PartitionID]struct{}, loaded bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.byID {
		if e.st.Status != meta.TxnOngoing && !e.st.Status.Prepared() {
			continue
		}
		for _, o := range e.st.Offsets {
			if o.Group != group {
				continue
			}
			if pending == nil {
				pending = map[meta.PartitionID]struct{}{}
			}
			pending[meta.PartitionID{TopicID: o.TopicID, Partition: o.Partition}] = struct{}{}
		}
	}
	return pending, c.loaded
}
