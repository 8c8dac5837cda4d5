// Package dev runs a whole Strata cluster in one process for development
// and trying things out: an embedded single-member etcd, a coordinator, a
// broker and a proxy, storing objects in a local directory (or an S3
// bucket). It is what `strata dev` runs. The servers are the same code the
// separate binaries run; only their wiring differs.
package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for Config.
const (
	// DefaultAddr is where clients reach the proxy; the CLI's default
	// --server.
	DefaultAddr = "127.0.0.1:7070"
	// DefaultDataDir holds the embedded etcd's data and the objects.
	DefaultDataDir = "strata-data"
	// DefaultMetricsAddr is the `strata dev --metrics-addr` default: a
	// fixed loopback port next to DefaultAddr, so a local Prometheus or
	// curl finds it without reading the log. Config leaves it off.
	DefaultMetricsAddr = "127.0.0.1:7090"
)

// Config configures a development cluster.
type Config struct {
	// Addr is the proxy's listen address, the one clients use. Default
	// DefaultAddr; port 0 picks a free port (see Cluster.Addr).
	Addr string
	// DataDir holds etcd's data (DataDir/etcd) and, unless S3 is set, the
	// segment objects (DataDir/objects). Data survives a restart. Default
	// DefaultDataDir.
	DataDir string
	// S3, when its Bucket is set, stores segment objects in that bucket
	// instead of DataDir/objects.
	S3 objstore.S3Config
	// Logger receives every server's logs. Default slog.Default().
	Logger *slog.Logger
	// TLS, if set, is the servers' certificate and CA (see GenerateTLS):
	// the proxy serves clients with it (verifying client certificates
	// when given), and the proxy, broker and coordinator talk to each
	// other with mutual TLS. Nil: plaintext.
	TLS *rpc.TLSConfig
	// Auth configures the proxy's client authentication, ACLs and quotas.
	Auth auth.Config
	// MaxRequestBytes bounds the broker's produce requests, and so the
	// largest record batch (see broker.Config.MaxRequestBytes). Default
	// broker.DefaultMaxRequestBytes.
	MaxRequestBytes int
	// MetricsAddr, if set, serves /metrics — every role's metrics from one
	// registry, plus Go and process metrics — and /healthz on this
	// host:port (port 0 picks one; see Cluster.MetricsAddr), over TLS when
	// TLS is set. Empty: off.
	MetricsAddr string
	// KafkaAddr, if set, is where the proxy serves the Kafka protocol
	// (docs/kafka.md); port 0 picks a free port (see Cluster.KafkaAddr).
	// Empty serves none. `strata dev` defaults it to kafka.DefaultAddr.
	KafkaAddr string
	// KafkaAutoCreateTopics has a Kafka Metadata request that names a
	// topic that does not exist create it, with one partition
	// (kafka.Config.AutoCreateTopics). `strata dev` turns it on: Kafka's
	// own default, which applications tried against a local Kafka often
	// rely on.
	KafkaAutoCreateTopics bool
}

// Validate reports whether the configuration can be used, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	if c.S3.Bucket != "" {
		if err := c.S3.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Cluster is a running development cluster.
type Cluster struct {
	cfg Config
	log *slog.Logger

	// Set by Start; released in reverse order by Close.
	etcd        *embed.Etcd
	meta        *meta.Store
	coordinator *coordinator.Server
	broker      *broker.Server
	proxy       *proxy.Server
	unlock      func() // releases the data dir's lock
	metrics     *http.Server
	metricsAddr string
	metricsDone chan struct{} // closed when the metrics server's Serve returned
	kafka       *kafka.Server // nil without KafkaAddr
	ready       chan struct{}
}

// New returns a cluster that Start runs.
func New(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Cluster{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}, nil
}

// Start starts etcd and the servers and returns once clients can connect
// to Addr.
func (c *Cluster) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	dataDir, err := filepath.Abs(c.cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("dev: data dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := c.startMeta(ctx, dataDir, reg); err != nil {
		return err
	}
	store, err := c.openStore(ctx, dataDir, reg)
	if err != nil {
		return err
	}

	public, internal, err := c.loadTLS()
	if err != nil {
		return err
	}
	if err := c.newServers(dataDir, store, reg, public, internal); err != nil {
		return err
	}
	if err := c.startServers(ctx); err != nil {
		return err
	}
	if err := c.serveMetrics(reg, public); err != nil {
		return err
	}
	close(c.ready)
	return nil
}

// newServers builds the coordinator, the broker and the proxy (with the
// Kafka front end if KafkaAddr is set) on one metadata store, object store
// and registry; public secures the proxy's listeners, internal the
// others'.
func (c *Cluster) newServers(dataDir string, store objstore.Store, reg *prometheus.Registry, public, internal *rpc.TLS) (err error) {
	c.coordinator, err = coordinator.New(coordinator.Config{
		ListenAddr: "127.0.0.1:0", Meta: c.meta, Store: store, Logger: c.log.With("server", "coordinator"), Registry: reg,
		TLS: internal,
	})
	if err != nil {
		return err
	}
	id, err := brokerID(dataDir)
	if err != nil {
		return err
	}
	c.broker, err = broker.New(broker.Config{
		ListenAddr: "127.0.0.1:0", Meta: c.meta, Store: store, Logger: c.log.With("server", "broker"), Registry: reg,
		TLS: internal,
		// One broker per data dir, guarded by its lock: see startMeta.
		ID: id, ReplaceRegistration: true, MaxRequestBytes: c.cfg.MaxRequestBytes,
	})
	if err != nil {
		return err
	}
	pcfg := proxy.Config{
		ListenAddr: c.cfg.Addr, Meta: c.meta, Store: store, Logger: c.log.With("server", "proxy"), Registry: reg,
		TLS: public, Auth: c.cfg.Auth,
	}
	if c.cfg.KafkaAddr != "" {
		pcfg.FrontEnds = append(pcfg.FrontEnds, kafka.Attach(kafka.Config{Addr: c.cfg.KafkaAddr, AutoCreateTopics: c.cfg.KafkaAutoCreateTopics}, func(k *kafka.Server) { c.kafka = k }))
	}
	c.proxy, err = proxy.New(pcfg)
	return err
}

// startServers starts the coordinator, the broker and the proxy in turn,
// each once the one before is ready.
func (c *Cluster) startServers(ctx context.Context) error {
	for _, s := range []interface {
		Start(context.Context) error
		Ready() <-chan struct{}
	}{c.coordinator, c.broker, c.proxy} {
		if err := s.Start(ctx); err != nil {
			return err
		}
		select {
		case <-s.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// serveMetrics serves reg on Config.MetricsAddr, if set.
func (c *Cluster) serveMetrics(reg *prometheus.Registry, t *rpc.TLS) error {
	if c.cfg.MetricsAddr == "" {
		return nil
	}
	l, err := rpc.ListenMetrics(c.cfg.MetricsAddr, t)
	if err != nil {
		return fmt.Errorf("dev: metrics address %s (choose another with --metrics-addr, or \"\" for none): %w", c.cfg.MetricsAddr, err)
	}
	scheme := "http"
	if t != nil {
		scheme = "https"
	}
	c.metricsAddr = scheme + "://" + l.Addr().String()
	c.metrics, c.metricsDone = rpc.MetricsServer(reg), make(chan struct{})
	go func() {
		defer close(c.metricsDone)
		if err := c.metrics.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("metrics server failed", "err", err)
		}
	}()
	return nil
}

// MetricsAddr returns the metrics endpoint's base URL
// ("http://127.0.0.1:7090"); empty when metrics are off.
func (c *Cluster) MetricsAddr() string { return c.metricsAddr }

// startMeta takes the data dir's lock, starts the embedded etcd and
// connects the metadata store, clearing what a killed predecessor on the
// same data dir left behind.
func (c *Cluster) startMeta(ctx context.Context, dataDir string, reg prometheus.Registerer) error {
	var err error
	if c.unlock, err = lockDataDir(dataDir); err != nil {
		return err
	}
	var endpoint string
	c.etcd, endpoint, err = startEtcd(ctx, filepath.Join(dataDir, "etcd"), c.log)
	if err != nil {
		return err
	}
	c.meta, err = meta.New(meta.Config{Endpoints: []string{endpoint}, Logger: c.log, Registerer: reg})
	if err != nil {
		return err
	}
	return clearStaleLeases(ctx, c.meta)
}

// openStore opens the object store: DataDir/objects, or the S3 bucket.
func (c *Cluster) openStore(ctx context.Context, dataDir string, reg prometheus.Registerer) (objstore.Store, error) {
	storeCfg := objstore.Config{Dir: filepath.Join(dataDir, "objects")}
	if c.cfg.S3.Bucket != "" {
		storeCfg = objstore.Config{S3: c.cfg.S3}
	}
	store, err := objstore.Open(ctx, storeCfg)
	if err != nil {
		return nil, err
	}
	return objstore.Instrument(store, reg), nil
}

// Ready is closed once Start has succeeded.
func (c *Cluster) Ready() <-chan struct{} { return c.ready }

// Addr returns the address clients use.
func (c *Cluster) Addr() string { return c.proxy.Addr() }

// KafkaAddr returns the address Kafka clients use, "" without KafkaAddr.
func (c *Cluster) KafkaAddr() string {
	if c.kafka == nil {
		return ""
	}
	return c.kafka.Addr()
}

// Run starts the cluster, waits until ctx ends, then closes it; it calls
// started with the client address once the cluster is ready.
func (c *Cluster) Run(ctx context.Context, started func(addr string)) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	if started != nil {
		started(c.Addr())
	}
	<-ctx.Done()
	return c.Close()
}

// Close stops the servers — the broker flushes and commits what it holds
// — then etcd.
func (c *Cluster) Close() error {
	var errs []error
	if c.metrics != nil {
		_ = c.metrics.Close()
		<-c.metricsDone
		c.metrics = nil
	}
	if c.proxy != nil {
		errs = append(errs, c.proxy.Close())
	}
	if c.broker != nil {
		errs = append(errs, c.broker.Close())
	}
	if c.coordinator != nil {
		errs = append(errs, c.coordinator.Close())
	}
	if c.meta != nil {
		errs = append(errs, c.meta.Close())
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	if c.unlock != nil {
		c.unlock()
	}
	c.proxy, c.kafka, c.broker, c.coordinator, c.meta, c.etcd, c.unlock = nil, nil, nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
