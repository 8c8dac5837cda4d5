// Package rpc sets up every gRPC listener, server and client connection of
// Strata's processes in one place: message limits, keepalives, health
// checking, reflection, error translation (pkg/apierr) and panic recovery.
// Transport security (TLS, mutual TLS, certificate reload; tls.go), the
// connection limits of a listener (connlimit.go) and the message codec and
// buffer pool (codec.go) are set up here too, and so is the serving side
// of Broker.ProduceStream, which carries many produces over one stream
// (producestream.go).
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/strata-mq/strata/pkg/apierr"
)

// MaxMessageBytes bounds one gRPC message in either direction. Produce and
// fetch sizes are limited further by each server's configuration.
const MaxMessageBytes = 64 << 20

// MaxProduceParts bounds the parts of one ProduceMany call, so that one
// call cannot start an unbounded number of produces at once. A producer
// writing to more partitions sends several calls.
const MaxProduceParts = 1000

// CheckParts refuses a ProduceMany call of n parts when n is 0 or more
// than MaxProduceParts.
func CheckParts(n int) error {
	if n == 0 || n > MaxProduceParts {
		return apierr.Errorf(apierr.ErrInvalidRequest, "a ProduceMany call carries %d parts; it needs 1 to %d", n, MaxProduceParts)
	}
	return nil
}

// Listen opens a TCP listener on addr ("host:port"; port 0 picks one).
func Listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: listen on %s: %w", addr, err)
	}
	return l, nil
}

// Server is a gRPC server with health checking and reflection registered.
type Server struct {
	*grpc.Server
	// Health reports serving status; a server marks itself SERVING once
	// it is ready and NOT_SERVING while it shuts down.
	Health *health.Server
}

// ServerOption adjusts NewServer.
type ServerOption func(*serverOptions)

type serverOptions struct {
	tls          *TLS
	interceptors []grpc.UnaryServerInterceptor
	streams      []grpc.StreamServerInterceptor
	maxRecv      int
	readBuf      int
}

// WithServerTLS serves TLS with t (client certificates per
// t.Config().ClientAuth). A nil t serves plaintext.
func WithServerTLS(t *TLS) ServerOption { return func(o *serverOptions) { o.tls = t } }

// WithUnaryInterceptors appends interceptors to the chain. They run inside
// the error-translation and panic-recovery interceptor, so they return
// apierr sentinels like handlers do.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) ServerOption {
	return func(o *serverOptions) { o.interceptors = append(o.interceptors, i...) }
}

// WithStreamInterceptors appends stream interceptors (they see health
// watches and reflection, the streaming services every server has). Their
// errors are translated with apierr.Status like the unary ones'.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) ServerOption {
	return func(o *serverOptions) { o.streams = append(o.streams, i...) }
}

// WithMaxRequestBytes bounds a received message below MaxMessageBytes;
// larger requests fail with ResourceExhausted before a handler sees them.
// 0 keeps MaxMessageBytes.
func WithMaxRequestBytes(n int) ServerOption {
	return func(o *serverOptions) {
		if n > 0 && n < MaxMessageBytes {
			o.maxRecv = n
		}
	}
}

// WithReadBufferBytes reads each connection through a buffer of n bytes
// instead of gRPC's 32 KiB. A server whose callers are a few of Strata's
// own processes sending large messages (a broker, fed by proxies) takes
// BulkBufferBytes: one read system call per 256 KiB of a produce instead
// of eight (docs/benchmarks.md, "CPU per GB produced"). A server that
// clients connect to keeps the default, since the buffer exists per
// connection.
func WithReadBufferBytes(n int) ServerOption { return func(o *serverOptions) { o.readBuf = n } }

// BulkBufferBytes is the size of the write buffer of every connection
// (gRPC shares write buffers: one is taken from a pool for each write and
// given back, so an idle connection holds none) and of the read buffer of
// servers that ask for it with WithReadBufferBytes. gRPC's 32 KiB cost a system call per
// 32 KiB of every produce, fetch and forwarded message.
const BulkBufferBytes = 256 << 10

// streamWorkers is how many long-lived goroutines a server keeps for
// running handlers; calls beyond them (handlers mostly wait on I/O: a
// produce on its flush, a fetch on its long-poll) get a goroutine of their
// own, as without workers. A fresh goroutine per call grows its stack
// (copies it) several times while it decodes the request and calls the
// next server, on the path of every call; a worker's stack stays grown.
// Sixteen idle workers cost well under 1 MiB.
const streamWorkers = 16

// NewServer returns a gRPC server whose handlers' errors are translated
// with apierr.Status and whose panics become Internal errors instead of
// crashing the process.
func NewServer(log *slog.Logger, opts ...ServerOption) *Server {
	o := serverOptions{maxRecv: MaxMessageBytes}
	for _, f := range opts {
		f(&o)
	}
	gopts := []grpc.ServerOption{
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxRecvMsgSize(o.maxRecv),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{unaryInterceptor(log)}, o.interceptors...)...),
		grpc.ChainStreamInterceptor(append([]grpc.StreamServerInterceptor{streamInterceptor}, o.streams...)...),
	}
	gopts = append(gopts, codecServerOptions()...)
	gopts = append(gopts, grpc.WriteBufferSize(BulkBufferBytes))
	if o.readBuf > 0 {
		gopts = append(gopts, grpc.ReadBufferSize(o.readBuf))
	}
	if o.tls != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(o.tls.ServerConfig())))
	}
	s := grpc.NewServer(gopts...)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}
}

// SetServing marks the server as serving or not: the whole server ("")
// and each registered service by its full name (e.g. "strata.v1.Strata"),
// so a health check that names the service it needs gets an answer. Call
// it after registering the services.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for name := range s.Server.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
}

// StopWithin stops the server gracefully (no new calls; those in progress
// finish), but for at most d: then it closes every connection, ending the
// calls and streams still running. It reports whether it had to. A
// server that a peer keeps a stream open to (a proxy's ProduceStream to a
// broker) would otherwise wait for that peer to close it, forever if the
// peer is frozen.
func (s *Server) StopWithin(d time.Duration) (forced bool) {
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stopped:
		return false
	case <-t.C:
		s.Stop()
		<-stopped
		return true
	}
}

func unaryInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
			}
		}()
		resp, err = handler(ctx, req)
		return resp, apierr.Status(err)
	}
}

// streamInterceptor translates the errors of streaming calls like
// unaryInterceptor does for unary ones.
func streamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return apierr.Status(handler(srv, ss))
}

// ReconnectMaxDelay caps the wait between a connection's attempts to
// reach its server again (Dial's connections, and the servers' etcd
// clients through ReconnectParams). gRPC's default grows to 2 minutes:
// after a peer was away for 15 s, the next attempt could come 10 s after
// it was back, and the caller sat that time out — a lease or session
// lost, a partition waiting. One attempt a second to a peer that is away
// costs nothing.
const ReconnectMaxDelay = time.Second

// reconnectBaseDelay is the wait before the first attempt to reconnect.
const reconnectBaseDelay = 100 * time.Millisecond

// minConnectTimeout bounds one connection attempt (TCP and TLS
// handshakes): gRPC's own default, so that a slow but reachable server is
// not given up on while the reconnect backoff stays short. ConnectParams
// without it cut an attempt off at the backoff delay (100 ms at first):
// on a loaded machine handshakes failed and were retried.
const minConnectTimeout = 20 * time.Second

// ReconnectParams retries a lost connection from base apart, growing 1.6×
// (±20 % jitter) up to maxDelay; each attempt gets minConnectTimeout.
func ReconnectParams(base, maxDelay time.Duration) grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: base, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxDelay},
		MinConnectTimeout: minConnectTimeout,
	}
}

// DefaultReconnectParams are Dial's: from 100 ms up to ReconnectMaxDelay.
func DefaultReconnectParams() grpc.ConnectParams {
	return ReconnectParams(reconnectBaseDelay, ReconnectMaxDelay)
}

// DialOption adjusts Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	tls          *TLS
	token        string
	interceptors []grpc.UnaryClientInterceptor
	extra        []grpc.DialOption
}

// WithTLS dials with TLS: the server is verified against t's CA bundle and
// t's certificate, if any, is presented as the client certificate (mutual
// TLS). A nil t dials plaintext.
func WithTLS(t *TLS) DialOption { return func(o *dialOptions) { o.tls = t } }

// WithBearerToken sends token as "authorization: Bearer <token>" with every
// call. Over TLS the token never travels in the clear; over plaintext it
// is sent anyway (development clusters only).
func WithBearerToken(token string) DialOption { return func(o *dialOptions) { o.token = token } }

// WithUnaryClientInterceptors adds interceptors to every unary call of the
// connection (a proxy forwards its client's principal with one).
func WithUnaryClientInterceptors(i ...grpc.UnaryClientInterceptor) DialOption {
	return func(o *dialOptions) { o.interceptors = append(o.interceptors, i...) }
}

// WithGRPCOptions appends gRPC dial options of the caller's own, such as
// a resolver, a load-balancing policy or a reconnect backoff other than
// Dial's (the SDK sets these for its proxy connections).
func WithGRPCOptions(opts ...grpc.DialOption) DialOption {
	return func(o *dialOptions) { o.extra = append(o.extra, opts...) }
}

// Dial returns a client connection to addr. The connection is lazy: it
// connects on first use and reconnects by itself, at most
// ReconnectMaxDelay apart.
func Dial(addr string, opts ...DialOption) (*grpc.ClientConn, error) {
	var o dialOptions
	for _, f := range opts {
		f(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls.ClientConfig())
	}
	gopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(DefaultReconnectParams()),
	}
	gopts = append(gopts, codecDialOptions()...)
	gopts = append(gopts, grpc.WithWriteBufferSize(BulkBufferBytes))
	if o.token != "" {
		gopts = append(gopts, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: o.tls != nil}))
	}
	if len(o.interceptors) > 0 {
		gopts = append(gopts, grpc.WithChainUnaryInterceptor(o.interceptors...))
	}
	gopts = append(gopts, o.extra...)
	conn, err := grpc.NewClient(addr, gopts...)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	return conn, nil
}

// MetricsServer serves Prometheus metrics at /metrics and a liveness probe
// at /healthz on its own listener.
func MetricsServer(reg *prometheus.Registry) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

// StopMetricsServer shuts srv down, letting the scrapes in progress finish
// for at most d, then closes what is left: a server stops within 2 s of
// SIGTERM whatever its scrapers do.
func StopMetricsServer(srv *http.Server, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// AdvertiseAddr turns a listen address into one other hosts can dial: an
// unspecified host (0.0.0.0, ::) becomes this machine's hostname. Other
// addresses are returned as they are.
func AdvertiseAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}

// Refused reports whether a TCP dial to addr is refused within timeout:
// nothing listens there, so a server registered at addr is gone. Anything
// else — a connection, a timeout (a frozen process still has the kernel
// accept for it; a lost network answers nothing) — proves nothing.
func Refused(ctx context.Context, addr string, timeout time.Duration) bool {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
