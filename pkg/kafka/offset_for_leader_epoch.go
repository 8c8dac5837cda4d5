package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// OffsetForLeaderEpoch v2–4 lets a consumer check, after a leader change,
// that the log was not truncated below its position. Strata's logs are
// never truncated — offsets are dense and a commit is final — so the end
// offset of any epoch up to the current one is answered with the high
// watermark, read from etcd as ListOffsets does: it is at or past every
// position a consumer can hold, even one committed through another proxy
// whose view is ahead of this one's, so the check always passes and the
// consumer keeps its position. (kgo uses leader epochs only when this API
// is at v2 or later.)
func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, (*Server).handleOffsetForLeaderEpoch) }

func (s *Server) handleOffsetForLeaderEpoch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewOffsetForLeaderEpochResponseTopic()
		ot.Topic = rt.Topic
		code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(rt.Topic))
		var (
			t   meta.Topic
			sts map[int32]meta.PartitionState
		)
		if code == 0 {
			var err error
			if t, err = s.lookupTopic(ctx, rt.Topic); err != nil {
				code = errCode(err)
			} else {
				ps := make([]int32, len(rt.Partitions))
				for i, rp := range rt.Partitions {
					ps[i] = rp.Partition
				}
				if sts, err = s.core.Fetcher.ReadPartitions(ctx, rt.Topic, ps); err != nil {
					code = errCode(err)
				}
			}
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			op.Partition, op.LeaderEpoch, op.EndOffset = rp.Partition, -1, -1
			op.ErrorCode = code
			if code == 0 {
				s.epochEnd(ctx, t, rp, sts, &op)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// epochEnd answers one partition, with its state in sts read at the
// start of the request (or, if it is not there, read now).
func (s *Server) epochEnd(ctx context.Context, t meta.Topic, rp kmsg.OffsetForLeaderEpochRequestTopicPartition, sts map[int32]meta.PartitionState, op *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
	st, ok := s.core.View.Partition(t.ID, rp.Partition)
	if !ok {
		op.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	if op.ErrorCode = epochCheck(rp.CurrentLeaderEpoch, st); op.ErrorCode != 0 {
		return
	}
	cur, err := s.currentState(ctx, t.Name, rp.Partition, sts)
	if err != nil {
		op.ErrorCode = errCode(err)
		return
	}
	op.LeaderEpoch, op.EndOffset = min(rp.LeaderEpoch, leaderEpoch(st)), max(st.NextOffset, cur.NextOffset)
}
