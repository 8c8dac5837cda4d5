package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for Config.
const (
	// DefaultListenAddr is the gRPC address of the cmd/proxy binary. A zero
	// Config.ListenAddr in a library caller also means this.
	DefaultListenAddr = "127.0.0.1:7070"
	// DefaultProduceTimeout bounds a produce, retries included, when the
	// client set no deadline.
	DefaultProduceTimeout = 30 * time.Second
	// DefaultForwardTimeout bounds one produce attempt at a broker. A
	// healthy broker answers within its flush interval plus one object
	// PUT and one etcd commit — milliseconds, a second or two when
	// storage is slow — and a request that arrived before its
	// predecessor waits there up to 250 ms. 10 s is well past both, so a
	// slow broker is not asked twice needlessly, and a third of the SDK's
	// 30 s request timeout, so an owner that stopped answering without
	// losing its partition (a hung process, a dead connection) is asked
	// again, on a fresh stream, before the client gives up. A partition
	// that moves ends the attempt at once, whatever this says.
	DefaultForwardTimeout = 10 * time.Second
	// DefaultAdminTimeout bounds an admin call, retries included, when the
	// client set no deadline.
	DefaultAdminTimeout = 30 * time.Second
	// DefaultFetchBytes is a fetch's byte budget when the client gives none.
	DefaultFetchBytes = 1 << 20
	// DefaultMaxFetchBytes caps a fetch's byte budget.
	DefaultMaxFetchBytes = 16 << 20
	// DefaultMaxFetchWait caps a fetch's long-poll wait.
	DefaultMaxFetchWait = 30 * time.Second
	// DefaultLogStartTTL is how long a partition's log start is cached.
	DefaultLogStartTTL = time.Second
	// DefaultTailBufferBytes bounds the acknowledged batches a proxy keeps
	// for readers at the high watermark (Config.TailBufferBytes). Such a
	// reader asks for what was acknowledged milliseconds ago; 8 MiB is
	// 400 ms of a 20 MB/s stream, and a reader further behind reads
	// storage as before.
	DefaultTailBufferBytes = 8 << 20
	// DefaultTailWindow is the age below which a segment entry counts as
	// the tail (Config.TailWindow). Tailing consumers and those a few
	// seconds behind read entries this young; 30 s covers a consumer
	// group's rebalance or a restarted consumer, while a reader catching up
	// on hours of data reads older entries, whose blocks cannot evict the
	// tail's.
	DefaultTailWindow = 30 * time.Second
	// DefaultShutdownTimeout bounds the graceful part of Close: requests
	// in flight get this long to finish, then are cut off (clients retry
	// on another proxy). A server must stop within 2 s of SIGTERM even
	// when a broker it forwards to is frozen; the Kafka front end's
	// default is the same.
	DefaultShutdownTimeout = time.Second
)

// Config configures a proxy Server.
type Config struct {
	// ListenAddr is the host:port of the public gRPC API; port 0 picks a
	// free port (see Server.Addr). Default DefaultListenAddr.
	ListenAddr string
	// Meta is the metadata store. Required. The Server does not close it.
	Meta *meta.Store
	// Store holds the segment objects fetches read. Required. The Server
	// does not close it.
	Store objstore.Store
	// Cache sizes the block cache that fetches read through. Its
	// Registerer is ignored; the cache registers with Registry.
	Cache cache.Config
	// ProduceTimeout bounds a produce, retries included, when the client
	// set no deadline. Default DefaultProduceTimeout.
	ProduceTimeout time.Duration
	// ForwardTimeout bounds one attempt to forward a produce to the
	// partition's owner; the attempt also ends as soon as the partition
	// moves. The produce is then retried (on the new owner) with the same
	// bytes, so an idempotent producer's retry is deduplicated. Default
	// DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// AdminTimeout bounds an admin call forwarded to the coordinator
	// leader, retries included, when the client set no deadline. Default
	// DefaultAdminTimeout.
	AdminTimeout time.Duration
	// MaxFetchBytes caps a fetch's max_bytes; larger requests are cut to
	// it. Default DefaultMaxFetchBytes; at most rpc.MaxMessageBytes/2.
	MaxFetchBytes int32
	// MaxFetchWait caps a fetch's max_wait_ms. Default DefaultMaxFetchWait.
	MaxFetchWait time.Duration
	// LogStartTTL is how long a partition's log start offset is cached
	// before it is read from etcd again. Default DefaultLogStartTTL.
	LogStartTTL time.Duration
	// TailBufferBytes bounds the bytes of produced batches, acknowledged
	// by their owner, that the proxy keeps to answer readers at the high
	// watermark without reading storage (docs/proxy.md "Tail reads"). Only
	// partitions with such readers keep any. Default
	// DefaultTailBufferBytes; negative keeps none.
	TailBufferBytes int
	// TailWindow is the age below which a segment entry is the tail: its
	// blocks are cached in the block cache's hot budget and read whole,
	// while older entries go to the cold budget, read by ranged GETs, so
	// a reader of old data cannot evict what tailing readers need
	// (docs/proxy.md). Default DefaultTailWindow.
	TailWindow time.Duration
	// ShutdownTimeout bounds how long Close waits for in-flight requests
	// before it cuts them off. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MetricsAddr, if set, is the host:port of an HTTP server with
	// /metrics and /healthz. Empty serves no metrics.
	MetricsAddr string
	// Logger receives the proxy's logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the proxy's (and its block cache's) metrics and is
	// served at MetricsAddr. Nil means a private registry.
	Registry *prometheus.Registry
	// TLS, if set, secures the public listener and the metrics endpoint,
	// and the proxy's connections to brokers and the coordinator, where
	// its certificate is its client certificate (mutual TLS when they
	// require one). Nil serves and dials plaintext.
	TLS *rpc.TLS
	// Auth configures client authentication, ACLs and quotas
	// (docs/security.md). Its Meta, Logger and Registerer are taken from
	// this Config. The zero value lets every caller do everything.
	Auth auth.Config
	// Limits bound what one client can make the proxy do; zero fields take
	// their defaults.
	Limits Limits
	// FrontEnds build further protocol front ends on the proxy's core
	// (the Kafka listener, pkg/kafka); New calls each, Start starts them
	// and Close closes them.
	FrontEnds []NewFrontEnd
}

func (c *Config) setDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = DefaultProduceTimeout
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.AdminTimeout == 0 {
		c.AdminTimeout = DefaultAdminTimeout
	}
	if c.MaxFetchBytes == 0 {
		c.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if c.MaxFetchWait == 0 {
		c.MaxFetchWait = DefaultMaxFetchWait
	}
	if c.LogStartTTL == 0 {
		c.LogStartTTL = DefaultLogStartTTL
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.TailWindow == 0 {
		c.TailWindow = DefaultTailWindow
	}
	if c.TailBufferBytes == 0 {
		c.TailBufferBytes = DefaultTailBufferBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Limits.setDefaults()
	c.Auth.Meta, c.Auth.Logger = c.Meta, c.Logger
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Meta == nil:
		return errors.New("proxy: config: no metadata store (Meta)")
	case c.Store == nil:
		return errors.New("proxy: config: no object store (Store)")
	case c.ProduceTimeout < 0 || c.ForwardTimeout < 0 || c.AdminTimeout < 0 || c.MaxFetchWait < 0 || c.LogStartTTL < 0 || c.ShutdownTimeout < 0 || c.TailWindow < 0:
		return errors.New("proxy: config: durations must be positive")
	case c.MaxFetchBytes < 0 || int64(c.MaxFetchBytes) > rpc.MaxMessageBytes/2:
		return fmt.Errorf("proxy: config: max fetch bytes %d, want 1..%d", c.MaxFetchBytes, rpc.MaxMessageBytes/2)
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("proxy: config: listen address %q: %w", c.ListenAddr, err)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("proxy: config: metrics address %q: %w", c.MetricsAddr, err)
		}
	}
	if err := c.Cache.Validate(); err != nil {
		return fmt.Errorf("proxy: config: %w", err)
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("proxy: config: %w", err)
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("proxy: config: %w", err)
	}
	if c.TLS == nil && c.Auth.ClientCerts {
		return errors.New("proxy: config: client-certificate authentication needs TLS")
	}
	return nil
}
