package kafka

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
	"github.com/strata-mq/strata/pkg/txn"
)

// Transactions (Kafka exactly-once, docs/transactions.md). Every proxy is
// the transaction coordinator of every transactional id, as it is the
// group coordinator of every group: the state of each id lives in etcd and
// pkg/txn moves it by compare-and-swap, so the proxies agree without
// talking to each other. These handlers translate the four transactional
// APIs onto it; InitProducerId (init_producer_id.go) and FindCoordinator
// take the transactional id's branch, Produce checks each transactional
// batch with txn.Coordinator.Verify, and Fetch serves read_committed up to
// the last stable offset.
//
// Versions: the ones a client sends under Kafka's first transaction
// protocol. AddPartitionsToTxn v4+ is broker to broker; EndTxn and
// TxnOffsetCommit v5 belong to the second protocol (KIP-890), which a
// client uses only when the cluster advertises transaction.version 2.
func init() {
	register(kmsg.AddPartitionsToTxn, 0, 3, (*Server).handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn, 0, 4, (*Server).handleAddOffsetsToTxn)
	register(kmsg.EndTxn, 0, 4, (*Server).handleEndTxn)
	register(kmsg.TxnOffsetCommit, 0, 4, (*Server).handleTxnOffsetCommit)
}

// txnRequestID returns the transactional id a transaction coordinator
// request names, and whether req is one: such requests of one id are
// served in the order a connection sent them (txnKey).
func txnRequestID(req kmsg.Request) (string, bool) {
	switch req := req.(type) {
	case *kmsg.InitProducerIDRequest:
		if req.TransactionalID != nil {
			return *req.TransactionalID, true
		}
	case *kmsg.AddPartitionsToTxnRequest:
		return req.TransactionalID, true
	case *kmsg.AddOffsetsToTxnRequest:
		return req.TransactionalID, true
	case *kmsg.TxnOffsetCommitRequest:
		return req.TransactionalID, true
	case *kmsg.EndTxnRequest:
		return req.TransactionalID, true
	}
	return "", false
}

// txnCode is the Kafka code of an error from the transaction coordinator.
// A producer whose epoch is stale is PRODUCER_FENCED on the coordinator's
// APIs (KIP-588; INVALID_PRODUCER_EPOCH before), as Kafka answers; another
// principal's transactional id is TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
func txnCode(err error, version, fencedFrom int16) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, apierr.ErrProducerFenced) && version >= fencedFrom:
		return kerr.ProducerFenced.Code
	case errors.Is(err, apierr.ErrPermissionDenied):
		return kerr.TransactionalIDAuthorizationFailed.Code
	}
	return errCode(err)
}

func (s *Server) handleAddPartitionsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	var parts []txn.Partition
	var outs []*kmsg.AddPartitionsToTxnResponseTopicPartition
	idCode, _ := s.authorize(ctx, r, meta.OpProduce, auth.TxnID(req.TransactionalID))
	denied := idCode != 0
	resp.Topics = make([]kmsg.AddPartitionsToTxnResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewAddPartitionsToTxnResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.AddPartitionsToTxnResponseTopicPartition, len(rt.Partitions))
		code, t := idCode, meta.Topic{}
		if code == 0 {
			code, t = s.txnTopic(ctx, r, meta.OpProduce, rt.Topic)
		}
		for j, p := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			op.Partition = p
			switch {
			case code != 0:
				op.ErrorCode, denied = code, true
			case p < 0 || p >= t.Partitions:
				op.ErrorCode, denied = kerr.UnknownTopicOrPartition.Code, true
			default:
				parts = append(parts, txn.Partition{Topic: t.Name, TopicID: t.ID, Partition: p})
				outs = append(outs, op)
			}
		}
	}
	// As in Kafka, one refused partition fails the whole request: the
	// others answer OPERATION_NOT_ATTEMPTED and nothing is added.
	code := kerr.OperationNotAttempted.Code
	if !denied {
		err := s.txn.AddPartitions(ctx, req.TransactionalID, r.principal().Name, req.ProducerID, req.ProducerEpoch, parts)
		code = txnCode(err, req.Version, 2)
	}
	for _, op := range outs {
		op.ErrorCode = code
	}
	return resp, nil
}

// txnTopic resolves a topic a transaction writes to (op produce) or
// commits offsets of (op consume), checking that the principal may.
func (s *Server) txnTopic(ctx context.Context, r *request, op, name string) (int16, meta.Topic) {
	if code, err := s.authorize(ctx, r, op, auth.Topic(name)); err != nil {
		return code, meta.Topic{}
	}
	t, err := s.lookupTopic(ctx, name)
	if err != nil {
		return errCode(err), meta.Topic{}
	}
	return 0, t
}

func (s *Server) handleAddOffsetsToTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if code, err := s.authorize(ctx, r, meta.OpProduce, auth.TxnID(req.TransactionalID)); err != nil {
		resp.ErrorCode = code
		return resp, nil
	}
	if code, err := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); err != nil {
		resp.ErrorCode = code
		return resp, nil
	}
	err := s.txn.AddGroup(ctx, req.TransactionalID, r.principal().Name, req.ProducerID, req.ProducerEpoch, req.Group)
	resp.ErrorCode = txnCode(err, req.Version, 2)
	return resp, nil
}

func (s *Server) handleEndTxn(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	if code, err := s.authorize(ctx, r, meta.OpProduce, auth.TxnID(req.TransactionalID)); err != nil {
		resp.ErrorCode = code
		return resp, nil
	}
	err := s.txn.End(ctx, req.TransactionalID, r.principal().Name, req.ProducerID, req.ProducerEpoch, req.Commit)
	resp.ErrorCode = txnCode(err, req.Version, 2)
	return resp, nil
}

// handleTxnOffsetCommit stages a consumer group's offsets in the
// transaction: they are committed with it, or dropped if it aborts. The
// group must have been added (AddOffsetsToTxn) first. From v3 the
// consumer's member id and generation are checked against the group, so a
// zombie of a rebalanced group cannot commit its offsets (KIP-447).
func (s *Server) handleTxnOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	groupCode, _ := s.authorize(ctx, r, meta.OpProduce, auth.TxnID(req.TransactionalID))
	if groupCode == 0 {
		groupCode, _ = s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group))
	}
	if groupCode == 0 {
		groupCode = s.txnMemberCode(ctx, req)
	}
	var offs []meta.TxnOffset
	var outs []*kmsg.TxnOffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		code, t := groupCode, meta.Topic{}
		if code == 0 {
			code, t = s.txnTopic(ctx, r, meta.OpConsume, rt.Topic)
		}
		for j, p := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition = p.Partition
			switch {
			case code != 0:
				op.ErrorCode = code
			case p.Partition < 0 || p.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.Offset < 0:
				op.ErrorCode = kerr.InvalidCommitOffsetSize.Code
			default:
				offs = append(offs, meta.TxnOffset{Group: req.Group, TopicID: t.ID, Partition: p.Partition,
					Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: deref(p.Metadata)})
				outs = append(outs, op)
			}
		}
	}
	if len(offs) > 0 {
		err := s.txn.StageOffsets(ctx, req.TransactionalID, r.principal().Name, req.ProducerID, req.ProducerEpoch, req.Group, offs)
		code := txnCode(err, req.Version, 2)
		for _, op := range outs {
			op.ErrorCode = code
		}
	}
	return resp, nil
}

// txnMemberCode checks the group member a TxnOffsetCommit (v3+) names, as
// Kafka does before staging its offsets: 0, or UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION or FENCED_INSTANCE_ID for a member the group no longer
// has at that generation. A request naming none (below v3, or generation -1
// without a member) is not checked.
func (s *Server) txnMemberCode(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) int16 {
	instance := deref(req.InstanceID)
	if req.Generation < 0 && req.MemberID == "" && instance == "" {
		return 0
	}
	_, err := s.core.Admin.CommitClassicOffsets(ctx, &stratav1.CommitClassicOffsetsRequest{Group: req.Group,
		MemberId: req.MemberID, GroupInstanceId: instance, Generation: req.Generation, CheckOnly: true})
	return commitErrCode(req.Version, err)
}

// initTxnProducer answers InitProducerId for a transactional id: the
// coordinator fences the id's earlier producer (aborting its open
// transaction) and returns the id's producer id with the next epoch.
func (s *Server) initTxnProducer(ctx context.Context, r *request, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	if code, err := s.authorize(ctx, r, meta.OpProduce, auth.TxnID(*req.TransactionalID)); err != nil {
		resp.ErrorCode = code
		return
	}
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	pid, epoch, err := s.txn.InitProducer(ctx, *req.TransactionalID, r.principal().Name, timeout, req.ProducerID, req.ProducerEpoch)
	if err != nil {
		resp.ErrorCode = txnCode(err, req.Version, 4)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
}

// maxMarkerWrites bounds the markers one transaction writes at once.
const maxMarkerWrites = 16

// routerMarkers writes transaction markers through the proxy's Router,
// like produces: the Router finds each partition's owner and retries
// while ownership moves.
type routerMarkers struct{ s *Server }

// WriteMarkers implements txn.Markers. A partition whose topic was deleted
// (or deleted and created again: another topic id) needs no marker.
func (m routerMarkers) WriteMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []txn.Partition) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxMarkerWrites)
	now := time.Now().UnixMilli()
	for _, p := range parts {
		g.Go(func() error {
			t, err := m.s.lookupTopic(gctx, p.Topic)
			if errors.Is(err, apierr.ErrUnknownTopic) || (err == nil && t.ID != p.TopicID) {
				return nil
			}
			if err != nil {
				return err
			}
			_, err = m.s.core.Router.Produce(gctx, p.Topic, p.Partition, segment.ControlBatch(pid, epoch, commit, now))
			if errors.Is(err, apierr.ErrUnknownTopic) {
				return nil
			}
			return err
		})
	}
	return g.Wait()
}
