// Package txn owns the transaction coordinator for Kafka transactional
// producers (KIP-98): it hands a transactional id its producer id and
// epoch, records the partitions and consumer groups of its transaction,
// and ends the transaction by having an end-transaction marker written to
// every partition (and, on commit, the staged group offsets committed).
//
// The coordinator keeps no state of its own: each transactional id is one
// etcd key (meta.TxnState), changed only by compare-and-swap on its
// ModRevision, so every proxy runs a Coordinator side by side with no
// leader. A decision is written (prepare_commit, prepare_abort) before its
// markers, so a proxy that dies in between leaves a transaction any other
// proxy's Run finishes. Run also aborts transactions past their timeout,
// bumping the producer's epoch to fence it (KIP-588 lets it recover).
// docs/transactions.md describes the states and the rules.
package txn

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/meta"
)

// Partition names one partition of a transaction.
type Partition = meta.TxnPartition

// Markers writes end-transaction markers (the proxy's Kafka front end
// implements it over its Router).
type Markers interface {
	// WriteMarkers appends a commit or abort marker of producer pid at epoch to each
	// partition and returns once every one is committed, or the first error. A
	// partition whose topic no longer exists counts as written.
	WriteMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []Partition) error
}

// Defaults for Config.
const (
	// DefaultMaxTimeout is the longest transaction timeout a producer may
	// ask for: 15 minutes, Kafka's transaction.max.timeout.ms. An open
	// transaction holds back every read_committed consumer of its
	// partitions, so a hung producer must not hold them longer.
	DefaultMaxTimeout = 15 * time.Minute
	// DefaultCheckInterval is how often Run looks for transactions past
	// their timeout or left half-done. Timeouts are at least a second in
	// practice (Kafka clients default to 60 s), so a second's lateness
	// does not matter, and a pass over the in-memory copy is cheap.
	DefaultCheckInterval = time.Second
	// DefaultMaxPartitions bounds the partitions of one transaction: with
	// ordinary topic names 10,000 partitions keep its state well inside
	// meta.MaxTxnStateBytes, and each partition costs a marker at its end.
	DefaultMaxPartitions = 10000
	// DefaultRecoverAfter is how long a decided transaction (prepare_*)
	// may wait for its markers before Run finishes it: the proxy that
	// decided normally writes them within a produce round trip, so after
	// a few seconds it is presumed dead. Finishing early only writes the
	// markers twice, which is harmless.
	DefaultRecoverAfter = 5 * time.Second
	// DefaultIDExpiration is how long a transactional id may go unused,
	// with no transaction open, before Run deletes it: 7 days, Kafka's
	// transactional.id.expiration.ms. Applications that make new ids on
	// every start (Kafka Streams' exactly-once) would otherwise grow the
	// ids in etcd without bound; a producer coming back after it simply
	// gets a new producer id from InitProducerId.
	DefaultIDExpiration = 7 * 24 * time.Hour
)

// Config configures a Coordinator.
type Config struct {
	// Meta is the metadata store holding the transactions. Required.
	Meta *meta.Store
	// Markers writes end-transaction markers. Required.
	Markers Markers
	// Logger receives logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the coordinator's metrics; nil registers none.
	Registry prometheus.Registerer
	// MaxTimeout is the longest transaction timeout InitProducer accepts.
	// Default DefaultMaxTimeout.
	MaxTimeout time.Duration
	// CheckInterval is how often Run looks for timed-out and half-done
	// transactions. Default DefaultCheckInterval.
	CheckInterval time.Duration
	// MaxPartitions bounds the partitions of one transaction, and the
	// offsets it stages. Default DefaultMaxPartitions.
	MaxPartitions int
	// RecoverAfter is how long a transaction stays decided (prepare_*)
	// before Run writes its markers in place of the proxy that decided.
	// Default DefaultRecoverAfter.
	RecoverAfter time.Duration
	// IDExpiration is how long a transactional id with no transaction
	// open may go unwritten before Run deletes it. Default
	// DefaultIDExpiration.
	IDExpiration time.Duration
	// Now returns the current time; tests move it. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxTimeout == 0 {
		c.MaxTimeout = DefaultMaxTimeout
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.MaxPartitions == 0 {
		c.MaxPartitions = DefaultMaxPartitions
	}
	if c.RecoverAfter == 0 {
		c.RecoverAfter = DefaultRecoverAfter
	}
	if c.IDExpiration == 0 {
		c.IDExpiration = DefaultIDExpiration
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.Meta == nil:
		return errors.New("txn: config: Meta is required")
	case c.Markers == nil:
		return errors.New("txn: config: Markers is required")
	case c.MaxTimeout < time.Millisecond || c.MaxTimeout > math.MaxInt32*time.Millisecond:
		return fmt.Errorf("txn: config: MaxTimeout %v, want 1 ms to %v", c.MaxTimeout, math.MaxInt32*time.Millisecond)
	case c.CheckInterval < 0 || c.RecoverAfter < 0 || c.IDExpiration < 0:
		return errors.New("txn: config: durations must not be negative")
	case c.MaxPartitions < 1:
		return fmt.Errorf("txn: config: MaxPartitions %d is below 1", c.MaxPartitions)
	}
	return nil
}

// Coordinator is the transaction coordinator. Its methods are safe for
// concurrent use, also with other Coordinators on the same etcd.
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	mu sync.RWMutex // guards the fields below
	// byID is the in-memory copy of every transactional id's state:
	// filled by Run's watch, and by this Coordinator's own reads and
	// writes. Verify answers from it.
	byID map[string]*entry
	// byPID maps producer ids to transactional ids.
	byPID map[int64]string
	// loaded is set once Run's first listing filled byID.
	loaded bool
}

// entry is one transactional id's state in the in-memory copy.
type entry struct {
	st meta.TxnState
	// parts indexes st.Partitions for Verify.
	parts map[meta.PartitionID]struct{}
}

// New returns a Coordinator; Run keeps its copy of the states current and
// finishes or times out transactions.
func New(cfg Config) (*Coordinator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Coordinator{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "txn"),
		metrics: newMetrics(cfg.Registry),
		byID:    map[string]*entry{},
		byPID:   map[int64]string{},
	}, nil
}

// maxEpoch is the last epoch handed to a producer. Kafka keeps
// math.MaxInt16 for the coordinator, so that it can always fence a
// producer with a higher epoch; past maxEpoch a producer gets a new id.
const maxEpoch = math.MaxInt16 - 1

// newProducerID returns a random non-negative 63-bit producer id, as the
// SDK's and the Kafka front end's idempotent producers have: no counter
// to keep, and meta.CreateTxn refuses an id already taken.
func newProducerID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

func (c *Coordinator) nowMs() int64 { return c.cfg.Now().UnixMilli() }
