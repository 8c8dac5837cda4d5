package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for Config.
const (
	// DefaultListenAddr lets the system pick a free port on loopback; the
	// broker binary's flag defaults to DefaultBinaryListenAddr instead.
	DefaultListenAddr = "127.0.0.1:0"
	// DefaultBinaryListenAddr is the -listen-addr default of cmd/broker.
	DefaultBinaryListenAddr = "127.0.0.1:7071"
	// DefaultLeaseTTL is the broker registration's lease: a broker that
	// stops renewing it loses its partitions this long after.
	DefaultLeaseTTL = 5 * time.Second
	// DefaultFlushInterval is the longest a produced batch waits in memory
	// for a flush while other flushes are in flight (with none in flight
	// it goes at once, unless LingerWhenIdle). Flushes pipeline, so a
	// short interval costs PUTs, not throughput; on AWS S3, where PUTs are
	// billed, 50–250 ms with LingerWhenIdle trades latency for cost.
	DefaultFlushInterval = 5 * time.Millisecond
	// DefaultFlushBytes starts a flush as soon as this many bytes are
	// buffered; 4 MiB is where one PUT stream to MinIO reaches full speed.
	DefaultFlushBytes = 4 << 20
	// DefaultMaxInflightFlushes is how many flushes may be PUT or
	// committing at once.
	DefaultMaxInflightFlushes = 4
	// DefaultMaxRequestBytes bounds one produce request's batches.
	DefaultMaxRequestBytes = 8 << 20
	// DefaultMaxBufferedBytes bounds the batches buffered for the next
	// flush; produces wait for room beyond it.
	DefaultMaxBufferedBytes = 16 << 20
	// DefaultShutdownTimeout bounds a graceful stop: flushing and
	// committing what is buffered, handing the partitions off and ending
	// the registration take milliseconds against a healthy etcd and
	// store, and a server must stop within 2 s of SIGTERM even when
	// either is gone. What did not finish by then is left to the lease
	// (the partitions move when it expires) and to the producers'
	// retries.
	DefaultShutdownTimeout = time.Second
	// DefaultLoadReportInterval is how often the broker publishes its
	// bytes-in rate in its registration, for placement.
	DefaultLoadReportInterval = 10 * time.Second
	// DefaultObjectPrefix is where segment objects go in the store.
	DefaultObjectPrefix = "segments/"
)

// Limits on Config.
const (
	// MaxFlushBytes bounds FlushBytes: one segment object is built in
	// memory.
	MaxFlushBytes = 256 << 20
	// MaxInflightFlushes bounds MaxInflightFlushes.
	MaxInflightFlushes = 64
)

// Config configures a broker Server.
type Config struct {
	// ID names this broker among live brokers and in partition state. It
	// must be unique; default: hostname + "-" + 6 random hex characters,
	// so that a restarted process never collides with its own unexpired
	// lease.
	ID string
	// ReplaceRegistration says that no other process can be running with
	// ID (strata dev guarantees it with its data directory's lock), so a
	// live registration of ID at start is a killed predecessor's: the
	// broker takes it over at once instead of waiting up to LeaseTTL for
	// it to expire. Either way, a starting broker bumps the epoch of every
	// partition still assigned to its ID before serving, so a predecessor
	// can never commit again.
	ReplaceRegistration bool
	// ListenAddr is the host:port the gRPC server listens on; port 0 picks
	// a free port. Default DefaultListenAddr.
	ListenAddr string
	// AdvertiseAddr is the host:port that proxies dial, published in the
	// broker's registration. Default: the actual listen address, with an
	// unspecified host (0.0.0.0, ::) replaced by the hostname.
	AdvertiseAddr string
	// Zone is the availability zone the broker runs in, if known.
	Zone string
	// LeaseTTL is the lifetime of the membership lease (whole seconds, at
	// least 1s). Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// FlushInterval is the longest a batch stays buffered before a flush
	// starts while other flushes are in flight. Default
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// LingerWhenIdle makes buffered batches wait for FlushInterval (or
	// FlushBytes) even while no flush is in flight. By default a flush
	// starts at once when the pipeline is idle — waiting would only add
	// latency — and the interval applies while flushes are in flight,
	// so that the next one batches more. On AWS S3, where PUTs are billed,
	// set it with a longer interval to bound the PUT rate.
	LingerWhenIdle bool
	// FlushBytes starts a flush once this many bytes are buffered across
	// all partitions. Default DefaultFlushBytes.
	FlushBytes int
	// MaxInflightFlushes is how many flushes may overlap (their PUTs run
	// concurrently; their commits apply in order). Default
	// DefaultMaxInflightFlushes.
	MaxInflightFlushes int
	// MaxRequestBytes bounds the batches of one produce request; a topic's
	// MaxMessageBytes, when set, bounds each batch further. Default
	// DefaultMaxRequestBytes.
	MaxRequestBytes int
	// MaxBufferedBytes bounds the bytes buffered and not yet cut into a
	// flush; a produce that would exceed it waits (back-pressure while
	// storage is slow). It must be at least MaxRequestBytes. Default
	// DefaultMaxBufferedBytes.
	MaxBufferedBytes int
	// LoadReportInterval is how often the broker publishes its bytes-in
	// rate in its registration. Default DefaultLoadReportInterval.
	LoadReportInterval time.Duration
	// ShutdownTimeout bounds Close's graceful work; PUTs and commits still
	// running then are cut off and their produces fail (retriable).
	// Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ObjectPrefix is prepended to every segment object key. Default
	// DefaultObjectPrefix. It has no flag: it must equal the coordinator's
	// lifecycle ObjectPrefix, and operators place a cluster's objects with
	// the store's own prefix (-s3-prefix) instead.
	ObjectPrefix string
	// MetricsAddr, if set, serves /metrics and /healthz on this host:port.
	MetricsAddr string

	// Meta is the metadata store. Required; the Server does not close it.
	Meta *meta.Store
	// Store is the object store segment objects go to. Required; the
	// Server does not close it.
	Store objstore.Store
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the broker's metrics; nil means a private one.
	Registry *prometheus.Registry
	// TLS, if set, secures the gRPC listener (mutual TLS when its
	// ClientAuth is rpc.ClientAuthRequire) and the metrics endpoint. Nil
	// serves plaintext.
	TLS *rpc.TLS
}

// setDefaults fills zero fields with their defaults.
func (c *Config) setDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = DefaultFlushBytes
	}
	if c.MaxInflightFlushes == 0 {
		c.MaxInflightFlushes = DefaultMaxInflightFlushes
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = max(DefaultMaxBufferedBytes, c.MaxRequestBytes)
	}
	if c.LoadReportInterval == 0 {
		c.LoadReportInterval = DefaultLoadReportInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ObjectPrefix == "" {
		c.ObjectPrefix = DefaultObjectPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	if c.ID != "" {
		// The address is not known yet; check the ID alone.
		if err := (meta.BrokerInfo{ID: c.ID, Addr: "-"}).Validate(); err != nil {
			return fmt.Errorf("broker: config: %w", err)
		}
	}
	switch {
	case c.Meta == nil:
		return errors.New("broker: config: no metadata store")
	case c.Store == nil:
		return errors.New("broker: config: no object store")
	case c.LeaseTTL < time.Second || c.LeaseTTL%time.Second != 0:
		return fmt.Errorf("broker: config: lease ttl %v must be whole seconds, at least 1s", c.LeaseTTL)
	case c.FlushInterval < 0:
		return fmt.Errorf("broker: config: flush interval %v is negative", c.FlushInterval)
	case c.ShutdownTimeout < 0:
		return fmt.Errorf("broker: config: shutdown timeout %v is negative", c.ShutdownTimeout)
	case c.FlushBytes < 1 || c.FlushBytes > MaxFlushBytes:
		return fmt.Errorf("broker: config: flush bytes %d, want 1..%d", c.FlushBytes, MaxFlushBytes)
	case c.MaxInflightFlushes < 1 || c.MaxInflightFlushes > MaxInflightFlushes:
		return fmt.Errorf("broker: config: max in-flight flushes %d, want 1..%d", c.MaxInflightFlushes, MaxInflightFlushes)
	case c.MaxRequestBytes < 1 || c.MaxRequestBytes > rpc.MaxMessageBytes/2:
		return fmt.Errorf("broker: config: max request bytes %d, want 1..%d", c.MaxRequestBytes, rpc.MaxMessageBytes/2)
	case c.MaxBufferedBytes < c.MaxRequestBytes:
		return fmt.Errorf("broker: config: max buffered bytes %d is below max request bytes %d", c.MaxBufferedBytes, c.MaxRequestBytes)
	case c.LoadReportInterval < 0:
		return fmt.Errorf("broker: config: load report interval %v is negative", c.LoadReportInterval)
	case strings.HasPrefix(c.ObjectPrefix, "/") || strings.Contains(c.ObjectPrefix, ".."):
		return fmt.Errorf("broker: config: object prefix %q must be relative and without \"..\"", c.ObjectPrefix)
	}
	return nil
}

// defaultID returns hostname-xxxxxx with 6 random hex characters.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "broker"
	}
	host = strings.Map(func(r rune) rune {
		if r == '/' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
