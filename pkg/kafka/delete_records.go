package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DeleteRecords v0–2 moves partitions' log starts forward through the
// coordinator (proxy.Admin.DeleteRecords), after the same ACL check
// (delete on the topic) as gRPC's DeleteRecords. Offset -1 is the high
// watermark; an offset past it is OFFSET_OUT_OF_RANGE; the answer's low
// watermark is the log start after the call. Records below it are no
// longer fetched, and the entries wholly below it leave storage with the
// move. A partition named twice in one topic is INVALID_REQUEST.
func init() { register(kmsg.DeleteRecords, 0, 2, (*Server).handleDeleteRecords) }

func (s *Server) handleDeleteRecords(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteRecordsResponseTopic()
		ot.Topic = rt.Topic
		ot.Partitions = s.deleteRecords(ctx, r, rt)
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// deleteRecords answers one topic of a DeleteRecords request, a partition
// for each one asked, in request order.
func (s *Server) deleteRecords(ctx context.Context, r *request, rt kmsg.DeleteRecordsRequestTopic) []kmsg.DeleteRecordsResponseTopicPartition {
	out := make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
	fail := func(code int16) {
		for i := range out {
			if out[i].ErrorCode == 0 {
				out[i].ErrorCode = code
			}
		}
	}
	for i, rp := range rt.Partitions {
		out[i] = kmsg.NewDeleteRecordsResponseTopicPartition()
		out[i].Partition, out[i].LowWatermark = rp.Partition, -1
	}
	if code, err := s.authorize(ctx, r, meta.OpDelete, auth.Topic(rt.Topic)); err != nil {
		fail(code)
		return out
	}
	t, err := s.lookupTopic(ctx, rt.Topic)
	if err != nil {
		fail(errCode(err))
		return out
	}
	req := &stratav1.DeleteRecordsRequest{Topic: rt.Topic}
	at := map[int32]int{} // partition → its index in out
	for i, rp := range rt.Partitions {
		switch _, dup := at[rp.Partition]; {
		case rp.Partition < 0 || rp.Partition >= t.Partitions:
			out[i].ErrorCode = kerr.UnknownTopicOrPartition.Code
		case dup:
			out[i].ErrorCode = kerr.InvalidRequest.Code
		default:
			at[rp.Partition] = i
			req.Partitions = append(req.Partitions, &stratav1.DeleteRecordsPartition{Partition: rp.Partition, Offset: rp.Offset})
		}
	}
	if len(req.Partitions) == 0 {
		return out
	}
	res, err := s.core.Admin.DeleteRecords(ctx, req)
	if err != nil {
		fail(errCode(err))
		return out
	}
	for _, pr := range res.GetResults() {
		i, ok := at[pr.GetPartition()]
		if !ok {
			continue
		}
		delete(at, pr.GetPartition())
		if err := apierr.FromPart(pr.GetError()); err != nil {
			out[i].ErrorCode = errCode(err)
			continue
		}
		out[i].LowWatermark = pr.GetLogStartOffset()
	}
	for _, i := range at { // not answered: never expected of the coordinator
		out[i].ErrorCode = kerr.UnknownServerError.Code
	}
	return out
}
