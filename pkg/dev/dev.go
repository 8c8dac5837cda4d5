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
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
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
	// KafkaAddr, if set, is where the proxy serves the Kafka protocol
	// (docs/kafka.md); port 0 picks a free port (see Cluster.KafkaAddr).
	// Empty serves none. `strata dev` defaults it to kafka.DefaultAddr.
	KafkaAddr string
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
	var endpoint string
	c.etcd, endpoint, err = startEtcd(filepath.Join(dataDir, "etcd"), c.log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	c.meta, err = meta.New(meta.Config{Endpoints: []string{endpoint}, Logger: c.log, Registerer: reg})
	if err != nil {
		return err
	}
	storeCfg := objstore.Config{Dir: filepath.Join(dataDir, "objects")}
	if c.cfg.S3.Bucket != "" {
		storeCfg = objstore.Config{S3: c.cfg.S3}
	}
	store, err := objstore.Open(ctx, storeCfg)
	if err != nil {
		return err
	}
	store = objstore.Instrument(store, reg)

	public, internal, err := c.loadTLS()
	if err != nil {
		return err
	}
	c.coordinator, err = coordinator.New(coordinator.Config{
		ListenAddr: "127.0.0.1:0", Meta: c.meta, Store: store, Logger: c.log.With("server", "coordinator"), Registry: reg,
		TLS: internal,
	})
	if err != nil {
		return err
	}
	c.broker, err = broker.New(broker.Config{
		ListenAddr: "127.0.0.1:0", Meta: c.meta, Store: store, Logger: c.log.With("server", "broker"), Registry: reg,
		TLS: internal,
	})
	if err != nil {
		return err
	}
	pcfg := proxy.Config{
		ListenAddr: c.cfg.Addr, Meta: c.meta, Store: store, Logger: c.log.With("server", "proxy"), Registry: reg,
		TLS: public, Auth: c.cfg.Auth,
	}
	if c.cfg.KafkaAddr != "" {
		pcfg.FrontEnds = append(pcfg.FrontEnds, kafka.Attach(kafka.Config{Addr: c.cfg.KafkaAddr}, func(k *kafka.Server) { c.kafka = k }))
	}
	c.proxy, err = proxy.New(pcfg)
	if err != nil {
		return err
	}
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
	close(c.ready)
	return nil
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
	c.proxy, c.kafka, c.broker, c.coordinator, c.meta, c.etcd = nil, nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
