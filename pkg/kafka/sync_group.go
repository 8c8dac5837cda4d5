package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// SyncGroup v0–5: the leader hands in every member's assignment and each
// member gets its own. Like JoinGroup it polls the coordinator's bounded
// long poll until the leader's assignment is in.
func init() { register(kmsg.SyncGroup, 0, 5, (*Server).handleSyncGroup) }

// maxSyncWait bounds a SyncGroup's wait for the leader: the coordinator
// ends a sync phase at the longest rebalance timeout (at most 5 minutes).
const maxSyncWait = 5*time.Minute + classicPollMargin

func (s *Server) handleSyncGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	sr := &stratav1.SyncClassicGroupRequest{Group: req.Group, MemberId: req.MemberID,
		GroupInstanceId: deref(req.InstanceID), Generation: req.Generation}
	for _, a := range req.GroupAssignment {
		sr.Assignments = append(sr.Assignments, &stratav1.ClassicAssignment{MemberId: a.MemberID, Assignment: a.MemberAssignment})
	}
	ctx, cancel := context.WithTimeout(ctx, maxSyncWait)
	defer cancel()
	for {
		out, err := s.core.Admin.SyncClassicGroup(ctx, sr)
		switch {
		case err != nil && ctx.Err() != nil:
			resp.ErrorCode = kerr.RebalanceInProgress.Code
			return resp, nil
		case err != nil:
			resp.ErrorCode = errCode(err)
			return resp, nil
		case out.GetPending():
			continue
		}
		pt, proto := out.GetProtocolType(), out.GetProtocol()
		resp.ProtocolType, resp.Protocol = &pt, &proto
		resp.MemberAssignment = out.GetAssignment()
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp, nil
	}
}
