package meta

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ACL storage. One key per grant:
//
//	<root>/acls/<principal>/<resource type>/<resource name>/<operation>   ACL
//
// with each component path-escaped. Grants only allow; there are no deny
// entries. pkg/auth reads them (ACLs, WatchACLs) and decides.

// ErrInvalidACL reports an ACL with an unknown resource type or operation,
// or an empty field.
var ErrInvalidACL = errors.New("meta: invalid acl")

// Resource types of an ACL.
const (
	ResourceTopic   = "topic"
	ResourceGroup   = "group"
	ResourceCluster = "cluster"
	// ResourceTxnID is a Kafka transactional id: produce on it lets a
	// principal run transactions under the id (Kafka's WRITE on a
	// TransactionalId), describe lets it see them.
	ResourceTxnID = "transactional-id"
)

// ClusterResourceName is the only name of the cluster resource.
const ClusterResourceName = "cluster"

// Operations an ACL grants.
const (
	OpProduce  = "produce"
	OpConsume  = "consume"
	OpDescribe = "describe"
	OpCreate   = "create"
	OpDelete   = "delete"
	OpAlter    = "alter"
	OpAdmin    = "admin"
	// OpAll grants every operation on the resource.
	OpAll = "all"
)

// ACLOperations lists the valid operations, for validation and help texts.
var ACLOperations = []string{OpProduce, OpConsume, OpDescribe, OpCreate, OpDelete, OpAlter, OpAdmin, OpAll}

// ACLResourceTypes lists the valid resource types.
var ACLResourceTypes = []string{ResourceTopic, ResourceGroup, ResourceCluster, ResourceTxnID}

// ACL allows Principal to perform Operation on a resource.
type ACL struct {
	V int `json:"v"`
	// Principal is the authenticated name: a token's principal, a client
	// certificate's subject common name, or "ANONYMOUS". "*" matches every
	// authenticated principal.
	Principal string `json:"principal"`
	// ResourceType is ResourceTopic, ResourceGroup, ResourceCluster or
	// ResourceTxnID.
	ResourceType string `json:"resourceType"`
	// Name is the resource's name: exact, "*" for all, or a prefix ending
	// in "*" ("orders-*"). The cluster resource's name is
	// ClusterResourceName.
	Name string `json:"name"`
	// Operation is one of ACLOperations.
	Operation string `json:"operation"`
}

// String renders the ACL for logs and the CLI.
func (a ACL) String() string {
	return fmt.Sprintf("%s %s %s:%s", a.Principal, a.Operation, a.ResourceType, a.Name)
}

// Validate checks every field.
func (a *ACL) Validate() error {
	switch {
	case a.Principal == "" || a.Name == "":
		return fmt.Errorf("%w: principal and resource name are required", ErrInvalidACL)
	case len(a.Principal) > 256 || len(a.Name) > 256:
		return fmt.Errorf("%w: principal or name longer than 256 bytes", ErrInvalidACL)
	case !contains(ACLResourceTypes, a.ResourceType):
		return fmt.Errorf("%w: resource type %q, want one of %s", ErrInvalidACL, a.ResourceType, strings.Join(ACLResourceTypes, ", "))
	case !contains(ACLOperations, a.Operation):
		return fmt.Errorf("%w: operation %q, want one of %s", ErrInvalidACL, a.Operation, strings.Join(ACLOperations, ", "))
	case a.ResourceType == ResourceCluster && a.Name != ClusterResourceName:
		return fmt.Errorf("%w: the cluster resource is named %q", ErrInvalidACL, ClusterResourceName)
	case strings.Contains(strings.TrimSuffix(a.Name, "*"), "*"):
		return fmt.Errorf("%w: %q: '*' may only end a name", ErrInvalidACL, a.Name)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (k keys) acls() string { return k.root + "/acls/" }
func (k keys) acl(a ACL) string {
	e := url.PathEscape
	return k.acls() + e(a.Principal) + "/" + e(a.ResourceType) + "/" + e(a.Name) + "/" + e(a.Operation)
}

// AddACL stores a grant. Adding one that exists is not an error.
func (s *Store) AddACL(ctx context.Context, a ACL) error {
	a.V = valueVersion
	if err := a.Validate(); err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, err := s.cli.Put(ctx, s.keys.acl(a), encode(a)); err != nil {
		return fmt.Errorf("meta: add acl %s: %w", a, err)
	}
	return nil
}

// RemoveACL deletes a grant and reports whether it existed.
func (s *Store) RemoveACL(ctx context.Context, a ACL) (bool, error) {
	if err := a.Validate(); err != nil {
		return false, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Delete(ctx, s.keys.acl(a))
	if err != nil {
		return false, fmt.Errorf("meta: remove acl %s: %w", a, err)
	}
	return resp.Deleted > 0, nil
}

// ACLs returns every grant, sorted by principal, resource and operation,
// and the etcd revision it was read at (for WatchACLs).
func (s *Store) ACLs(ctx context.Context) ([]ACL, int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.acls(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list acls: %w", err)
	}
	out := make([]ACL, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a ACL
		if err := decode(string(kv.Key), kv.Value, &a); err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, resp.Header.Revision, nil
}

// WatchACLs calls changed after every change to the grants after revision
// rev, until ctx ends (nil) or the watch fails (an error; re-read with ACLs
// and watch again).
func (s *Store) WatchACLs(ctx context.Context, rev int64, changed func()) error {
	wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.keys.acls(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("meta: watch acls: %w", err)
		}
		if len(resp.Events) > 0 {
			changed()
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("meta: watch acls ended")
}
