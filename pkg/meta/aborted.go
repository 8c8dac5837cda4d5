package meta

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// AbortedTxn is one aborted transaction of a partition: the
// aborted-transaction index that read_committed fetches consult, one key
// per transaction (<root>/aborted/<topicID>/<partition>/<Last>), written
// by the fencing commit that stores the abort marker (Commit.Aborted).
type AbortedTxn struct {
	V int `json:"v"`
	// ProducerID is the producer whose transaction was aborted.
	ProducerID int64 `json:"producer_id"`
	// First is the offset of the transaction's first batch in the partition.
	First int64 `json:"first"`
	// Last is the offset of its abort marker (from the key).
	Last int64 `json:"-"`
}

// abortedPage is how many aborted-transaction keys AbortedTxns reads per
// etcd request.
const abortedPage = 256

// AbortedTxns returns the partition's aborted transactions whose range
// overlaps [from, to): Last >= from and First < to, ordered by Last, at
// most limit of them (all if limit <= 0). It reads every key from from on,
// a page at a time, since a transaction that began below to may end far
// above it.
func (s *Store) AbortedTxns(ctx context.Context, topicID string, partition int32, from, to int64, limit int) ([]AbortedTxn, error) {
	var out []AbortedTxn
	if to <= from {
		return out, nil
	}
	prefix := s.keys.aborted(topicID, partition)
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := s.keys.abortedTxn(topicID, partition, max(from, 0))
	for {
		rctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Get(rctx, start, clientv3.WithRange(end), clientv3.WithLimit(abortedPage))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("meta: list aborted transactions of %s/%d from %d: %w", topicID, partition, from, err)
		}
		for _, kv := range resp.Kvs {
			a, err := decodeAborted(prefix, kv)
			if err != nil {
				return nil, err
			}
			if a.First >= to {
				continue
			}
			if out = append(out, a); limit > 0 && len(out) == limit {
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// decodeAborted decodes an aborted-transaction key under prefix.
func decodeAborted(prefix string, kv *mvccpb.KeyValue) (AbortedTxn, error) {
	var a AbortedTxn
	if err := decode(string(kv.Key), kv.Value, &a); err != nil {
		return AbortedTxn{}, err
	}
	last, err := strconv.ParseInt(strings.TrimPrefix(string(kv.Key), prefix), 10, 64)
	if err != nil {
		return AbortedTxn{}, fmt.Errorf("meta: malformed aborted-transaction key %q: %w", kv.Key, err)
	}
	a.Last = last
	return a, nil
}
