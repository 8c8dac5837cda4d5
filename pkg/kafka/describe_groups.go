package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeGroups v0–5 describes groups as Kafka's classic coordinator
// does: state, protocol, and each member with its metadata and
// assignment. A server-side group shows its members without metadata; a
// group that does not exist is "Dead". Authorized operations (v3+) are
// not computed (-2147483648, "not asked").
func init() { register(kmsg.DescribeGroups, 0, 5, (*Server).handleDescribeGroups) }

func (s *Server) handleDescribeGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = name
		if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Group(name)); code != 0 {
			g.ErrorCode, g.ErrorMessage = code, errMsg(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		d, err := s.core.Admin.DescribeClassicGroup(ctx, &stratav1.DescribeClassicGroupRequest{Group: name})
		if err != nil {
			g.ErrorCode, g.ErrorMessage = errCode(err), errMsg(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State, g.ProtocolType, g.Protocol = d.GetState(), d.GetProtocolType(), d.GetProtocol()
		for _, m := range d.GetMembers() {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.ClientID, gm.ClientHost = m.GetMemberId(), m.GetClientId(), m.GetClientHost()
			gm.ProtocolMetadata, gm.MemberAssignment = m.GetMetadata(), m.GetAssignment()
			if id := m.GetGroupInstanceId(); id != "" {
				gm.InstanceID = &id
			}
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
