package meta

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcd roles of Strata's servers (ApplyRBAC). An etcd with client
// certificate authentication and auth enabled takes a client
// certificate's common name as the user name; each server's user holds
// the role of its kind.
const (
	RBACRoleProxy       = "strata-proxy"
	RBACRoleBroker      = "strata-broker"
	RBACRoleCoordinator = "strata-coordinator"
)

// RBACGrant is a key prefix a role may read, or read and write.
type RBACGrant struct {
	// Prefix is the key prefix: the range [Prefix, Prefix's end).
	Prefix string
	// Write allows writes besides reads.
	Write bool
}

// RBACGrants returns each role's grants for a cluster under prefix. Every
// role reads the whole prefix (views watch all of it); brokers write
// partition state, segment entries and their registrations; proxies
// write ACLs; coordinators write everything. So a broker's etcd
// certificate cannot change topics, ACLs, groups or the election, and a
// proxy's cannot touch data. It does not confine a broker to its own
// partitions: ownership moves, and a commit writes the partition key that
// also holds owner and epoch (docs/security.md).
func RBACGrants(prefix string) map[string][]RBACGrant {
	k := keys{root: prefix}
	all := RBACGrant{Prefix: prefix + "/"}
	return map[string][]RBACGrant{
		RBACRoleBroker: {all,
			{Prefix: k.partitions(), Write: true},
			{Prefix: k.root + "/segments/", Write: true},
			{Prefix: k.brokers(), Write: true}},
		RBACRoleProxy:       {all, {Prefix: k.acls(), Write: true}},
		RBACRoleCoordinator: {{Prefix: prefix + "/", Write: true}},
	}
}

// ApplyRBAC creates the roles of RBACGrants(prefix) in etcd through cli
// (a client of the root user, or of an etcd with auth still off), and
// for each entry of users (user name → role) a user without a password —
// etcd authenticates it by its client certificate's common name — holding
// that role. Existing roles and users are reused; grants are added, not
// replaced. It does not enable authentication (etcdctl auth enable, or
// cli.AuthEnable, once a root user exists).
func ApplyRBAC(ctx context.Context, cli *clientv3.Client, prefix string, users map[string]string) error {
	grants := RBACGrants(prefix)
	for role, gs := range grants {
		if _, err := cli.RoleAdd(ctx, role); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("meta: rbac: add role %s: %w", role, err)
		}
		for _, g := range gs {
			perm := clientv3.PermissionType(clientv3.PermRead)
			if g.Write {
				perm = clientv3.PermissionType(clientv3.PermReadWrite)
			}
			if _, err := cli.RoleGrantPermission(ctx, role, g.Prefix, clientv3.GetPrefixRangeEnd(g.Prefix), perm); err != nil {
				return fmt.Errorf("meta: rbac: grant %s on %s: %w", role, g.Prefix, err)
			}
		}
	}
	for user, role := range users {
		if _, ok := grants[role]; !ok {
			return fmt.Errorf("meta: rbac: user %s: unknown role %q", user, role)
		}
		opts := &clientv3.UserAddOptions{NoPassword: true}
		if _, err := cli.UserAddWithOptions(ctx, user, "", opts); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
			return fmt.Errorf("meta: rbac: add user %s: %w", user, err)
		}
		if _, err := cli.UserGrantRole(ctx, user, role); err != nil {
			return fmt.Errorf("meta: rbac: grant %s to %s: %w", role, user, err)
		}
	}
	return nil
}
