package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// initSecurity builds the Guard (authentication, ACLs, quotas) and the
// limiter from the configuration.
func (s *Server) initSecurity() error {
	ac := s.cfg.Auth
	ac.Registerer = s.reg
	g, err := auth.New(ac)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	s.guard = g
	s.acls = &ACLs{meta: s.cfg.Meta, guard: g, log: s.log, enforced: ac.ACLs}
	s.limits = &limiter{l: s.cfg.Limits, metrics: newLimitMetrics(s.reg), topicCount: func() int { return len(s.view.Topics()) }}
	return nil
}

// serverOptions are the public listener's TLS, request size limit and
// interceptors: the Guard first (unauthenticated callers learn nothing),
// then the limits.
func (s *Server) serverOptions() []rpc.ServerOption {
	return []rpc.ServerOption{
		rpc.WithServerTLS(s.cfg.TLS),
		rpc.WithMaxRequestBytes(s.cfg.Limits.MaxRequestBytes),
		rpc.WithUnaryInterceptors(s.guard.UnaryInterceptor(), s.limits.interceptor()),
	}
}

// limitConns applies MaxConnsPerClient to the public listener.
func (s *Server) limitConns(l net.Listener) net.Listener {
	return rpc.LimitConnsPerHost(l, s.cfg.Limits.MaxConnsPerClient, func(host string) {
		s.limits.metrics.rejected.WithLabelValues("connections").Inc()
		s.log.Warn("connection refused: too many from one client", "client", host, "limit", s.cfg.Limits.MaxConnsPerClient)
	})
}

// Guard returns the authentication, ACL and quota checks, for other front
// ends.
func (s *Server) Guard() *auth.Guard { return s.guard }

// aclFromProto converts a gRPC ACL (ACLs.Add and Remove validate it).
func aclFromProto(a *stratav1.Acl) (meta.ACL, error) {
	if a == nil {
		return meta.ACL{}, apierr.Errorf(apierr.ErrInvalidRequest, "no acl")
	}
	out := meta.ACL{Principal: a.GetPrincipal(), ResourceType: a.GetResourceType(), Name: a.GetResourceName(), Operation: a.GetOperation()}
	if out.ResourceType == meta.ResourceCluster && out.Name == "" {
		out.Name = meta.ClusterResourceName
	}
	return out, nil
}

func aclToProto(a meta.ACL) *stratav1.Acl {
	return &stratav1.Acl{Principal: a.Principal, ResourceType: a.ResourceType, ResourceName: a.Name, Operation: a.Operation}
}

// ACLs changes and lists the grants in etcd for the front ends (gRPC's
// ACL calls; Kafka's CreateAcls, DescribeAcls and DeleteAcls). After a
// change it refreshes this proxy's Guard, so that the change applies here
// at once; the other proxies see it through their watch. The callers
// authorize first (admin on the cluster).
type ACLs struct {
	meta     *meta.Store
	guard    *auth.Guard
	log      *slog.Logger
	enforced bool
}

// Enforced reports whether this proxy enforces ACLs; grants are stored
// either way but have no effect where they are off.
func (a *ACLs) Enforced() bool { return a.enforced }

// Add stores a grant (validated; adding one that exists is no error).
func (a *ACLs) Add(ctx context.Context, acl meta.ACL) error {
	if err := acl.Validate(); err != nil {
		return apierr.Errorf(apierr.ErrInvalidRequest, "%v", err)
	}
	if err := a.meta.AddACL(ctx, acl); err != nil {
		return apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	a.log.Info("acl added", "acl", acl.String(), "by", principalName(ctx))
	a.refresh(ctx)
	return nil
}

// Remove deletes a grant and reports whether it existed.
func (a *ACLs) Remove(ctx context.Context, acl meta.ACL) (bool, error) {
	if err := acl.Validate(); err != nil {
		return false, apierr.Errorf(apierr.ErrInvalidRequest, "%v", err)
	}
	removed, err := a.meta.RemoveACL(ctx, acl)
	if err != nil {
		return false, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	a.log.Info("acl removed", "acl", acl.String(), "existed", removed, "by", principalName(ctx))
	a.refresh(ctx)
	return removed, nil
}

// List returns every grant, sorted.
func (a *ACLs) List(ctx context.Context) ([]meta.ACL, error) {
	list, _, err := a.meta.ACLs(ctx)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	return list, nil
}

func (a *ACLs) refresh(ctx context.Context) {
	if err := a.guard.RefreshACLs(ctx); err != nil {
		a.log.Warn("refreshing acls after a change failed", "err", err)
	}
}

// The gRPC ACL calls; the Guard's interceptor requires admin on the
// cluster for them.

func (v *service) AddAcl(ctx context.Context, req *stratav1.AddAclRequest) (*stratav1.AddAclResponse, error) {
	a, err := aclFromProto(req.GetAcl())
	if err != nil {
		return nil, err
	}
	if err := v.s.acls.Add(ctx, a); err != nil {
		return nil, err
	}
	return &stratav1.AddAclResponse{AclsEnforced: v.s.acls.Enforced()}, nil
}

func (v *service) RemoveAcl(ctx context.Context, req *stratav1.RemoveAclRequest) (*stratav1.RemoveAclResponse, error) {
	a, err := aclFromProto(req.GetAcl())
	if err != nil {
		return nil, err
	}
	removed, err := v.s.acls.Remove(ctx, a)
	if err != nil {
		return nil, err
	}
	return &stratav1.RemoveAclResponse{Removed: removed}, nil
}

func (v *service) ListAcls(ctx context.Context, req *stratav1.ListAclsRequest) (*stratav1.ListAclsResponse, error) {
	list, err := v.s.acls.List(ctx)
	if err != nil {
		return nil, err
	}
	resp := &stratav1.ListAclsResponse{}
	for _, a := range list {
		if req.GetPrincipal() == "" || a.Principal == req.GetPrincipal() {
			resp.Acls = append(resp.Acls, aclToProto(a))
		}
	}
	return resp, nil
}

func principalName(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Name
	}
	return auth.Anonymous
}
