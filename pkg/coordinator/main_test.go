package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// etcd is one real etcd server shared by the package's tests; each test
// works under a prefix of its own.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// newStore returns a Store on endpoints under prefix.
func newStore(t testing.TB, endpoints []string, prefix string) *meta.Store {
	return testenv.NewMeta(t, endpoints, func(c *meta.Config) { c.Prefix = prefix })
}

func testCtx(t testing.TB) context.Context { return testenv.Context(t) }

// startCoordinator starts a coordinator on store with test-friendly timings
// and waits until it is ready.
func startCoordinator(t testing.TB, store *meta.Store, id string, mutate ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		ID:                id,
		ListenAddr:        "127.0.0.1:0",
		SessionTTL:        2 * time.Second,
		PlacementInterval: time.Second,
		Meta:              store,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range mutate {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	select {
	case <-s.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("coordinator %s not ready", id)
	}
	return s
}

// client returns a Coordinator gRPC client of s.
func client(t testing.TB, s *Server) stratav1.CoordinatorClient {
	t.Helper()
	conn, err := rpc.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return stratav1.NewCoordinatorClient(conn)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, 30*time.Second, cond)
}

// startView returns a started, ready view of store for the test to watch.
func startView(t testing.TB, store *meta.Store) *meta.View {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v := meta.NewView(store)
	v.Start(ctx)
	select {
	case <-v.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("view not ready")
	}
	return v
}

// waitView waits until cond holds on v, re-checking on every change.
func waitView(t testing.TB, v *meta.View, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		ch := v.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// wantAPIErr checks that a gRPC call failed with the given apierr sentinel.
func wantAPIErr(t testing.TB, err, want error) {
	t.Helper()
	err = apierr.FromStatus(err)
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
