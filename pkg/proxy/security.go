package proxy

import (
	"context"
	"fmt"
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

func aclFromProto(a *stratav1.Acl) (meta.ACL, error) {
	if a == nil {
		return meta.ACL{}, apierr.Errorf(apierr.ErrInvalidRequest, "no acl")
	}
	out := meta.ACL{Principal: a.GetPrincipal(), ResourceType: a.GetResourceType(), Name: a.GetResourceName(), Operation: a.GetOperation()}
	if out.ResourceType == meta.ResourceCluster && out.Name == "" {
		out.Name = meta.ClusterResourceName
	}
	if err := out.Validate(); err != nil {
		return meta.ACL{}, apierr.Errorf(apierr.ErrInvalidRequest, "%v", err)
	}
	return out, nil
}

func aclToProto(a meta.ACL) *stratav1.Acl {
	return &stratav1.Acl{Principal: a.Principal, ResourceType: a.ResourceType, ResourceName: a.Name, Operation: a.Operation}
}

// The ACL calls are served by the proxy itself from etcd; the Guard's
// interceptor requires admin on the cluster for them.

func (v *service) AddAcl(ctx context.Context, req *stratav1.AddAclRequest) (*stratav1.AddAclResponse, error) {
	a, err := aclFromProto(req.GetAcl())
	if err != nil {
		return nil, err
	}
	if err := v.s.cfg.Meta.AddACL(ctx, a); err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	v.s.log.Info("acl added", "acl", a.String(), "by", principalName(ctx))
	if err := v.s.guard.RefreshACLs(ctx); err != nil {
		v.s.log.Warn("refreshing acls after a change failed", "err", err)
	}
	return &stratav1.AddAclResponse{AclsEnforced: v.s.cfg.Auth.ACLs}, nil
}

func (v *service) RemoveAcl(ctx context.Context, req *stratav1.RemoveAclRequest) (*stratav1.RemoveAclResponse, error) {
	a, err := aclFromProto(req.GetAcl())
	if err != nil {
		return nil, err
	}
	removed, err := v.s.cfg.Meta.RemoveACL(ctx, a)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	v.s.log.Info("acl removed", "acl", a.String(), "existed", removed, "by", principalName(ctx))
	if err := v.s.guard.RefreshACLs(ctx); err != nil {
		v.s.log.Warn("refreshing acls after a change failed", "err", err)
	}
	return &stratav1.RemoveAclResponse{Removed: removed}, nil
}

func (v *service) ListAcls(ctx context.Context, req *stratav1.ListAclsRequest) (*stratav1.ListAclsResponse, error) {
	list, _, err := v.s.cfg.Meta.ACLs(ctx)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
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
