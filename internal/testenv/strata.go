package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-mq/strata/pkg/rpc"
)

// GRPCServing returns a readiness check that passes once the gRPC server at
// addr reports SERVING on the standard health service — Strata's servers
// do so only after they finished starting.
func GRPCServing(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		conn, err := rpc.Dial(addr)
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

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds Strata's commands (coordinator, broker, proxy, strata)
// once per test process and returns the directory that holds them: inside
// the directory Main removes at exit (the system's temporary directory
// without Main), so that test runs do not leave ~180 MB behind each.
func Binaries() (string, error) {
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp(sharedDir, "strata-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator),
			"./cmd/coordinator", "./cmd/broker", "./cmd/proxy", "./cmd/strata")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("testenv: go build: %w\n%s", err, out)
		}
	})
	return buildDir, buildErr
}
