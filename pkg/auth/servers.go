package auth

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Strata's servers prove what they are with a URI in their certificate's
// subject alternative names: spiffe://<trust domain>/<role>. Brokers and
// coordinators serve only callers whose verified certificate names a role
// their methods allow (ServerGuard), so a client certificate of the same
// CA, which names no role, reaches the proxy and nothing behind it.

// Server roles, the last path element of a server identity URI.
const (
	RoleProxy       = "proxy"
	RoleBroker      = "broker"
	RoleCoordinator = "coordinator"
)

// Roles lists every server role.
var Roles = []string{RoleProxy, RoleBroker, RoleCoordinator}

// DefaultTrustDomain is the trust domain of server identities when none
// is configured. Clusters that share a CA give each cluster its own
// domain, so that one cluster's servers are strangers to another's.
const DefaultTrustDomain = "strata"

// ServerIdentity returns the identity URI of role in trust domain
// ("spiffe://strata/broker"), what a server certificate of that role
// carries as a URI subject alternative name.
func ServerIdentity(domain, role string) string {
	return (&url.URL{Scheme: "spiffe", Host: domain, Path: "/" + role}).String()
}

// ValidTrustDomain reports whether domain can be the host of an identity
// URI: a non-empty DNS-like name of lower-case letters, digits, dots,
// dashes and underscores (the SPIFFE trust-domain alphabet).
func ValidTrustDomain(domain string) bool {
	if domain == "" {
		return false
	}
	for _, r := range domain {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ServerRoles returns the server roles that the verified certificate of
// a TLS connection names in domain; none for a certificate without such
// URIs, an unverified one, or plaintext.
func ServerRoles(st *tls.ConnectionState, domain string) []string {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	var roles []string
	for _, u := range st.VerifiedChains[0][0].URIs {
		role, _ := strings.CutPrefix(u.Path, "/")
		if u.Scheme == "spiffe" && u.Host == domain && strings.HasPrefix(u.Path, "/") && slices.Contains(Roles, role) {
			roles = append(roles, role)
		}
	}
	return roles
}

// Metadata keys of a forwarded principal: a proxy calling a coordinator
// on behalf of a client names the client's principal with them.
const (
	mdPrincipal       = "strata-forwarded-principal"
	mdPrincipalMethod = "strata-forwarded-principal-method"
)

// MethodForwarded marks a principal that a server named for its caller
// (the client's own method is in the metadata, not re-checked).
const MethodForwarded = "forwarded"

// ForwardPrincipal returns a client interceptor that copies the principal
// in the call's context (FromContext) into the outgoing metadata, so the
// server called learns on whose behalf the call is made. Only servers
// trust it, and only from callers with a server identity (ServerGuard).
func ForwardPrincipal() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if p, ok := FromContext(ctx); ok && p.Name != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, mdPrincipal, p.Name, mdPrincipalMethod, p.Method)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// forwarded returns the principal a trusted caller forwarded, if any.
func forwarded(ctx context.Context) (Principal, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return Principal{}, false
	}
	names := md.Get(mdPrincipal)
	if len(names) != 1 || names[0] == "" {
		return Principal{}, false
	}
	p := Principal{Name: names[0], Method: MethodForwarded}
	if m := md.Get(mdPrincipalMethod); len(m) == 1 && m[0] != "" {
		p.Method = MethodForwarded + ":" + m[0]
	}
	return p, true
}

// openServices are the gRPC services a ServerGuard serves to anyone:
// health checking, which load balancers and kubelet probes call without
// a certificate.
var openServices = []string{"/grpc.health.v1.Health/"}

// BrokerCallers says which servers call a broker: proxies route
// produces to it, the coordinator asks it to release partitions.
var BrokerCallers = map[string][]string{
	"/strata.v1.Broker/Produce":           {RoleProxy},
	"/strata.v1.Broker/ProduceStream":     {RoleProxy},
	"/strata.v1.Broker/ReleasePartitions": {RoleCoordinator},
}

// CoordinatorCallers says which servers call a coordinator: proxies
// forward every admin and group call to it. Brokers and other
// coordinators never call it (they meet in etcd).
var CoordinatorCallers = map[string][]string{
	"/strata.v1.Coordinator/": {RoleProxy},
}

// ServerGuardConfig configures a ServerGuard.
type ServerGuardConfig struct {
	// TLS is the guarded listener's TLS; its TrustDomain is the domain of
	// the identities accepted (default DefaultTrustDomain). Nil: the
	// listener is plaintext, callers cannot be told apart, and the guard
	// trusts the network (every caller counts as a server; NetworkPolicies
	// keep clients out) and only refuses bearer tokens, which no server
	// sends.
	TLS *rpc.TLS
	// Callers maps a full method name ("/strata.v1.Broker/Produce") or a
	// service prefix ("/strata.v1.Coordinator/") to the roles that may
	// call it; the longest match wins. Methods it does not name are open
	// to every server role, and never to clients.
	Callers map[string][]string
	// Logger receives refusals. Default slog.Default().
	Logger *slog.Logger
}

// ServerGuard guards a listener that only Strata's servers may call (a
// broker's or a coordinator's): it refuses callers without a server
// identity its method allows, refuses bearer tokens (those are for
// proxies), and puts a principal forwarded by an accepted caller into
// the context (FromContext).
type ServerGuard struct {
	cfg    ServerGuardConfig
	tls    bool
	domain string
	log    *slog.Logger
}

// NewServerGuard returns a ServerGuard.
func NewServerGuard(cfg ServerGuardConfig) (*ServerGuard, error) {
	domain := DefaultTrustDomain
	if cfg.TLS != nil && cfg.TLS.Config().TrustDomain != "" {
		domain = cfg.TLS.Config().TrustDomain
	}
	if !ValidTrustDomain(domain) {
		return nil, fmt.Errorf("auth: trust domain %q: want lower-case letters, digits, '.', '-' or '_'", domain)
	}
	for m, roles := range cfg.Callers {
		for _, r := range roles {
			if !slices.Contains(Roles, r) {
				return nil, fmt.Errorf("auth: callers of %s: unknown role %q", m, r)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &ServerGuard{cfg: cfg, tls: cfg.TLS != nil, domain: domain, log: cfg.Logger.With("component", "auth")}, nil
}

// check admits or refuses one call of method and returns the context
// the handler runs with.
func (g *ServerGuard) check(ctx context.Context, method string) (context.Context, error) {
	for _, s := range openServices {
		if strings.HasPrefix(method, s) {
			return ctx, nil
		}
	}
	creds := GRPCCredentials(ctx)
	if creds.Token != "" {
		g.log.Warn("call with a bearer token refused at a server-only port", "method", method)
		return nil, apierr.Errorf(apierr.ErrUnauthenticated, "%s serves only Strata's servers, which send no bearer token; clients connect to a proxy", method)
	}
	if g.tls {
		roles := ServerRoles(creds.TLS, g.domain)
		if len(roles) == 0 {
			name := certName(creds.TLS)
			if name == "" {
				return nil, apierr.Errorf(apierr.ErrUnauthenticated, "%s serves only Strata's servers: no verified client certificate", method)
			}
			g.log.Warn("client certificate refused at a server-only port", "method", method, "subject", name)
			return nil, apierr.Errorf(apierr.ErrPermissionDenied, "certificate %q is not a Strata server's (no %s identity); %s serves only Strata's servers, clients connect to a proxy",
				name, "spiffe://"+g.domain+"/<role>", method)
		}
		if want := g.callers(method); want != nil && !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(want, r) }) {
			g.log.Warn("server role refused", "method", method, "roles", roles, "allowed", want)
			return nil, apierr.Errorf(apierr.ErrPermissionDenied, "server role %s may not call %s (allowed: %s)", strings.Join(roles, ","), method, strings.Join(want, ","))
		}
	}
	if p, ok := forwarded(ctx); ok {
		ctx = NewContext(ctx, p)
	}
	return ctx, nil
}

// callers returns the roles allowed to call method, nil for every role.
func (g *ServerGuard) callers(method string) []string {
	best, roles := -1, []string(nil)
	for m, r := range g.cfg.Callers {
		if (m == method || strings.HasSuffix(m, "/") && strings.HasPrefix(method, m)) && len(m) > best {
			best, roles = len(m), r
		}
	}
	return roles
}

// ServerOptions install the guard on a server (rpc.NewServer).
func (g *ServerGuard) ServerOptions() []rpc.ServerOption {
	return []rpc.ServerOption{rpc.WithUnaryInterceptors(g.UnaryInterceptor()), rpc.WithStreamInterceptors(g.StreamInterceptor())}
}

// UnaryInterceptor guards unary calls.
func (g *ServerGuard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.check(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor guards streaming calls (reflection, health watches).
func (g *ServerGuard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if _, err := g.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// ServerIdentities returns the identity URIs of roles in domain, for
// issuing a certificate that serves several roles (`strata dev`'s one
// process plays all three).
func ServerIdentities(domain string, roles ...string) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = ServerIdentity(domain, r)
	}
	return out
}
