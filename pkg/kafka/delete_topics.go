package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DeleteTopics v0–6 deletes topics through the coordinator, named or (v6+)
// by topic id, after the same ACL check (delete on the topic) as gRPC's
// DeleteTopic. A topic's data is removed by the coordinator's garbage
// collection; its id is never reused.
func init() { register(kmsg.DeleteTopics, 0, 6, (*Server).handleDeleteTopics) }

func (s *Server) handleDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	for _, name := range req.TopicNames { // v0–5
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = &name
		topics = append(topics, rt)
	}
	for _, rt := range topics {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		name := ""
		if rt.Topic != nil {
			name = *rt.Topic
		} else if t, ok := s.topicByUUID(rt.TopicID); ok {
			name, ot.Topic = t.Name, &t.Name
		} else {
			ot.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		if code, err := s.authorize(ctx, r, meta.OpDelete, auth.Topic(name)); err != nil {
			ot.ErrorCode, ot.ErrorMessage = code, errMsg(err)
		} else if _, err := s.core.Admin.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: name}); err != nil {
			ot.ErrorCode, ot.ErrorMessage = errCode(err), errMsg(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
