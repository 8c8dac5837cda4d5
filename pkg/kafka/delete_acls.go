package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DeleteAcls v0–3 removes the grants that pass each filter and answers
// them as Kafka bindings (acls.go); it needs admin on the cluster, as
// gRPC's RemoveAcl does.
func init() { register(kmsg.DeleteACLs, 0, 3, (*Server).handleDeleteACLs) }

func (s *Server) handleDeleteACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	code, err := s.authorize(ctx, r, meta.OpAdmin, auth.Cluster())
	var list []meta.ACL
	if code == 0 {
		if list, err = s.core.ACLs.List(ctx); err != nil {
			code = errCode(err)
		}
	}
	for _, rf := range req.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		if code != 0 {
			res.ErrorCode, res.ErrorMessage = code, errMsg(err)
			resp.Results = append(resp.Results, res)
			continue
		}
		f := aclFilter{resourceType: rf.ResourceType, name: rf.ResourceName, pattern: rf.ResourcePatternType,
			principal: rf.Principal, host: rf.Host, op: rf.Operation, permission: rf.PermissionType}
		for _, a := range list {
			if f.matches(a) {
				res.MatchingACLs = append(res.MatchingACLs, s.deleteACL(ctx, a))
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// deleteACL removes one grant and answers it as a matching binding.
func (s *Server) deleteACL(ctx context.Context, a meta.ACL) kmsg.DeleteACLsResponseResultMatchingACL {
	b := bindingOf(a)
	m := kmsg.NewDeleteACLsResponseResultMatchingACL()
	m.ResourceType, m.ResourceName, m.ResourcePatternType = b.resourceType, b.name, b.pattern
	m.Principal, m.Host, m.Operation, m.PermissionType = b.principal, b.host, b.op, b.permission
	if _, err := s.core.ACLs.Remove(ctx, a); err != nil {
		m.ErrorCode, m.ErrorMessage = errCode(err), errMsg(err)
	}
	return m
}
