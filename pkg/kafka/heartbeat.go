package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// Heartbeat v0–4 keeps a classic member alive; REBALANCE_IN_PROGRESS
// tells it to rejoin, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it was
// dropped.
func init() { register(kmsg.Heartbeat, 0, 4, (*Server).handleHeartbeat) }

func (s *Server) handleHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	_, err := s.core.Admin.ClassicHeartbeat(ctx, &stratav1.ClassicHeartbeatRequest{Group: req.Group,
		MemberId: req.MemberID, GroupInstanceId: deref(req.InstanceID), Generation: req.Generation})
	resp.ErrorCode = errCode(err)
	return resp, nil
}
