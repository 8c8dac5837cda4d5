package kafka

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// ListGroups v0–5 lists every group the principal may describe, classic
// and server-side alike, all of protocol type "consumer". The group type
// (v5) is "consumer" for a server-side (KIP-848 or gRPC) group and
// "classic" otherwise; the filters of v4 and v5 match case-insensitively,
// as Kafka's do.
func init() { register(kmsg.ListGroups, 0, 5, (*Server).handleListGroups) }

func (s *Server) handleListGroups(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	out, err := s.core.Admin.ListGroups(ctx, &stratav1.ListGroupsRequest{})
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	for _, g := range out.GetGroups() {
		typ := "classic"
		if g.GetAssignor() != "" {
			typ = "consumer"
		}
		if !match(req.StatesFilter, g.GetState()) || !match(req.TypesFilter, typ) ||
			!s.allowed(ctx, r, meta.OpDescribe, auth.Group(g.GetGroup())) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.GetGroup(), "consumer", g.GetState(), typ
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}
