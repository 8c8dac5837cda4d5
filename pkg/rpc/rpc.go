// Package rpc sets up every gRPC listener, server and client connection of
// Strata's processes in one place: message limits, keepalives, health
// checking, reflection, error translation (pkg/apierr) and panic recovery.
// Transport security will be added here, once, for all of them.
package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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

// NewServer returns a gRPC server whose handlers' errors are translated
// with apierr.Status and whose panics become Internal errors instead of
// crashing the process.
func NewServer(log *slog.Logger) *Server {
	s := grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.ChainUnaryInterceptor(unaryInterceptor(log)),
	)
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}
}

// SetServing marks the server (all services) as serving or not.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
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

// Dial returns a client connection to addr. The connection is lazy: it
// connects on first use and reconnects by itself.
func Dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	)
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
