package client

import (
	"context"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// ACL grants a principal one operation on a resource (docs/security.md).
type ACL struct {
	// Principal is a token's principal, a client certificate's subject
	// common name, "ANONYMOUS", or "*" for everyone.
	Principal string
	// ResourceType is "topic", "group" or "cluster".
	ResourceType string
	// ResourceName is an exact name, "*", or a prefix ending in "*"; the
	// cluster resource is "cluster".
	ResourceName string
	// Operation is produce, consume, describe, create, delete, alter,
	// admin or all.
	Operation string
}

func (a ACL) proto() *stratav1.Acl {
	return &stratav1.Acl{Principal: a.Principal, ResourceType: a.ResourceType, ResourceName: a.ResourceName, Operation: a.Operation}
}

// AddACL stores a grant. Adding an existing one is not an error. Needs the
// admin operation on the cluster when ACLs are enabled.
func (c *Client) AddACL(ctx context.Context, a ACL) error {
	_, err := c.AddACLEnforced(ctx, a)
	return err
}

// AddACLEnforced is AddACL that also reports whether the proxy that stored
// the grant enforces ACLs. The grant is stored either way, and takes
// effect wherever ACLs are on; where they are off everything is allowed.
func (c *Client) AddACLEnforced(ctx context.Context, a ACL) (bool, error) {
	resp, err := call(ctx, c, c.api.AddAcl, &stratav1.AddAclRequest{Acl: a.proto()})
	if err != nil {
		return false, err
	}
	return resp.GetAclsEnforced(), nil
}

// RemoveACL deletes a grant and reports whether it existed.
func (c *Client) RemoveACL(ctx context.Context, a ACL) (bool, error) {
	resp, err := call(ctx, c, c.api.RemoveAcl, &stratav1.RemoveAclRequest{Acl: a.proto()})
	if err != nil {
		return false, err
	}
	return resp.GetRemoved(), nil
}

// ListACLs returns the grants of principal, or every grant when principal
// is empty.
func (c *Client) ListACLs(ctx context.Context, principal string) ([]ACL, error) {
	resp, err := call(ctx, c, c.api.ListAcls, &stratav1.ListAclsRequest{Principal: principal})
	if err != nil {
		return nil, err
	}
	out := make([]ACL, 0, len(resp.GetAcls()))
	for _, a := range resp.GetAcls() {
		out = append(out, ACL{Principal: a.GetPrincipal(), ResourceType: a.GetResourceType(), ResourceName: a.GetResourceName(), Operation: a.GetOperation()})
	}
	return out, nil
}
