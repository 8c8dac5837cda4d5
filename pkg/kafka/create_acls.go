package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// CreateAcls v0–3 stores grants (proxy.ACLs, as gRPC's AddAcl), after the
// same check: admin on the cluster. Each binding succeeds or fails on its
// own; one Strata's grants cannot express (DENY, a host other than "*", a
// principal type other than User, a resource type other than topic, group
// or cluster) is INVALID_REQUEST with the reason (see acls.go).
func init() { register(kmsg.CreateACLs, 0, 3, (*Server).handleCreateACLs) }

func (s *Server) handleCreateACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	code, err := s.authorize(ctx, r, meta.OpAdmin, auth.Cluster())
	for _, c := range req.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		if code != 0 {
			res.ErrorCode, res.ErrorMessage = code, errMsg(err)
			resp.Results = append(resp.Results, res)
			continue
		}
		b := aclBinding{resourceType: c.ResourceType, name: c.ResourceName, pattern: c.ResourcePatternType,
			principal: c.Principal, host: c.Host, op: c.Operation, permission: c.PermissionType}
		a, err := b.grant()
		if err == nil {
			err = s.core.ACLs.Add(ctx, a)
		}
		if err != nil {
			res.ErrorCode, res.ErrorMessage = errCode(err), errMsg(err)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
