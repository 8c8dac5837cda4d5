package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions (Kafka exactly-once) are not supported yet: the
// transactional APIs are registered so that a client gets an answer rather
// than a closed connection, and every answer is UNSUPPORTED_VERSION —
// Kafka's "this broker does not support that" — for each item the request
// names. InitProducerId with a transactional id (init_producer_id.go),
// FindCoordinator for a transaction coordinator and produces of
// transactional batches are refused the same way. docs/kafka.md lists
// them.
func init() {
	register(kmsg.AddPartitionsToTxn, 0, 5, (*Server).handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn, 0, 4, (*Server).handleAddOffsetsToTxn)
	register(kmsg.EndTxn, 0, 5, (*Server).handleEndTxn)
	register(kmsg.TxnOffsetCommit, 0, 5, (*Server).handleTxnOffsetCommit)
}

// noTxnCode answers every use of transactions.
var noTxnCode = kerr.UnsupportedVersion.Code

func (s *Server) handleAddPartitionsToTxn(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		resp.ErrorCode = noTxnCode
		return resp, nil
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewAddPartitionsToTxnResponseTopic()
		ot.Topic = rt.Topic
		for _, p := range rt.Partitions {
			op := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			op.Partition, op.ErrorCode = p, noTxnCode
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

func (s *Server) handleAddOffsetsToTxn(_ context.Context, r *request) (kmsg.Response, error) {
	resp := r.kreq.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	resp.ErrorCode = noTxnCode
	return resp, nil
}

func (s *Server) handleEndTxn(_ context.Context, r *request) (kmsg.Response, error) {
	resp := r.kreq.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = noTxnCode, -1, -1
	return resp, nil
}

func (s *Server) handleTxnOffsetCommit(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewTxnOffsetCommitResponseTopic()
		ot.Topic = rt.Topic
		for _, p := range rt.Partitions {
			op := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			op.Partition, op.ErrorCode = p.Partition, noTxnCode
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
