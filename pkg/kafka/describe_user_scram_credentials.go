package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeUserScramCredentials v0 lists the SCRAM credentials of the
// proxy's token file (docs/security.md): for each user, the mechanisms it
// may sign in with and their iteration counts, as `kafka-configs
// --describe --entity-type users` shows them. A null or empty user list
// describes every user with credentials; a user without any is
// RESOURCE_NOT_FOUND, one named twice DUPLICATE_RESOURCE. It needs
// describe on the cluster, as Kafka's DESCRIBE on CLUSTER.
// AlterUserScramCredentials is not served: the token file is the one
// place credentials are made (strata acl token).
func init() {
	register(kmsg.DescribeUserSCRAMCredentials, 0, 0, (*Server).handleDescribeUserSCRAMCredentials)
}

// scramMechanismCodes are Kafka's codes of the SCRAM mechanisms.
var scramMechanismCodes = map[string]int8{auth.SCRAMSHA256: 1, auth.SCRAMSHA512: 2}

func (s *Server) handleDescribeUserSCRAMCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Cluster()); code != 0 {
		resp.ErrorCode, resp.ErrorMessage = code, errMsg(err)
		return resp, nil
	}
	users := s.core.Guard.SCRAMUsers()
	var names []string
	for _, u := range req.Users {
		names = append(names, u.Name)
	}
	if len(names) == 0 {
		for u := range users {
			names = append(names, u)
		}
		slices.Sort(names)
	}
	seen := map[string]int{}
	for _, u := range names {
		seen[u]++
	}
	for _, u := range names {
		if seen[u] == 0 {
			continue // a duplicate, answered once
		}
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u
		switch creds := users[u]; {
		case seen[u] > 1:
			res.ErrorCode, res.ErrorMessage = kerr.DuplicateResource.Code, errMsg(fmt.Errorf("user %q is named more than once", u))
		case len(creds) == 0:
			res.ErrorCode, res.ErrorMessage = kerr.ResourceNotFound.Code, errMsg(fmt.Errorf("user %q has no SCRAM credentials in the token file", u))
		default:
			for _, c := range creds {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = scramMechanismCodes[c.Mechanism], int32(c.Iterations)
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
		seen[u] = 0
	}
	return resp, nil
}
