// Package meta is Strata's metadata store: everything the cluster knows about
// itself lives in etcd under one prefix, and this package is the only code
// that reads or writes those keys.
//
// It holds topics, partition state (owner broker, epoch, next offset, log
// start), the segment entries that index each partition's data in object
// storage, the aborted transactions of Kafka transactional producers,
// broker registrations under leases, and consumer groups' committed
// offsets. etcd is a small index here, never a log: there is one key per
// segment entry, never one per record or batch.
//
// The central operation is the fencing commit (CommitSegments): one etcd
// transaction per group of partitions compares each partition's owner,
// epoch and next offset with what the committing broker believes, and only
// if all of them hold writes the segment entries and the new next offsets. A
// broker that lost a partition can therefore never append to it.
//
// Every value is JSON with a version field "v"; docs/metadata.md lists the
// keys and their values.
package meta

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults for Config.
const (
	DefaultPrefix         = "/strata"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second
	// DefaultMaxTxnOps matches etcd's default --max-txn-ops.
	DefaultMaxTxnOps = 128
)

// Errors returned by the store. Callers match them with errors.Is. Those
// that clients can see are aliases of pkg/apierr's sentinels, so servers
// translate them to the right gRPC status without a table of their own.
var (
	ErrTopicExists    = apierr.Alias("meta: topic already exists", apierr.ErrTopicExists)
	ErrTopicNotFound  = apierr.Alias("meta: topic not found", apierr.ErrUnknownTopic)
	ErrInvalidTopic   = apierr.Alias("meta: invalid topic", apierr.ErrInvalidTopic)
	ErrPartitionRange = apierr.Alias("meta: partition out of range", apierr.ErrPartitionRange)
	// ErrFenced and ErrOffsetMismatch reach producers as a retriable
	// NOT_OWNER: the partition moved, or this broker's view of it is stale.
	ErrFenced         = apierr.Alias("meta: fenced: partition owner or epoch changed", apierr.ErrNotOwner)
	ErrOffsetMismatch = apierr.Alias("meta: next offset does not match", apierr.ErrNotOwner)

	ErrInvalidEntry     = errors.New("meta: invalid segment entry")
	ErrNotFound         = errors.New("meta: not found")
	ErrConflict         = errors.New("meta: concurrent update, retry")
	ErrUnsupportedValue = errors.New("meta: unsupported value version")
	ErrLeaseLost        = errors.New("meta: lease lost")
)

// Config configures a Store.
type Config struct {
	// Endpoints are etcd client URLs. Required unless Client is set.
	Endpoints []string
	// Client is an existing etcd client to use instead of dialling
	// Endpoints; the Store does not close it.
	Client *clientv3.Client
	// Prefix is the cluster prefix every key lives under; several clusters
	// can share one etcd with different prefixes. Default DefaultPrefix.
	Prefix string
	// DialTimeout bounds connecting to etcd. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds each etcd request that the caller's context
	// does not bound more tightly. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxTxnOps is the most operations one transaction may carry; it must
	// not exceed the etcd server's --max-txn-ops. Default DefaultMaxTxnOps.
	MaxTxnOps int
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil registers none.
	Registerer prometheus.Registerer
	// TLS, if set, secures the connection to etcd: its RootCAs verify
	// etcd's certificate and its client certificate authenticates the
	// Store (see rpc.TLS.ClientConfig). Nil dials plaintext.
	TLS *tls.Config
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Client == nil && len(c.Endpoints) == 0 {
		return errors.New("meta: config: no etcd endpoints")
	}
	for _, e := range c.Endpoints {
		if strings.TrimSpace(e) == "" {
			return errors.New("meta: config: empty etcd endpoint")
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
		return fmt.Errorf("meta: config: prefix %q must start with / and not end with /", c.Prefix)
	}
	if c.DialTimeout < 0 || c.RequestTimeout < 0 {
		return errors.New("meta: config: timeouts must be positive")
	}
	if c.MaxTxnOps < 4 {
		return fmt.Errorf("meta: config: max txn ops %d is below 4", c.MaxTxnOps)
	}
	return nil
}

// Store reads and writes Strata's metadata in etcd. It is safe for
// concurrent use.
type Store struct {
	cfg     Config
	cli     *clientv3.Client
	ownsCli bool
	keys    keys
	log     *slog.Logger
	metrics *metrics
}

// New connects to etcd and returns a Store.
func New(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		cli:     cfg.Client,
		keys:    keys{root: cfg.Prefix},
		log:     cfg.Logger,
		metrics: newMetrics(cfg.Registerer),
	}
	if s.cli == nil {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.Endpoints,
			DialTimeout: cfg.DialTimeout,
			Logger:      nopZap(),
			TLS:         cfg.TLS,
			// Back within a second of etcd: a lease or session waits on it.
			DialOptions: []grpc.DialOption{grpc.WithConnectParams(rpc.DefaultReconnectParams())},
		})
		if err != nil {
			return nil, fmt.Errorf("meta: connect to etcd %v: %w", cfg.Endpoints, err)
		}
		s.cli, s.ownsCli = cli, true
	}
	return s, nil
}

// Client returns the underlying etcd client, for leader election and other
// coordination built on etcd's own primitives.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix returns the cluster prefix.
func (s *Store) Prefix() string { return s.cfg.Prefix }

// Close closes the etcd connection if the Store opened it.
func (s *Store) Close() error {
	if s.ownsCli {
		return s.cli.Close()
	}
	return nil
}

// ctx bounds a request by RequestTimeout unless the caller's context ends
// sooner.
func (s *Store) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.cfg.RequestTimeout)
}

// ElectionPrefix is the etcd prefix coordinators campaign on (with
// go.etcd.io/etcd/client/v3/concurrency); the leader's value names it.
func (s *Store) ElectionPrefix() string { return s.keys.election() }
