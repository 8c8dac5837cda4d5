// Package proxy is Strata's front door: the only address clients need. It
// serves the public strata.v1.Strata gRPC API by routing produce requests to
// the broker that owns each partition, serving fetches and offset lookups
// itself from object storage through a block cache, and forwarding admin
// calls to the coordinator leader.
//
// The logic lives in three front-end-independent types — Router (produce),
// Fetcher (fetch, list offsets) and Admin (coordinator forwarding) — and the
// gRPC service is a thin adapter over them. Other protocols are front ends
// over the same core (Config.FrontEnds, Core): the Kafka wire protocol in
// pkg/kafka is one. docs/proxy.md describes routing, retries, the fetch
// path and the limits.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Server is a proxy process's gRPC server and the core behind it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	view    *meta.View
	router  *Router
	fetcher *Fetcher
	admin   *Admin
	pool    *connPool
	grpc    *rpc.Server
	guard   *auth.Guard // authentication, ACLs, quotas (security.go)
	acls    *ACLs       // the grants the Guard enforces, for every front end
	limits  *limiter    // hostile-input limits (limits.go)
	fronts  []FrontEnd  // other protocols on the same core (frontend.go)

	ready   chan struct{}
	closing chan struct{} // closed when Close starts; ends long-polls and retries
	cancel  context.CancelFunc
	wg      sync.WaitGroup // background goroutines

	mu         sync.Mutex // guards lis, metricsSrv, started and closed
	lis        net.Listener
	metricsSrv *http.Server
	started    bool
	closed     bool
}

// New returns a Server; Start runs it.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	cc := cfg.Cache
	cc.Registerer = reg
	blocks, err := cache.New(cc)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "proxy"),
		reg:     reg,
		metrics: newMetrics(reg),
		view:    meta.NewView(cfg.Meta),
		pool:    newConnPool(rpc.WithTLS(cfg.TLS)),
		ready:   make(chan struct{}),
		closing: make(chan struct{}),
	}
	recent := newRecentBatches(cfg.TailBufferBytes)
	s.router = &Router{view: s.view, meta: cfg.Meta, pool: s.pool, timeout: cfg.ProduceTimeout, forward: cfg.ForwardTimeout, recent: recent, done: s.closing, log: s.log, metrics: s.metrics}
	s.fetcher = &Fetcher{
		view: s.view, meta: cfg.Meta, store: cfg.Store, cache: blocks,
		maxBytes: cfg.MaxFetchBytes, maxWait: cfg.MaxFetchWait, logStartTTL: cfg.LogStartTTL,
		tailWindow: cfg.TailWindow, done: s.closing, log: s.log, metrics: s.metrics,
		entries: newEntryCache(), objects: newOpenObjects(), logStarts: map[meta.PartitionID]cachedLogStart{},
		recent: recent,
	}
	s.fetcher.warmCtx, s.fetcher.cancelWarm = context.WithCancel(context.Background())
	s.admin = &Admin{meta: cfg.Meta, timeout: cfg.AdminTimeout, done: s.closing, log: s.log, metrics: s.metrics, fetcher: s.fetcher, dialOpts: []rpc.DialOption{rpc.WithTLS(cfg.TLS), rpc.WithUnaryClientInterceptors(auth.ForwardPrincipal())}}
	if err := s.initSecurity(); err != nil {
		return nil, err
	}
	s.grpc = rpc.NewServer(s.log, s.serverOptions()...)
	stratav1.RegisterStrataServer(s.grpc, &service{s: s})
	for _, nf := range cfg.FrontEnds {
		f, err := nf(s.core())
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		s.fronts = append(s.fronts, f)
	}
	return s, nil
}

// Router returns the produce router, for other front ends.
func (s *Server) Router() *Router { return s.router }

// Fetcher returns the fetch path, for other front ends.
func (s *Server) Fetcher() *Fetcher { return s.fetcher }

// Admin returns the coordinator forwarder, for other front ends.
func (s *Server) Admin() *Admin { return s.admin }

// Start listens on ListenAddr (and MetricsAddr) and serves in the
// background. Requests wait until the metadata view is loaded; Ready closes
// then. ctx only bounds Start itself; Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("proxy: server already started or closed")
	}
	lis, err := rpc.Listen(s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	lis = s.limitConns(lis)
	for i, f := range s.fronts {
		if err := f.Start(); err != nil {
			for _, g := range s.fronts[:i] {
				_ = g.Close()
			}
			lis.Close()
			return fmt.Errorf("proxy: %w", err)
		}
	}
	if s.cfg.MetricsAddr != "" {
		mlis, err := rpc.ListenMetrics(s.cfg.MetricsAddr, s.cfg.TLS)
		if err != nil {
			for _, f := range s.fronts {
				_ = f.Close()
			}
			lis.Close()
			return fmt.Errorf("proxy: metrics: %w", err)
		}
		s.metricsSrv = rpc.MetricsServer(s.reg)
		s.log.Info("serving metrics", "addr", "http://"+mlis.Addr().String()+"/metrics")
		s.wg.Go(func() {
			if err := s.metricsSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server failed", "err", err)
			}
		})
	}
	s.lis, s.started = lis, true
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.view.Start(bg)
	s.guard.Start()
	s.wg.Go(func() { s.router.pruneLoop(bg) })
	s.wg.Go(func() { s.fetcher.warmLoop(bg) })
	s.wg.Go(func() {
		select {
		case <-s.view.Ready():
			s.grpc.SetServing(true)
			close(s.ready)
			s.log.Info("proxy ready", "addr", lis.Addr().String())
		case <-bg.Done():
		}
	})
	s.wg.Go(func() {
		if err := s.grpc.Serve(lis); err != nil {
			s.log.Error("grpc server failed", "err", err)
		}
	})
	return nil
}

// Ready is closed once the server has loaded its metadata view and serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the gRPC server listens on, "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// metricsStopGrace bounds the scrapes still in progress when Close stops
// the metrics server.
const metricsStopGrace = 200 * time.Millisecond

// Close stops the server gracefully: health turns NOT_SERVING, long-polls
// answer at once, produce and admin retries stop with SHUTTING_DOWN, and
// requests in flight get up to ShutdownTimeout to finish. Closing twice is
// a no-op. Meta and Store stay open: the caller owns them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.started
	msrv := s.metricsSrv
	s.mu.Unlock()

	close(s.closing)
	s.grpc.SetServing(false)
	var errs []error
	if started {
		// Other front ends close beside the gRPC server: both have seen
		// closing, so their long-polls and retries end now.
		var fwg sync.WaitGroup
		ferrs := make([]error, len(s.fronts))
		for i, f := range s.fronts {
			fwg.Go(func() { ferrs[i] = f.Close() })
		}
		if s.grpc.StopWithin(s.cfg.ShutdownTimeout) {
			s.log.Warn("proxy: requests still running at shutdown timeout; stopped them")
		}
		fwg.Wait()
		errs = append(errs, ferrs...)
		s.cancel()
	} else {
		s.grpc.Stop()
	}
	if msrv != nil {
		errs = append(errs, rpc.StopMetricsServer(msrv, metricsStopGrace))
	}
	s.wg.Wait()
	s.fetcher.stopWarms()
	s.view.Wait()
	s.guard.Close()
	s.pool.close()
	s.admin.close()
	return errors.Join(errs...)
}

// Run starts the server, serves until ctx ends, then closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// waitReady waits until the view is loaded, so that no request is answered
// from an empty view.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.closing:
		return apierr.Errorf(apierr.ErrShuttingDown, "proxy shutting down")
	case <-ctx.Done():
		return ctx.Err()
	}
}
