package testenv

import (
	"context"
	"fmt"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-mq/strata/pkg/rpc"
)

// GRPCServingTLS is GRPCServing over TLS: t verifies the server (and, if
// it carries a certificate, is presented as the client certificate).
func GRPCServingTLS(addr string, t *rpc.TLS) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		conn, err := rpc.Dial(addr, rpc.WithTLS(t))
		if err != nil {
			return err
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%w: %s is %s", errNotReady, addr, resp.Status)
		}
		return nil
	}
}
