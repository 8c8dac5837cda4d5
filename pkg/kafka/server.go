// Package kafka is the Kafka front end of a proxy: it serves the Kafka wire
// protocol beside the proxy's gRPC API, so unchanged Kafka clients (Java,
// librdkafka, franz-go, Sarama, kcat) produce, consume and administer
// topics on Strata.
//
// It is an adapter over the proxy's core (proxy.Core): produces go through
// proxy.Router, fetches and offset lookups through proxy.Fetcher, admin and
// group calls through proxy.Admin to the coordinator, and every request is
// authenticated, authorized, throttled and limited by the same pkg/auth
// Guard and proxy limits as a gRPC call. Requests and responses are
// franz-go's kmsg types; nothing here hand-writes a wire struct.
//
// Each API lives in a file of its own that registers the versions it
// serves (registry.go); ApiVersions is built from those registrations, so
// what is advertised is what is served. A connection decodes requests in
// order, serves them concurrently, and writes the responses in request
// order (conn.go). The proxy presents itself as the leader of every
// partition and the coordinator of every group. docs/kafka.md describes
// the compatibility and what differs from Apache Kafka.
package kafka

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/txn"
)

// Server is a proxy's Kafka listener. It implements proxy.FrontEnd.
type Server struct {
	cfg     Config
	core    proxy.Core
	log     *slog.Logger
	metrics *metrics
	// memberOnce makes memberCache, the proxy's memory of KIP-848
	// members (consumer_group_heartbeat.go).
	memberOnce  sync.Once
	memberCache *memberCache
	// txn is the transaction coordinator (txn.go); its Run loop runs from
	// Start until Close calls txnStop, under wg.
	txn     *txn.Coordinator
	txnStop context.CancelFunc
	// queued bounds the bytes of the requests every connection has read
	// or is reading and has not answered (Config.MaxQueuedRequestBytes).
	queued *semaphore.Weighted

	// ctx is the parent of every request's context; cancel ends it when
	// Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection

	mu      sync.Mutex // guards every field below
	lis     net.Listener
	self    hostPort // the advertised address; set by Start
	nodeID  int32
	cluster string
	conns   map[*conn]struct{}
	started bool
	closed  bool
}

// New returns a Kafka front end over a proxy's core; Start serves it.
func New(cfg Config, core proxy.Core) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, core: core, log: core.Logger.With("component", "kafka"),
		metrics: newMetrics(core.Registry), conns: map[*conn]struct{}{},
		queued: semaphore.NewWeighted(int64(cfg.MaxQueuedRequestBytes)),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	tc, err := txn.New(txn.Config{
		Meta: core.Meta, Markers: routerMarkers{s}, Logger: s.log,
		Registry: core.Registry, MaxTimeout: cfg.MaxTxnTimeout, IDExpiration: cfg.TxnIDExpiration,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	s.txn = tc
	s.cluster = cfg.ClusterID
	if s.cluster == "" {
		sum := sha256.Sum256([]byte(core.Meta.Prefix()))
		s.cluster = "strata-" + hex.EncodeToString(sum[:8])
	}
	return s, nil
}

// Attach returns the constructor proxy.Config.FrontEnds takes: the proxy
// builds the Server on its core, starts it and closes it. got, if not nil,
// receives the Server (for Addr).
func Attach(cfg Config, got func(*Server)) proxy.NewFrontEnd {
	return func(core proxy.Core) (proxy.FrontEnd, error) {
		s, err := New(cfg, core)
		if err != nil {
			return nil, err
		}
		if got != nil {
			got(s)
		}
		return s, nil
	}
}

// Start listens on Addr and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("kafka: server already started or closed")
	}
	lis, err := rpc.Listen(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	self, err := s.advertise(lis.Addr())
	if err != nil {
		lis.Close()
		return err
	}
	s.self, s.nodeID = self, s.cfg.NodeID
	if s.nodeID == 0 {
		s.nodeID = nodeIDFor(self.String())
	}
	if n := s.core.Limits.MaxConnsPerClient; n > 0 {
		lis = rpc.LimitConnsPerHost(lis, n, func(host string) {
			s.metrics.rejected.WithLabelValues("connections").Inc()
			s.log.Warn("connection refused: too many from one client", "client", host, "limit", n)
		})
	}
	if s.core.TLS != nil {
		lis = tls.NewListener(lis, s.core.TLS.ServerConfig())
	}
	s.lis, s.started = lis, true
	txnCtx, txnStop := context.WithCancel(s.ctx)
	s.txnStop = txnStop
	s.wg.Go(func() { s.txn.Run(txnCtx) })
	s.log.Info("serving kafka", "addr", lis.Addr().String(), "advertised", self.String(), "node_id", s.nodeID)
	s.wg.Go(func() { s.acceptLoop(lis) })
	return nil
}

// advertise resolves the address clients are told.
func (s *Server) advertise(bound net.Addr) (hostPort, error) {
	if s.cfg.AdvertisedAddr != "" {
		return splitAdvertised(s.cfg.AdvertisedAddr)
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return hostPort{}, fmt.Errorf("kafka: bound address %s: %w", bound, err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return hostPort{}, fmt.Errorf("kafka: no advertised address, and the host name is unknown: %w", err)
		}
	}
	p, _ := strconv.Atoi(port)
	return hostPort{host: host, port: int32(p)}, nil
}

// acceptLoop accepts connections until the listener closes.
func (s *Server) acceptLoop(lis net.Listener) {
	for {
		nc, err := lis.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("kafka: accept failed", "err", err)
			}
			return
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.metrics.conns.Inc()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				s.metrics.conns.Dec()
			}()
			c.serve()
		})
	}
}

// Addr returns the address the listener is bound to, "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// AdvertisedAddr returns the address clients are told, "" before Start.
func (s *Server) AdvertisedAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		return ""
	}
	return s.self.String()
}

// identity returns the advertised address and node id.
func (s *Server) identity() (hostPort, int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self, s.nodeID
}

// Close stops accepting, stops reading requests, lets the ones in flight
// finish and answer within ShutdownTimeout, then closes every connection.
// The proxy calls it after telling its core to end long-polls and
// retries. Closing twice is a no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.txnStop != nil {
		s.txnStop()
	}
	lis := s.lis
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	if lis != nil {
		err = lis.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	for _, c := range conns {
		c.stop()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("kafka: requests still running at shutdown timeout; closing their connections")
		s.cancel()
		for _, c := range conns {
			_ = c.nc.Close()
		}
		<-done
	}
	s.cancel()
	return err
}

// maxFrame is the largest request frame.
func (s *Server) maxFrame() int { return s.cfg.MaxRequestBytes }

// maxControlFrame is the largest request other than Produce.
func (s *Server) maxControlFrame() int { return min(s.maxFrame(), s.cfg.MaxControlRequestBytes) }
