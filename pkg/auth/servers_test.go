package auth_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/rpc"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// broker is a Broker service that records the principal each call ran as.
type broker struct {
	stratav1.UnimplementedBrokerServer
	mu  sync.Mutex // guards got
	got []string
}

func (b *broker) Produce(ctx context.Context, _ *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, auth.NameOf(ctx))
	return &stratav1.ProduceResponse{}, nil
}

func (b *broker) ReleasePartitions(context.Context, *stratav1.ReleasePartitionsRequest) (*stratav1.ReleasePartitionsResponse, error) {
	return &stratav1.ReleasePartitionsResponse{}, nil
}

// serveBroker serves b behind a ServerGuard with BrokerCallers on tl
// (nil: plaintext) and returns its address.
func serveBroker(t *testing.T, tl *rpc.TLS, b *broker) string {
	t.Helper()
	g, err := auth.NewServerGuard(auth.ServerGuardConfig{TLS: tl, Callers: auth.BrokerCallers, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(quiet(), append(g.ServerOptions(), rpc.WithServerTLS(tl))...)
	stratav1.RegisterBrokerServer(srv, b)
	srv.SetServing(true)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return l.Addr().String()
}

// identities issues the certificates of the test: servers of each role,
// a client of the same CA, a server of another trust domain.
func identities(t *testing.T) map[string]*rpc.TLS {
	t.Helper()
	ca, err := tlsgen.NewCA("cluster-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	specs := map[string]tlsgen.Spec{
		"broker":      {CN: "b", URIs: []string{auth.ServerIdentity("strata", auth.RoleBroker)}, Server: true, Client: true},
		"proxy":       {CN: "p", URIs: []string{auth.ServerIdentity("strata", auth.RoleProxy)}, Server: true, Client: true},
		"coordinator": {CN: "c", URIs: []string{auth.ServerIdentity("strata", auth.RoleCoordinator)}, Server: true, Client: true},
		"client":      {CN: "mallory", Client: true},
		"foreign":     {CN: "f", URIs: []string{auth.ServerIdentity("other", auth.RoleProxy)}, Server: true, Client: true},
		// A URI that looks like an identity but is not one.
		"lookalike": {CN: "l", URIs: []string{"spiffe://strata/proxy/x", "https://strata/proxy"}, Client: true},
	}
	out := map[string]*rpc.TLS{}
	for name, s := range specs {
		f, err := ca.WriteSpec(dir, name, s)
		if err != nil {
			t.Fatal(err)
		}
		auth := rpc.ClientAuthRequire
		if name == "broker" {
			auth = rpc.ClientAuthRequest // lets health checks in without a certificate
		}
		tl, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientAuth: auth, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		out[name] = tl
		if name == "broker" {
			if out["trust"], err = rpc.LoadTLS(rpc.TLSConfig{CAFile: f.CA, Logger: quiet()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestServerGuardRefusesClients: a broker behind the guard serves Produce
// to proxies and ReleasePartitions to coordinators; a client certificate
// of the same CA, a server of another trust domain, a look-alike URI and
// a bearer token get nothing but health checks, each with the status
// that says why.
func TestServerGuardRefusesClients(t *testing.T) {
	ids := identities(t)
	b := &broker{}
	addr := serveBroker(t, ids["broker"], b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(opts ...rpc.DialOption) *grpc.ClientConn {
		conn, err := rpc.Dial(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	as := func(id string) *grpc.ClientConn { return dial(rpc.WithTLS(ids[id])) }
	produce := func(c *grpc.ClientConn) error {
		_, err := stratav1.NewBrokerClient(c).Produce(ctx, &stratav1.ProduceRequest{Topic: "t"})
		return err
	}
	release := func(c *grpc.ClientConn) error {
		_, err := stratav1.NewBrokerClient(c).ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{})
		return err
	}
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code // codes.OK: served
		msg  string
	}{
		{"proxy produces", func() error { return produce(as("proxy")) }, codes.OK, ""},
		{"coordinator releases", func() error { return release(as("coordinator")) }, codes.OK, ""},
		{"coordinator produces", func() error { return produce(as("coordinator")) }, codes.PermissionDenied, "server role coordinator may not call /strata.v1.Broker/Produce"},
		{"proxy releases", func() error { return release(as("proxy")) }, codes.PermissionDenied, "may not call /strata.v1.Broker/ReleasePartitions"},
		{"client produces", func() error { return produce(as("client")) }, codes.PermissionDenied, `certificate "mallory" is not a Strata server's`},
		{"client releases", func() error { return release(as("client")) }, codes.PermissionDenied, `certificate "mallory" is not a Strata server's`},
		{"other trust domain", func() error { return produce(as("foreign")) }, codes.PermissionDenied, "is not a Strata server's"},
		{"look-alike uri", func() error { return produce(as("lookalike")) }, codes.PermissionDenied, "is not a Strata server's"},
		{"no certificate", func() error { return produce(as("trust")) }, codes.Unauthenticated, "no verified client certificate"},
		{"token with a server certificate", func() error {
			return produce(dial(rpc.WithTLS(ids["proxy"]), rpc.WithBearerToken("stk_x")))
		}, codes.Unauthenticated, "send no bearer token"},
		{"token without certificate", func() error {
			return produce(dial(rpc.WithTLS(ids["trust"]), rpc.WithBearerToken("stk_x")))
		}, codes.Unauthenticated, "send no bearer token"},
		{"health without certificate", func() error {
			_, err := healthpb.NewHealthClient(as("trust")).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}, codes.OK, ""},
		{"reflection by a client", func() error {
			s, err := reflectionpb.NewServerReflectionClient(as("client")).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			_ = s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = s.Recv()
			return err
		}, codes.PermissionDenied, "is not a Strata server's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("status %s %q, want %s with %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
		})
	}
	if len(b.got) != 1 {
		t.Fatalf("Produce ran %d times, want once (the proxy's)", len(b.got))
	}
}

// TestForwardedPrincipal: a proxy's principal forwarded with
// ForwardPrincipal reaches the handler; a client cannot forward one
// (refused), and over plaintext the network is trusted but tokens are
// still refused.
func TestForwardedPrincipal(t *testing.T) {
	ids := identities(t)
	for _, tc := range []struct {
		name string
		tl   *rpc.TLS
		dial []rpc.DialOption
	}{
		{"tls", ids["broker"], []rpc.DialOption{rpc.WithTLS(ids["proxy"])}},
		{"plaintext", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &broker{}
			addr := serveBroker(t, tc.tl, b)
			conn, err := rpc.Dial(addr, append(tc.dial, rpc.WithUnaryClientInterceptors(auth.ForwardPrincipal()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			bc := stratav1.NewBrokerClient(conn)
			if _, err := bc.Produce(auth.NewContext(ctx, auth.Principal{Name: "alice", Method: auth.MethodCert}), &stratav1.ProduceRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := bc.Produce(ctx, &stratav1.ProduceRequest{}); err != nil {
				t.Fatal(err)
			}
			if strings.Join(b.got, ",") != "alice,-" {
				t.Fatalf("handler saw %v, want [alice -]", b.got)
			}
			tok, err := rpc.Dial(addr, append(tc.dial, rpc.WithBearerToken("stk_x"))...)
			if err != nil {
				t.Fatal(err)
			}
			defer tok.Close()
			_, err = stratav1.NewBrokerClient(tok).Produce(ctx, &stratav1.ProduceRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("token at a server-only port: %v, want Unauthenticated", err)
			}
		})
	}
}

func TestServerGuardConfig(t *testing.T) {
	if _, err := auth.NewServerGuard(auth.ServerGuardConfig{Callers: map[string][]string{"/x/": {"admin"}}}); err == nil || !strings.Contains(err.Error(), `unknown role "admin"`) {
		t.Fatalf("unknown role: %v", err)
	}
	if got := auth.ServerIdentity("strata", auth.RoleBroker); got != "spiffe://strata/broker" {
		t.Fatalf("ServerIdentity = %q", got)
	}
	for d, ok := range map[string]bool{"strata": true, "prod.example_1-a": true, "": false, "Strata": false, "a/b": false} {
		if auth.ValidTrustDomain(d) != ok {
			t.Errorf("ValidTrustDomain(%q) = %v", d, !ok)
		}
	}
}

// TestAuthenticateRawTLS: a front end other than gRPC (the Kafka
// listener) serves TLS with rpc.TLS.ListenerConfig and authenticates the
// connection's verified client certificate through the same Guard.
func TestAuthenticateRawTLS(t *testing.T) {
	ids := identities(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", ids["broker"].ListenerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g, err := auth.New(auth.Config{ClientCerts: true})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err.Error()
			return
		}
		st := tc.ConnectionState()
		p, err := g.Authenticate(auth.Credentials{TLS: &st})
		if err != nil {
			got <- err.Error()
			return
		}
		got <- p.Name
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", l.Addr().String(), ids["client"].ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if name := <-got; name != "mallory" {
		t.Fatalf("principal %q, want mallory", name)
	}
}
