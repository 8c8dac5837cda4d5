package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// CreatePartitions v0–3: Strata cannot add partitions to an existing
// topic yet (a topic's partition count is fixed at creation), so every
// request is answered INVALID_PARTITIONS with a message that says so —
// except one that asks for the count the topic already has, answered as
// Kafka does (INVALID_PARTITIONS, "already has").
func init() { register(kmsg.CreatePartitions, 0, 3, (*Server).handleCreatePartitions) }

func (s *Server) handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		code, err := s.authorize(ctx, r, meta.OpAlter, auth.Topic(rt.Topic))
		if err == nil {
			var t meta.Topic
			if t, err = s.lookupTopic(ctx, rt.Topic); err != nil {
				code = errCode(err)
			} else if rt.Count == t.Partitions {
				code, err = kerr.InvalidPartitions.Code, fmt.Errorf("topic %q already has %d partitions", rt.Topic, t.Partitions)
			} else {
				code, err = kerr.InvalidPartitions.Code, fmt.Errorf("topic %q: Strata cannot change a topic's partition count (%d) yet", rt.Topic, t.Partitions)
			}
		}
		ot.ErrorCode, ot.ErrorMessage = code, errMsg(err)
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}
