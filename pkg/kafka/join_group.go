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

// JoinGroup v0–9 joins a member to a classic group (client-side
// assignors) held by the Strata coordinator (docs/consumer-groups.md).
// The coordinator answers in bounded long polls; the handler polls until
// the join phase completes, the rebalance timeout (plus a margin) passes,
// or the connection ends. From v4 a new member first gets its id with
// MEMBER_ID_REQUIRED, as in Kafka.
func init() { register(kmsg.JoinGroup, 0, 9, (*Server).handleJoinGroup) }

// classicPollMargin is how long past a member's rebalance timeout a Join
// or Sync keeps polling: the coordinator itself ends the phase at the
// rebalance timeout, so the margin only covers a change of coordinator
// leader in between.
const classicPollMargin = 30 * time.Second

func (s *Server) handleJoinGroup(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	if code, _ := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	rebalance := req.RebalanceTimeoutMillis
	if req.Version == 0 {
		rebalance = req.SessionTimeoutMillis
	}
	jr := &stratav1.JoinClassicGroupRequest{
		Group: req.Group, MemberId: req.MemberID, GroupInstanceId: deref(req.InstanceID),
		ProtocolType: req.ProtocolType, SessionTimeoutMs: req.SessionTimeoutMillis, RebalanceTimeoutMs: rebalance,
		ClientId: r.clientID, ClientHost: r.conn.remote, RequireKnownMemberId: req.Version >= 4,
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, &stratav1.ClassicProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(rebalance, 0))*time.Millisecond+classicPollMargin)
	defer cancel()
	for {
		out, err := s.core.Admin.JoinClassicGroup(ctx, jr)
		switch {
		case err != nil && ctx.Err() != nil:
			resp.ErrorCode = kerr.RebalanceInProgress.Code // the client joins again
			return resp, nil
		case err != nil:
			resp.ErrorCode = errCode(err)
			return resp, nil
		case out.GetPending():
			jr.MemberId = out.GetMemberId()
			continue
		case out.GetMemberIdRequired():
			resp.MemberID, resp.ErrorCode = out.GetMemberId(), kerr.MemberIDRequired.Code
			return resp, nil
		}
		fillJoin(resp, out)
		return resp, nil
	}
}

func fillJoin(resp *kmsg.JoinGroupResponse, out *stratav1.JoinClassicGroupResponse) {
	resp.MemberID, resp.Generation, resp.LeaderID = out.GetMemberId(), out.GetGeneration(), out.GetLeader()
	pt, proto := out.GetProtocolType(), out.GetProtocol()
	resp.ProtocolType, resp.Protocol = &pt, &proto
	for _, m := range out.GetMembers() {
		km := kmsg.NewJoinGroupResponseMember()
		km.MemberID, km.ProtocolMetadata = m.GetMemberId(), m.GetMetadata()
		if id := m.GetGroupInstanceId(); id != "" {
			km.InstanceID = &id
		}
		resp.Members = append(resp.Members, km)
	}
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
