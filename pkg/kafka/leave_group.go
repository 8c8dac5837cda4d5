package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// LeaveGroup v0–5 removes classic members at once (v3+: several, by
// member or instance id), so the others rebalance without waiting for a
// session timeout.
func init() { register(kmsg.LeaveGroup, 0, 5, (*Server).handleLeaveGroup) }

func (s *Server) handleLeaveGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	leave := func(member, instance string) int16 {
		_, err := s.core.Admin.LeaveClassicGroup(ctx, &stratav1.LeaveClassicGroupRequest{Group: req.Group, MemberId: member, GroupInstanceId: instance})
		return errCode(err)
	}
	if req.Version < 3 {
		resp.ErrorCode = leave(req.MemberID, "")
		return resp, nil
	}
	for _, m := range req.Members {
		om := kmsg.NewLeaveGroupResponseMember()
		om.MemberID, om.InstanceID = m.MemberID, m.InstanceID
		om.ErrorCode = leave(m.MemberID, deref(m.InstanceID))
		resp.Members = append(resp.Members, om)
	}
	return resp, nil
}
