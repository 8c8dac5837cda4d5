// Package coordinator is Strata's control plane: it serves the Coordinator
// gRPC service (topic administration and cluster status) and, while it is
// the elected leader, places partitions on live brokers.
//
// A coordinator keeps no state of its own. One to three replicas campaign
// for leadership in etcd (go.etcd.io/etcd/client/v3/concurrency) under
// meta.Store.ElectionPrefix; the winner answers admin calls and runs
// placement, the others answer NOT_LEADER until they win. A leader whose
// etcd session dies stops acting at once and campaigns again.
//
// See docs/coordinator.md for the election key format, placement rules and
// failover timing.
package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for Config.
const (
	// DefaultListenAddr is where cmd/coordinator listens; Config itself
	// requires ListenAddr (port 0 picks a free port).
	DefaultListenAddr = "127.0.0.1:7072"
	// DefaultSessionTTL is the etcd session (lease) TTL of the leader: a
	// leader that cannot reach etcd for this long loses leadership.
	DefaultSessionTTL = 5 * time.Second
	// DefaultPlacementInterval is the period of the placement safety pass
	// that runs even when no change was observed.
	DefaultPlacementInterval = 5 * time.Second
	// DefaultRetentionMs is the retention of a topic created without one:
	// seven days, as Kafka's log.retention.hours=168.
	DefaultRetentionMs = int64(7 * 24 * time.Hour / time.Millisecond)
	// DefaultRetentionBytes is the size limit of a topic created without
	// one: none, as Kafka's retention.bytes=-1.
	DefaultRetentionBytes = int64(-1)
	// DefaultGroupSessionTimeout is how long a consumer group member may
	// go without a heartbeat before it is removed, unless it asks for
	// another timeout when it joins.
	DefaultGroupSessionTimeout = 10 * time.Second
	// DefaultGroupHeartbeatInterval is the heartbeat interval the
	// coordinator tells members.
	DefaultGroupHeartbeatInterval = time.Second
	// DefaultGroupRebalanceTimeout is how long a member may keep a
	// partition it was asked to revoke before it is removed and the
	// partition moves on (KIP-848's rebalance timeout). A revocation in
	// the SDK is one OnRevoked call and one commit; a minute covers a slow
	// OnRevoked handler and a commit retried through a coordinator
	// failover, yet bounds how long a stuck member stalls a partition.
	// Kafka's default is its max.poll.interval.ms, 5 minutes, which counts
	// the processing of a whole poll batch too.
	DefaultGroupRebalanceTimeout = time.Minute
	// DefaultGroupSessionCheckInterval is how often the leader looks for
	// expired sessions and rebalance timeouts: a partition of a dead
	// member moves at most this much after its session ended.
	DefaultGroupSessionCheckInterval = 250 * time.Millisecond
)

// Config configures a coordinator Server.
type Config struct {
	// ID names this coordinator in the election value and in logs. Default
	// "<hostname>-<8 random hex digits>".
	ID string
	// ListenAddr is the host:port the gRPC server listens on; port 0 picks
	// a free port. Required.
	ListenAddr string
	// AdvertiseAddr is the host:port proxies reach this coordinator at,
	// published in the election value. Default: the actual listen address,
	// with the host name in place of an unspecified IP (0.0.0.0, ::).
	AdvertiseAddr string
	// SessionTTL is the TTL of the etcd session that holds leadership,
	// rounded up to whole seconds (etcd leases count seconds). Default
	// DefaultSessionTTL; at least one second.
	SessionTTL time.Duration
	// PlacementInterval is the period of the placement safety pass; the
	// leader also places at once on every observed change. Default
	// DefaultPlacementInterval.
	PlacementInterval time.Duration
	// MaxPartitionsPerTopic bounds CreateTopic's partition count. Default
	// meta.MaxPartitions, which is also its upper limit.
	MaxPartitionsPerTopic int32
	// DefaultRetentionMs is the retention of a topic created with
	// retention_ms 0: -1 (forever) or a positive number of milliseconds.
	// Zero means DefaultRetentionMs (seven days).
	DefaultRetentionMs int64
	// Meta is the metadata store. Required; the Server does not close it.
	Meta *meta.Store
	// Store holds the segment objects. With a Store the leader runs the
	// storage lifecycle (retention, compaction, garbage collection); nil
	// disables it.
	Store objstore.Store
	// Lifecycle tunes retention, compaction and garbage collection (zero
	// fields take pkg/lifecycle's defaults); its Meta, Store, Logger and
	// Registry are filled in from this Config.
	Lifecycle lifecycle.Config
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the server's metrics. Nil means a private registry,
	// so several servers can share a process.
	Registry *prometheus.Registry
	// MetricsAddr, when set, serves Registry at /metrics (and /healthz) on
	// this host:port.
	MetricsAddr string
	// TLS, if set, secures the gRPC listener (mutual TLS when its
	// ClientAuth is rpc.ClientAuthRequire) and the metrics endpoint, and
	// is used to dial brokers. Nil serves and dials plaintext.
	TLS *rpc.TLS
	// GroupSessionTimeout is the default session timeout of consumer
	// group members. Default DefaultGroupSessionTimeout; 1s..5m.
	GroupSessionTimeout time.Duration
	// GroupHeartbeatInterval is the heartbeat interval told to members
	// (at most a third of a member's session timeout). Default
	// DefaultGroupHeartbeatInterval.
	GroupHeartbeatInterval time.Duration
	// GroupSessionCheckInterval is how often the leader looks for expired
	// member sessions and rebalance timeouts. Default
	// DefaultGroupSessionCheckInterval.
	GroupSessionCheckInterval time.Duration
	// GroupRebalanceTimeout is how long a member may keep a partition it
	// was asked to revoke; after it the member is removed (its next
	// heartbeat gets UNKNOWN_MEMBER_ID) and the partition moves. Default
	// DefaultGroupRebalanceTimeout; 1s..5m.
	GroupRebalanceTimeout time.Duration
	// RebalanceInterval is the least time between two rounds of moves of
	// healthy partitions (to a new broker, or by load). Default
	// DefaultRebalanceInterval.
	RebalanceInterval time.Duration
	// RebalanceMaxMoves bounds the partitions one round moves; -1 turns
	// rebalancing off. Default DefaultRebalanceMaxMoves.
	RebalanceMaxMoves int
	// LoadRebalanceInterval is the least time between moves made for
	// bytes-in. Default DefaultLoadRebalanceInterval.
	LoadRebalanceInterval time.Duration
	// DrainTimeout is how long the partitions of a live draining broker
	// are left to its own graceful hand-off before placement moves them.
	// Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// LagInterval is how often the leader recomputes the consumer-lag
	// metric (strata_coordinator_group_lag). Default DefaultLagInterval.
	LagInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.ID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "coordinator"
		}
		var b [4]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		c.ID = host + "-" + hex.EncodeToString(b[:])
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.LagInterval == 0 {
		c.LagInterval = DefaultLagInterval
	}
	if c.PlacementInterval == 0 {
		c.PlacementInterval = DefaultPlacementInterval
	}
	if c.MaxPartitionsPerTopic == 0 {
		c.MaxPartitionsPerTopic = meta.MaxPartitions
	}
	if c.DefaultRetentionMs == 0 {
		c.DefaultRetentionMs = DefaultRetentionMs
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.setGroupDefaults()
	c.setRebalanceDefaults()
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Meta == nil {
		return errors.New("coordinator: config: Meta is required")
	}
	if c.ListenAddr == "" {
		return errors.New("coordinator: config: ListenAddr is required")
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("coordinator: config: ListenAddr %q: %w", c.ListenAddr, err)
	}
	if c.AdvertiseAddr != "" {
		host, port, err := net.SplitHostPort(c.AdvertiseAddr)
		if err != nil || host == "" || port == "" || port == "0" {
			return fmt.Errorf("coordinator: config: AdvertiseAddr %q must be host:port with a fixed port", c.AdvertiseAddr)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("coordinator: config: MetricsAddr %q: %w", c.MetricsAddr, err)
		}
	}
	if len(c.ID) > 253 {
		return fmt.Errorf("coordinator: config: ID is %d characters, more than 253", len(c.ID))
	}
	if c.SessionTTL < time.Second {
		return fmt.Errorf("coordinator: config: SessionTTL %v is under one second", c.SessionTTL)
	}
	if c.PlacementInterval < 0 {
		return fmt.Errorf("coordinator: config: PlacementInterval %v is negative", c.PlacementInterval)
	}
	if c.LagInterval < 0 {
		return fmt.Errorf("coordinator: config: LagInterval %v is negative", c.LagInterval)
	}
	if c.MaxPartitionsPerTopic < 1 || c.MaxPartitionsPerTopic > meta.MaxPartitions {
		return fmt.Errorf("coordinator: config: MaxPartitionsPerTopic %d, want 1..%d", c.MaxPartitionsPerTopic, meta.MaxPartitions)
	}
	if c.DefaultRetentionMs < -1 {
		return fmt.Errorf("coordinator: config: DefaultRetentionMs %d, want -1 or > 0", c.DefaultRetentionMs)
	}
	if err := c.validateGroups(); err != nil {
		return err
	}
	if err := c.validateRebalance(); err != nil {
		return err
	}
	return c.validateLifecycle()
}

// sessionTTLSeconds is SessionTTL rounded up to whole seconds.
func (c Config) sessionTTLSeconds() int {
	return int((c.SessionTTL + time.Second - 1) / time.Second)
}

// Server is a coordinator: the Coordinator gRPC service plus, while leader,
// partition placement.
type Server struct {
	stratav1.UnimplementedCoordinatorServer

	cfg     Config
	log     *slog.Logger
	metrics *metrics
	grpc    *rpc.Server
	view    *meta.View
	// lifecycle runs retention, compaction and GC while leading; nil
	// without a Store.
	lifecycle *lifecycle.Manager
	// groups coordinates consumer groups while leading; nil otherwise.
	groups atomic.Pointer[groupManager]
	// rebalanceMetrics count hand-offs and drains.
	rebalanceMetrics *rebalanceMetrics
	// unreachable holds the brokers liveness evicted, which placement
	// passes over until the leader reaches them again.
	unreachable *unreachable

	ready     chan struct{}
	readyOnce sync.Once

	// leading is true while this server holds leadership and acts on it:
	// set after winning an election, cleared first thing on stepping down.
	leading atomic.Bool
	// bgDone counts the background goroutines Start launched.
	bgDone sync.WaitGroup

	mu sync.Mutex // guards the fields below
	// addr is the actual listen address, advertise the published one.
	addr, advertise string
	started, closed bool
	// stop cancels the background work (election, placement, view).
	stop    context.CancelFunc
	metrSrv *http.Server
}

// New returns a coordinator; Start makes it serve.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Only Strata's proxies may call a coordinator (auth.CoordinatorCallers).
	guard, err := auth.NewServerGuard(auth.ServerGuardConfig{TLS: cfg.TLS, Callers: auth.CoordinatorCallers, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("coordinator", cfg.ID),
		metrics: newMetrics(cfg.Registry),
		grpc:    rpc.NewServer(cfg.Logger, append(guard.ServerOptions(), rpc.WithServerTLS(cfg.TLS))...),
		view:    meta.NewView(cfg.Meta),
		ready:   make(chan struct{}),
	}
	s.rebalanceMetrics = newRebalanceMetrics(cfg.Registry)
	s.unreachable = newUnreachable(s.metrics.unreachable)
	if s.lifecycle, err = newLifecycle(cfg, s.view); err != nil {
		return nil, err
	}
	stratav1.RegisterCoordinatorServer(s.grpc, s)
	return s, nil
}

// Start listens on ListenAddr, serves in the background and joins the
// election. ctx bounds only the start; Close stops the server. Ready closes
// once the server answers calls (as leader or standby).
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("coordinator: already started")
	}
	lis, err := rpc.Listen(s.cfg.ListenAddr)
	if err != nil {
		return err
	}
	var mlis net.Listener
	if s.cfg.MetricsAddr != "" {
		if mlis, err = rpc.ListenMetrics(s.cfg.MetricsAddr, s.cfg.TLS); err != nil {
			lis.Close()
			return err
		}
		s.metrSrv = rpc.MetricsServer(s.cfg.Registry)
		s.log.Info("serving metrics", "addr", "http://"+mlis.Addr().String()+"/metrics")
	}
	s.started = true
	s.addr = lis.Addr().String()
	s.advertise = s.cfg.AdvertiseAddr
	if s.advertise == "" {
		s.advertise = rpc.AdvertiseAddr(s.addr)
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop

	s.bgDone.Add(1)
	go func() {
		defer s.bgDone.Done()
		if err := s.grpc.Serve(lis); err != nil {
			s.log.Error("grpc server stopped", "err", err)
		}
	}()
	if s.metrSrv != nil {
		s.bgDone.Add(1)
		go func() {
			defer s.bgDone.Done()
			if err := s.metrSrv.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	s.view.Start(bg)
	s.bgDone.Add(2)
	go func() {
		defer s.bgDone.Done()
		select {
		case <-s.view.Ready():
			s.grpc.SetServing(true)
			s.readyOnce.Do(func() { close(s.ready) })
		case <-bg.Done():
		}
	}()
	go func() {
		defer s.bgDone.Done()
		s.electionLoop(bg, Leader{ID: s.cfg.ID, Addr: s.advertise})
	}()
	s.log.Info("coordinator started", "addr", s.addr, "advertise", s.advertise)
	return nil
}

// Ready is closed once the server answers calls.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address the gRPC server listens on, after Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// AdvertiseAddr returns the address published in the election value.
func (s *Server) AdvertiseAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertise
}

// ID returns the coordinator's ID.
func (s *Server) ID() string { return s.cfg.ID }

// IsLeader reports whether this coordinator currently acts as leader.
func (s *Server) IsLeader() bool { return s.leading.Load() }

// Close steps down (revoking the election session so a standby takes over
// at once), stops placement and shuts the gRPC server down gracefully.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started, stop, msrv := s.started, s.stop, s.metrSrv
	s.mu.Unlock()
	if !started {
		s.grpc.Stop() // never served (or Start failed); its stream workers run from New on
		return nil
	}
	s.grpc.SetServing(false)
	stop() // the election loop resigns and placement stops
	// Calls in progress finish, for at most stopGrace: one waiting on an
	// etcd that does not answer would hold the stop for its whole timeout.
	s.grpc.StopWithin(stopGrace)
	if msrv != nil {
		_ = rpc.StopMetricsServer(msrv, stopGrace)
	}
	s.bgDone.Wait()
	s.view.Wait()
	s.log.Info("coordinator stopped")
	return nil
}

// Run starts the server, serves until ctx ends, then closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}
