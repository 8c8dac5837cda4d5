package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// OffsetDelete v0 removes a group's committed offsets of some partitions
// through the coordinator (proxy.Admin.DeleteOffsets), after the ACL
// checks Kafka makes: delete on the group, and Kafka's READ (consume) on
// each topic. Kafka refuses only the topics a live member subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC); Strata refuses every partition while the
// group has live members, with the same code. A group with nothing stored
// is GROUP_ID_NOT_FOUND.
func init() { register(kmsg.OffsetDelete, 0, 0, (*Server).handleOffsetDelete) }

func (s *Server) handleOffsetDelete(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if code, _ := s.authorize(ctx, r, meta.OpDelete, auth.Group(req.Group)); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	call := &stratav1.DeleteOffsetsRequest{Group: req.Group}
	for _, rt := range req.Topics {
		ot, tp := s.offsetDeleteTopic(ctx, r, rt)
		if len(tp.Partitions) > 0 {
			call.Topics = append(call.Topics, tp)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	if len(call.Topics) == 0 {
		return resp, nil
	}
	_, err := s.core.Admin.DeleteOffsets(ctx, call)
	switch {
	case err == nil:
	case errors.Is(err, apierr.ErrGroupNotEmpty):
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == 0 {
					p.ErrorCode = kerr.GroupSubscribedToTopic.Code
				}
			}
		}
	default:
		resp.ErrorCode = errCode(err)
	}
	return resp, nil
}

// offsetDeleteTopic answers the partitions of rt that fail before the
// call (not authorized, unknown) and returns the ones to delete.
func (s *Server) offsetDeleteTopic(ctx context.Context, r *request, rt kmsg.OffsetDeleteRequestTopic) (kmsg.OffsetDeleteResponseTopic, *stratav1.TopicPartitions) {
	ot := kmsg.NewOffsetDeleteResponseTopic()
	ot.Topic = rt.Topic
	tp := &stratav1.TopicPartitions{Topic: rt.Topic}
	code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Topic(rt.Topic))
	var t meta.Topic
	if code == 0 {
		var err error
		if t, err = s.lookupTopic(ctx, rt.Topic); err != nil {
			code = errCode(err)
		}
	}
	for _, rp := range rt.Partitions {
		op := kmsg.NewOffsetDeleteResponseTopicPartition()
		op.Partition = rp.Partition
		switch {
		case code != 0:
			op.ErrorCode = code
		case rp.Partition < 0 || rp.Partition >= t.Partitions:
			op.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			tp.Partitions = append(tp.Partitions, rp.Partition)
		}
		ot.Partitions = append(ot.Partitions, op)
	}
	return ot, tp
}
