package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DeleteGroups v0–2 removes groups without live members, with their
// committed offsets (delete ACL on the group): NON_EMPTY_GROUP while a
// group has members, GROUP_ID_NOT_FOUND for a group with nothing stored.
func init() { register(kmsg.DeleteGroups, 0, 2, (*Server).handleDeleteGroups) }

func (s *Server) handleDeleteGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		if code, err := s.authorize(ctx, r, meta.OpDelete, auth.Group(name)); code != 0 {
			g.ErrorCode, g.ErrorMessage = code, errMsg(err)
		} else if _, err := s.core.Admin.DeleteGroup(ctx, &stratav1.DeleteGroupRequest{Group: name}); err != nil {
			g.ErrorCode, g.ErrorMessage = errCode(err), errMsg(err)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
