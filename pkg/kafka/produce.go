package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/segment"
)

// Produce v3–12 (advertised from v0, as Kafka 4.0 does; v0–2 are answered
// with UNSUPPORTED_VERSION). Each partition's record batches go through
// proxy.Router to the owning broker untouched — codec and all — and are
// acknowledged, for acks=1 and acks=-1 alike, only after the broker's
// object PUT and fencing commit: the same durability as a gRPC produce.
// acks=0 is produced the same way and answered with nothing; if it fails,
// the connection is closed, as Kafka does.
//
// Idempotent producers need nothing extra: Kafka's producer id, epoch and
// base sequence travel in each batch header, which is exactly what
// Strata's brokers deduplicate on, so a retried batch that was committed
// gets success with its original offsets. Plain (non-idempotent) batches
// of one partition on one connection are sent in request order, one
// request after the other, so pipelined requests keep their order; an
// idempotent producer's requests are pipelined to the broker, which orders
// them by sequence. A transactional batch is produced the same way once
// the transaction coordinator confirms that its producer's ongoing
// transaction holds the partition (txn.Coordinator.Verify), so no
// transaction writes where its markers will not reach; control batches
// come only from the coordinator and are refused from clients.
func init() {
	registerAPI(api{key: kmsg.Produce, min: 3, max: 12, advertisedMin: 0, handle: (*Server).handleProduce})
}

// errControlBatch refuses a client's control batch.
var errControlBatch = apierr.Errorf(apierr.ErrInvalidRequest, "control batches (transaction markers) are written only by the transaction coordinator")

// producePart is one partition of a produce request.
type producePart struct {
	topic     string
	partition int32
	records   []byte
	out       *kmsg.ProduceResponseTopicPartition
}

func (s *Server) handleProduce(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var parts []producePart
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewProduceResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition, op.BaseOffset, op.LogStartOffset = rp.Partition, -1, -1
			parts = append(parts, producePart{topic: rt.Topic, partition: rp.Partition, records: rp.Records, out: op})
		}
	}
	if len(r.turns) != len(parts) { // the reader claims them; a request built otherwise claims now
		r.turns = r.conn.order.claimAll(req)
	}
	defer func() { // every turn ends, whatever happened
		for _, t := range r.turns {
			t.done()
		}
	}()
	var refuse error
	code := int16(0)
	switch {
	case req.Version < 3:
		code, refuse = kerr.UnsupportedVersion.Code, fmt.Errorf("produce v%d is not served; use v3 or later (record batch v2)", req.Version)
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		code, refuse = kerr.InvalidRequiredAcks.Code, fmt.Errorf("acks %d: want 0, 1 or -1", req.Acks)
	}
	if refuse != nil {
		for _, p := range parts {
			p.out.ErrorCode, p.out.ErrorMessage = code, errMsg(refuse)
		}
		return ackResponse(req, resp)
	}
	if req.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	total := s.producePartitions(ctx, r, parts)
	if err := s.core.Guard.Throttle(ctx, r.principal(), auth.KindProduce, total); err != nil {
		s.log.Debug("kafka: produce throttle cut short", "err", err)
	}
	return ackResponse(req, resp)
}

// ackResponse is resp, or for acks=0 no response — and, if a partition
// failed, an error that closes the connection: as in Kafka, that is how a
// client that waits for no answer learns that something went wrong.
func ackResponse(req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) (kmsg.Response, error) {
	if req.Acks != 0 {
		return resp, nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return nil, fmt.Errorf("acks=0 produce to %s/%d failed: %v", t.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
	return nil, nil
}

// producePartitions authorizes and produces every partition concurrently
// and returns the record bytes received.
func (s *Server) producePartitions(ctx context.Context, r *request, parts []producePart) int {
	type authz struct {
		code int16
		err  error
	}
	auths := map[string]authz{}
	total := 0
	gather := proxy.NewProduceGather(len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		total += len(p.records)
		turn := r.turns[i]
		ctx, left := gather.Part(ctx)
		a, seen := auths[p.topic]
		if !seen {
			a.code, a.err = s.authorize(ctx, r, meta.OpProduce, auth.Topic(p.topic))
			auths[p.topic] = a
		}
		if a.err != nil {
			p.out.ErrorCode, p.out.ErrorMessage = a.code, errMsg(a.err)
			left()
			turn.done()
			continue
		}
		wg.Go(func() {
			defer turn.done()
			defer left()
			base, err := s.produceOne(ctx, turn, p)
			p.out.BaseOffset = base
			if err != nil {
				p.out.ErrorCode, p.out.ErrorMessage = errCode(err), errMsg(err)
			}
		})
	}
	wg.Wait()
	return total
}

// produceOne checks one partition's batches against the proxy's limits,
// refuses control batches, checks transactional ones with the
// transaction coordinator, waits for its turn if the batches are not
// idempotent, and produces them through the Router.
func (s *Server) produceOne(ctx context.Context, turn *turn, p producePart) (int64, error) {
	if len(p.records) == 0 {
		return -1, apierr.Errorf(apierr.ErrCorruptBatch, "produce to %s/%d has no record batches", p.topic, p.partition)
	}
	if err := s.core.CheckLimits(&stratav1.ProduceRequest{Topic: p.topic, Partition: p.partition, Batches: p.records}); err != nil {
		return -1, err
	}
	hs, err := segment.SplitBatches(p.records)
	if err != nil {
		return -1, apierr.Errorf(apierr.ErrCorruptBatch, "%v", err)
	}
	idempotent := true
	for _, h := range hs {
		if h.Attributes&segment.AttrControl != 0 {
			return -1, errControlBatch
		}
		idempotent = idempotent && h.ProducerID != segment.NoProducerID
	}
	if hs[0].Attributes&segment.AttrTransactional != 0 {
		if err := s.verifyTxn(ctx, p, hs[0]); err != nil {
			return -1, err
		}
	}
	if !idempotent {
		if !turn.ready() {
			proxy.GoAlone(ctx) // its request's other parts go without it
		}
		if err := turn.wait(ctx); err != nil {
			return -1, err
		}
	}
	res, err := s.core.Router.Produce(ctx, p.topic, p.partition, p.records)
	if err != nil {
		return -1, err
	}
	return res.BaseOffset, nil
}

// verifyTxn checks that a transactional batch's producer may write to the
// partition: its transaction is ongoing and holds the partition. The
// broker checks that all of a request's batches are transactional alike.
func (s *Server) verifyTxn(ctx context.Context, p producePart, h segment.BatchHeader) error {
	t, err := s.lookupTopic(ctx, p.topic)
	if err != nil {
		return err
	}
	return s.txn.Verify(ctx, h.ProducerID, h.ProducerEpoch, t.ID, p.partition)
}

// requestOrder keeps a connection's requests of one key in request
// order, as Kafka serves a connection's requests one after another: each
// turn waits for the previous turn of the same key to finish. The
// connection's reader claims a request's turns when it decodes it, so
// turns follow request order although handlers run concurrently. Plain
// produces take one turn per partition (claimAll), offset commits one per
// group (commitKey): a commit held up by a coordinator failover must not
// land after, and undo, the same client's later commit. Transaction
// coordinator requests take one per transactional id (txnKey): librdkafka
// sends EndTxn without waiting for the AddPartitionsToTxn before it, and
// the abort must find the partitions added.
type requestOrder struct {
	mu   sync.Mutex // guards last
	last map[partKey]chan struct{}
}

// partKey names a partition, or with partition commitPartition a group
// whose commits are ordered (commitKey), or with txnPartition a
// transactional id (txnKey).
type partKey struct {
	topic     string
	partition int32
}

// commitPartition marks a partKey that names a group (commitKey).
const commitPartition = -1

// commitKey is the order key of a group's offset commits.
func commitKey(group string) partKey { return partKey{topic: group, partition: commitPartition} }

// txnPartition marks a partKey that names a transactional id (txnKey).
const txnPartition = -2

// txnKey is the order key of a transactional id's coordinator requests.
func txnKey(id string) partKey { return partKey{topic: id, partition: txnPartition} }

// turn is one request's place in its key's order.
type turn struct {
	prev <-chan struct{} // closed when the previous produce finished; nil if none
	mine chan struct{}
	once sync.Once
}

// claimAll takes a turn for every partition of a produce request, in the
// order the handler lists them (topics, then their partitions).
func (o *requestOrder) claimAll(req *kmsg.ProduceRequest) []*turn {
	var keys []partKey
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			keys = append(keys, partKey{rt.Topic, rp.Partition})
		}
	}
	return o.claim(keys...)
}

// claim takes a turn for each key, in order.
func (o *requestOrder) claim(keys ...partKey) []*turn {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[partKey]chan struct{}{}
	}
	out := make([]*turn, 0, len(keys))
	for _, k := range keys {
		t := &turn{prev: o.last[k], mine: make(chan struct{})}
		o.last[k] = t.mine
		out = append(out, t)
	}
	return out
}

// ready reports whether the previous request of the key finished.
func (t *turn) ready() bool {
	if t.prev == nil {
		return true
	}
	select {
	case <-t.prev:
		return true
	default:
		return false
	}
}

// wait waits until the previous request of the key finished.
func (t *turn) wait(ctx context.Context) error {
	if t.prev == nil {
		return nil
	}
	select {
	case <-t.prev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done ends the turn, letting the next request of the key go. It may be
// called more than once.
func (t *turn) done() { t.once.Do(func() { close(t.mine) }) }
