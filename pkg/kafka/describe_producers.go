package kafka

import (
	"cmp"
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeProducers v0 (KIP-664; kafka-transactions.sh describe-producers)
// lists each partition's producers as its state in etcd holds them, by
// producer id: epoch, the last sequence of the last committed request,
// and the first offset of an open transaction (-1 if none). Strata keeps
// no producer timestamps nor coordinator epochs (both -1). Needs consume
// on the topic (Kafka's READ); a partition the topic does not have is
// UNKNOWN_TOPIC_OR_PARTITION.
func init() { register(kmsg.DescribeProducers, 0, 0, (*Server).handleDescribeProducers) }

func (s *Server) handleDescribeProducers(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDescribeProducersResponseTopic()
		ot.Topic = rt.Topic
		code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Topic(rt.Topic))
		var sts map[int32]meta.PartitionState
		if code == 0 {
			var err error
			if sts, err = s.core.Fetcher.ReadPartitions(ctx, rt.Topic, rt.Partitions); err != nil {
				code = errCode(err)
			}
		}
		for _, p := range rt.Partitions {
			op := kmsg.NewDescribeProducersResponseTopicPartition()
			op.Partition = p
			st, ok := sts[p]
			switch {
			case code != 0:
				op.ErrorCode = code
			case !ok:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				op.ActiveProducers = activeProducers(st)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// activeProducers lists st's producers by producer id.
func activeProducers(st meta.PartitionState) []kmsg.DescribeProducersResponseTopicPartitionActiveProducer {
	out := make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, 0, len(st.Producers))
	for pid, ps := range st.Producers {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.CoordinatorEpoch = pid, int32(ps.Epoch), ps.LastSeq, -1
		if ps.Txn != nil {
			ap.CurrentTxnStartOffset = ps.Txn.First
		}
		out = append(out, ap)
	}
	slices.SortFunc(out, func(a, b kmsg.DescribeProducersResponseTopicPartitionActiveProducer) int {
		return cmp.Compare(a.ProducerID, b.ProducerID)
	})
	return out
}
