package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeAcls v0–3 lists the grants that pass the filter, as Kafka
// bindings (acls.go), grouped by resource; it needs admin on the cluster,
// as gRPC's ListAcls does.
func init() { register(kmsg.DescribeACLs, 0, 3, (*Server).handleDescribeACLs) }

func (s *Server) handleDescribeACLs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if code, err := s.authorize(ctx, r, meta.OpAdmin, auth.Cluster()); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, errMsg(err)
		return resp, nil
	}
	list, err := s.core.ACLs.List(ctx)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMsg(err)
		return resp, nil
	}
	f := aclFilter{resourceType: req.ResourceType, name: req.ResourceName, pattern: req.ResourcePatternType,
		principal: req.Principal, host: req.Host, op: req.Operation, permission: req.PermissionType}
	type resource struct {
		typ     kmsg.ACLResourceType
		name    string
		pattern kmsg.ACLResourcePatternType
	}
	at := map[resource]int{} // index in resp.Resources
	for _, a := range list {
		if !f.matches(a) {
			continue
		}
		b := bindingOf(a)
		key := resource{b.resourceType, b.name, b.pattern}
		i, ok := at[key]
		if !ok {
			i = len(resp.Resources)
			at[key] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = b.resourceType, b.name, b.pattern
			resp.Resources = append(resp.Resources, res)
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host, acl.Operation, acl.PermissionType = b.principal, b.host, b.op, b.permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, acl)
	}
	return resp, nil
}
