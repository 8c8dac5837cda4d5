package rpc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
)

// broker answers Produce by partition: 1 is not owned, 2 panics.
type broker struct {
	stratav1.UnimplementedBrokerServer
}

func (broker) Produce(_ context.Context, r *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	switch r.Partition {
	case 1:
		return nil, apierr.Errorf(apierr.ErrNotOwner, "partition %d", r.Partition)
	case 2:
		panic("handler bug")
	}
	return &stratav1.ProduceResponse{BaseOffset: 7}, nil
}

func TestServer(t *testing.T) {
	l, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	stratav1.RegisterBrokerServer(srv, broker{})
	go srv.Serve(l)
	defer srv.Stop()

	conn, err := rpc.Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hc := healthpb.NewHealthClient(conn)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before ready = %v, %v; want NOT_SERVING", r, err)
	}
	srv.SetServing(true)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health when ready = %v, %v; want SERVING", r, err)
	}

	bc := stratav1.NewBrokerClient(conn)
	if r, err := bc.Produce(ctx, &stratav1.ProduceRequest{}); err != nil || r.BaseOffset != 7 {
		t.Fatalf("Produce = %v, %v", r, err)
	}
	_, err = bc.Produce(ctx, &stratav1.ProduceRequest{Partition: 1})
	if got := apierr.FromStatus(err); !errors.Is(got, apierr.ErrNotOwner) || !apierr.Retriable(got) {
		t.Fatalf("not-owner error arrived as %v", got)
	}
	_, err = bc.Produce(ctx, &stratav1.ProduceRequest{Partition: 2})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panic arrived as %v, want Internal", err)
	}
	// The server survived the panic.
	if _, err := bc.Produce(ctx, &stratav1.ProduceRequest{}); err != nil {
		t.Fatalf("server broken after a panic: %v", err)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct{ in, want string }{
		{"127.0.0.1:7071", "127.0.0.1:7071"},
		{"[::1]:7071", "[::1]:7071"},
		{"0.0.0.0:7071", net.JoinHostPort(host, "7071")},
		{"[::]:7071", net.JoinHostPort(host, "7071")},
		{"broker-0.brokers:7071", "broker-0.brokers:7071"},
	}
	for _, tt := range tests {
		if got := rpc.AdvertiseAddr(tt.in); got != tt.want {
			t.Errorf("rpc.AdvertiseAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
