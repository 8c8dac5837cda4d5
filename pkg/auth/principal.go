// Package auth decides who a caller is and what it may do: it
// authenticates callers (bearer tokens from a token file holding only
// hashes, verified client certificates, or anonymous access when enabled),
// authorizes operations on topics, groups and the cluster against ACLs
// stored in etcd (pkg/meta), and throttles principals over their produce
// and fetch byte quotas by delaying their responses.
//
// A Guard bundles the three. It is independent of the front end: the
// proxy's gRPC server installs Guard.UnaryInterceptor, and a Kafka
// wire-protocol front end can call Authenticate (with its own credentials),
// Authorize and Throttle directly. A ServerGuard (servers.go) keeps
// brokers and coordinators to Strata's own servers, identified by the
// role URI in their certificates. docs/security.md describes the model.
package auth

import (
	"context"
	"crypto/tls"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Anonymous is the principal of callers without credentials, when
// anonymous access is enabled (and of every caller when authentication is
// off).
const Anonymous = "ANONYMOUS"

// How a principal was authenticated.
const (
	MethodToken     = "token"
	MethodCert      = "cert"
	MethodAnonymous = "anonymous"
	// MethodSCRAM is a Kafka client's SASL/SCRAM sign-in, the token as
	// password (StartSCRAM).
	MethodSCRAM = "scram"
)

// Principal is an authenticated caller.
type Principal struct {
	// Name is what ACLs name: the token's principal, the client
	// certificate's subject common name, or Anonymous.
	Name string
	// Method is MethodToken, MethodCert, MethodSCRAM or MethodAnonymous.
	Method string
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the Guard's interceptor stored in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Credentials are what a caller presented, independent of the front end.
type Credentials struct {
	// Token is a bearer token, "" if none. A Kafka SASL/PLAIN front end
	// passes the password here.
	Token string
	// User, if set, is the name the caller claims along with Token (the
	// SASL/PLAIN user name): it must equal the token's principal.
	User string
	// TLS is the caller's connection state, nil for plaintext. Only
	// verified chains count as a client certificate.
	TLS *tls.ConnectionState
}

// GRPCCredentials extracts the bearer token ("authorization: Bearer ...")
// and the TLS state of a gRPC call.
func GRPCCredentials(ctx context.Context) Credentials {
	var c Credentials
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
				c.Token = strings.TrimSpace(tok)
				break
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			c.TLS = &info.State
		}
	}
	return c
}

// certName returns the subject common name of the verified client
// certificate, "" if there is none.
func certName(st *tls.ConnectionState) string {
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	return st.VerifiedChains[0][0].Subject.CommonName
}

// NameOf returns the name of the principal in ctx, for audit logs: the
// caller's own, or one a proxy forwarded (ServerGuard), or "-" for none.
func NameOf(ctx context.Context) string {
	if p, ok := FromContext(ctx); ok && p.Name != "" {
		return p.Name
	}
	return "-"
}
