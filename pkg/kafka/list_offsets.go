package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
)

// ListOffsets v1–10 resolves EARLIEST (-2) to the log start, LATEST (-1) to
// the high watermark, MAX_TIMESTAMP (-3) to the record with the largest
// timestamp, and a timestamp to the first record at or after it (offset
// -1 when there is none, as in Kafka) through proxy.Fetcher. Strata's log
// lives wholly in object storage, so EARLIEST_LOCAL (-4) is EARLIEST and
// LATEST_TIERED (-5) is LATEST. Lookups by time and MAX_TIMESTAMP answer the
// found record's timestamp; EARLIEST and LATEST answer -1, as Kafka does.
// For read_committed, LATEST is the last stable offset.
func init() { register(kmsg.ListOffsets, 1, 10, (*Server).handleListOffsets) }

// ListOffsets special timestamps beyond proxy.OffsetLatest/OffsetEarliest.
const (
	offsetMaxTimestamp  = -3
	offsetEarliestLocal = -4
	offsetLatestTiered  = -5
)

func (s *Server) handleListOffsets(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(rt.Topic))
		var (
			sts  map[int32]meta.PartitionState
			rerr error
		)
		if code == 0 {
			ps := make([]int32, len(rt.Partitions))
			for j, rp := range rt.Partitions {
				ps[j] = rp.Partition
			}
			sts, rerr = s.core.Fetcher.ReadPartitions(ctx, rt.Topic, ps)
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition, op.Offset, op.Timestamp, op.LeaderEpoch = rp.Partition, -1, -1, -1
			switch {
			case code != 0:
				op.ErrorCode = code
			case rerr != nil:
				op.ErrorCode = errCode(rerr)
			default:
				s.listOffset(ctx, rt.Topic, rp, sts, req.IsolationLevel == readCommitted, &op)
			}
			ot.Partitions = append(ot.Partitions, op)
		}
	}
	return resp, nil
}

// listOffset answers one partition from its state in sts, read at the
// start of the request (or, if it is not there, read now): the answer
// covers every record acknowledged before the request.
func (s *Server) listOffset(ctx context.Context, topic string, rp kmsg.ListOffsetsRequestTopicPartition, sts map[int32]meta.PartitionState, readCommitted bool, op *kmsg.ListOffsetsResponseTopicPartition) {
	t, err := s.lookupTopic(ctx, topic)
	if err != nil {
		op.ErrorCode = errCode(err)
		return
	}
	st, ok := s.core.View.Partition(t.ID, rp.Partition)
	if !ok {
		op.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	if op.ErrorCode = epochCheck(rp.CurrentLeaderEpoch, st); op.ErrorCode != 0 {
		return
	}
	op.LeaderEpoch = leaderEpoch(st)
	cur, err := s.currentState(ctx, topic, rp.Partition, sts)
	if err != nil {
		op.ErrorCode = errCode(err)
		return
	}
	ts := rp.Timestamp
	switch ts {
	case offsetMaxTimestamp:
		op.Offset, op.Timestamp, err = s.core.Fetcher.MaxTimestamp(ctx, topic, cur)
		op.ErrorCode = errCode(err)
		return
	case offsetEarliestLocal:
		ts = proxy.OffsetEarliest
	case offsetLatestTiered:
		ts = proxy.OffsetLatest
	}
	if ts == proxy.OffsetLatest && readCommitted {
		op.Offset = proxy.ReadBound(cur, true)
		return
	}
	if ts < proxy.OffsetEarliest {
		op.ErrorCode = errCode(apierr.Errorf(apierr.ErrInvalidRequest, "%s", fmt.Sprintf("timestamp %d", ts)))
		return
	}
	res, err := s.core.Fetcher.ListOffsetsFrom(ctx, topic, cur, ts)
	if err != nil {
		op.ErrorCode = errCode(err)
		return
	}
	op.Offset = res.Offset
	if ts >= 0 {
		op.Timestamp = res.Timestamp
		if res.Offset == res.HighWatermark {
			op.Offset = -1 // no record at or after ts
		}
	}
}

// currentState is partition p of topic as read from etcd at the start of
// the request (sts, from Fetcher.ReadPartitions), or as read now when it
// is not there: state that covers every record acknowledged before the
// request, where the view may lag.
func (s *Server) currentState(ctx context.Context, topic string, p int32, sts map[int32]meta.PartitionState) (meta.PartitionState, error) {
	if st, ok := sts[p]; ok {
		return st, nil
	}
	return s.core.Fetcher.ReadPartition(ctx, topic, p)
}
