package proxy

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// FrontEnd is another protocol served beside gRPC on the same core, such
// as the Kafka wire protocol (pkg/kafka). The Server starts it in Start,
// after its gRPC listener, and closes it in Close, after long-polls and
// retries were told to end, so both protocols stop together.
type FrontEnd interface {
	// Start opens the front end's listener and serves in the background.
	Start() error
	// Close stops serving: it closes the listener, lets requests in
	// flight finish within the front end's own bound, and returns once
	// every goroutine of the front end has ended.
	Close() error
}

// NewFrontEnd builds a front end on a server's core; Config.FrontEnds
// holds them.
type NewFrontEnd func(core Core) (FrontEnd, error)

// Core is what a front end shares with the gRPC service: the same routing,
// fetch path, coordinator forwarding, authentication, ACLs, quotas and
// limits. A front end is an adapter over it, never a second proxy.
type Core struct {
	Router  *Router
	Fetcher *Fetcher
	Admin   *Admin
	Guard   *auth.Guard
	// ACLs changes and lists the grants the Guard enforces.
	ACLs *ACLs
	// View is the proxy's watched copy of topics, partitions and brokers.
	View *meta.View
	// Meta is the metadata store (cluster prefix, leader lookups).
	Meta *meta.Store
	// TLS secures the public listeners; nil for plaintext.
	TLS *rpc.TLS
	// Limits are the proxy's hostile-input limits, defaults applied.
	Limits Limits
	// MaxFetchWait caps a fetch's long-poll wait, as for gRPC fetches.
	MaxFetchWait time.Duration
	// Logger and Registry are the proxy's.
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Done is closed when the proxy starts shutting down.
	Done <-chan struct{}
	// ShutdownTimeout bounds the graceful part of closing.
	ShutdownTimeout time.Duration

	s *Server
}

// CheckLimits applies the proxy's Limits to a request in its gRPC form
// (for example a *stratav1.ProduceRequest), exactly as the gRPC service's
// interceptor does, so a request is refused alike on every protocol.
func (c Core) CheckLimits(req any) error { return c.s.limits.check(req) }

// WaitReady blocks until the proxy's metadata view is loaded, so that no
// request is answered from an empty view.
func (c Core) WaitReady(ctx context.Context) error { return c.s.waitReady(ctx) }

// core returns the Core of s.
func (s *Server) core() Core {
	return Core{
		Router: s.router, Fetcher: s.fetcher, Admin: s.admin, Guard: s.guard, ACLs: s.acls,
		View: s.view, Meta: s.cfg.Meta, TLS: s.cfg.TLS, Limits: s.cfg.Limits, MaxFetchWait: s.cfg.MaxFetchWait,
		Logger: s.cfg.Logger, Registry: s.reg, Done: s.closing, ShutdownTimeout: s.cfg.ShutdownTimeout,
		s: s,
	}
}
