// Package lifecycle keeps Strata's storage and metadata bounded as data
// ages: retention drops a partition's oldest segment entries past its
// topic's time or size limit, compaction merges each partition's small
// chunks (which live inside multi-partition flush objects) into large
// entries, reading the chunks of consecutive partitions together, and
// garbage collection deletes the objects no entry references any more.
//
// A Manager runs the three passes. The coordinator leader runs one while it
// leads (it is the cluster's only singleton); every metadata change is
// fenced in etcd (see pkg/meta's Layout), so a second Manager acting on a
// stale view loses with meta.ErrConflict instead of corrupting anything.
// Compaction work (reading chunks, writing merged objects) goes through an
// Executor; the default one runs in the Manager's process, throttled to
// Config.CompactBytesPerSec and one task at a time. docs/lifecycle.md
// describes the rules, the crash-safety argument and measured numbers.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

// Defaults for Config.
const (
	// DefaultInterval is the period of a full pass (retention, compaction,
	// garbage collection).
	DefaultInterval = 10 * time.Second
	// DefaultCompactMinAge keeps the newest entries, which tailing readers
	// use, as the brokers wrote them.
	DefaultCompactMinAge = 10 * time.Second
	// DefaultCompactEntryBytes is the target size of one compacted entry:
	// the unit a fetch reads, so it stays well below the object size.
	DefaultCompactEntryBytes = 4 << 20
	// DefaultCompactObjectBytes is the target size of a compacted object.
	DefaultCompactObjectBytes = 64 << 20
	// DefaultCompactMinInputs is how many small entries make a group worth
	// merging even when they add up to less than half an entry.
	DefaultCompactMinInputs = 16
	// DefaultCompactBytesPerSec throttles compaction's reads, and its
	// writes apart. A task reads, then writes, so compaction merges up to
	// half of it: 16 MiB/s. Sending objects at once, or at twice this
	// rate, took a store on the same two cores from the brokers' PUTs:
	// produce p99 rose from about 37 to 50–60 ms at 20k records/s
	// (docs/benchmarks.md, "Compaction beside produce").
	DefaultCompactBytesPerSec = 32 << 20
	// DefaultGCGrace is how long an unreferenced object stays: a
	// broker's PUT must be committed within it, and a reader holding an
	// old entry finishes within it.
	DefaultGCGrace = 10 * time.Minute
	// DefaultObjectPrefix is where brokers write segment objects; compacted
	// objects go there too, and garbage collection lists it.
	DefaultObjectPrefix = "segments/"
	// DefaultGCMaxDeletes bounds the objects deleted per pass.
	DefaultGCMaxDeletes = 10000
	// gcIntervalShare: by default garbage collection runs every
	// GCGrace/gcIntervalShare (every minute for the default grace), but
	// not more often than the other passes. A collection lists every
	// object and reads every entry's object key, a cost that grows with
	// the bucket and the partition count, while garbage waits GCGrace
	// anyway: collecting every 10 s bought nothing.
	gcIntervalShare = 10
)

// Names of the steps at which Hooks.Step is called. An error from the hook
// aborts the pass right there, as a crash would.
const (
	// StepRetentionTruncate is before the truncating transaction.
	StepRetentionTruncate = "retention:truncate"
	// StepCompactRead is after reading a task's chunks, before the PUT.
	StepCompactRead = "compact:read"
	// StepCompactPut is after the merged object's PUT, before the swap.
	StepCompactPut = "compact:put"
	// StepCompactSwap is after the swap transaction.
	StepCompactSwap = "compact:swap"
	// StepGCList is after listing objects and references, before marking.
	StepGCList = "gc:list"
	// StepGCMark is after writing marks, before deleting.
	StepGCMark = "gc:mark"
	// StepGCDelete is after deleting one batch of objects (one
	// DeleteMany), before their marks go.
	StepGCDelete = "gc:delete"
)

// Hooks lets tests inject failures between the steps of each pass.
type Hooks struct {
	// Step is called at each named step (Step* constants); a non-nil
	// error aborts the pass at that point.
	Step func(ctx context.Context, step string) error
}

// Config configures a Manager.
type Config struct {
	// Meta is the metadata store. Required.
	Meta *meta.Store
	// Store holds the segment objects. Required.
	Store objstore.Store
	// Logger receives logs. Default slog.Default().
	Logger *slog.Logger
	// Registry receives metrics; nil registers none.
	Registry prometheus.Registerer
	// Interval is the period of Run's passes. Default DefaultInterval.
	Interval time.Duration
	// CompactMinAge: entries committed more recently are not compacted.
	// Default DefaultCompactMinAge.
	CompactMinAge time.Duration
	// CompactEntryBytes is the target size of a compacted entry; entries
	// of at least half of it count as large and are left alone. Default
	// DefaultCompactEntryBytes.
	CompactEntryBytes int64
	// CompactObjectBytes is the most chunk bytes one compacted object
	// holds. Default DefaultCompactObjectBytes; at least CompactEntryBytes.
	CompactObjectBytes int64
	// CompactMinInputs is the number of small entries that is merged even
	// when they add up to less than half an entry. Default
	// DefaultCompactMinInputs; at least 2.
	CompactMinInputs int
	// CompactBytesPerSec limits the bytes compaction reads per second,
	// and apart from them the bytes it writes per second; -1 is no limit.
	// While compaction is behind (passes leave small entries for the
	// next) the default executor runs at up to 8 times this
	// (throttle.go). Default DefaultCompactBytesPerSec.
	CompactBytesPerSec int64
	// GCGrace: an object is deleted only when it was written longer ago
	// and has been unreferenced for longer than this. Default
	// DefaultGCGrace.
	GCGrace time.Duration
	// GCMaxDeletes bounds the objects deleted per pass; a pass that
	// leaves more due makes Run collect again at its next Interval.
	// Default DefaultGCMaxDeletes.
	GCMaxDeletes int
	// GCInterval is the period of Run's garbage collections; the other
	// passes run every Interval. Default a tenth of GCGrace (1 min for
	// the default grace), but at least Interval. An unreferenced object
	// is deleted at most 2 × GCGrace + GCInterval after it was written.
	GCInterval time.Duration
	// ObjectPrefix is the object key prefix of segment objects. Default
	// DefaultObjectPrefix.
	ObjectPrefix string
	// Executor runs compaction tasks. Default a LocalExecutor on Store,
	// throttled to CompactBytesPerSec.
	Executor Executor
	// View, if set, is a started view of the metadata whose partition
	// states a pass reads the next offsets from (settled.go); without one
	// each pass lists them from etcd. The coordinator passes its own.
	View *meta.View
	// Hooks, for tests, injects failures between steps. Optional.
	Hooks *Hooks
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.CompactMinAge == 0 {
		c.CompactMinAge = DefaultCompactMinAge
	}
	if c.CompactEntryBytes == 0 {
		c.CompactEntryBytes = DefaultCompactEntryBytes
	}
	if c.CompactObjectBytes == 0 {
		c.CompactObjectBytes = max(DefaultCompactObjectBytes, c.CompactEntryBytes)
	}
	if c.CompactMinInputs == 0 {
		c.CompactMinInputs = DefaultCompactMinInputs
	}
	if c.CompactBytesPerSec == 0 {
		c.CompactBytesPerSec = DefaultCompactBytesPerSec
	}
	if c.GCGrace == 0 {
		c.GCGrace = DefaultGCGrace
	}
	if c.GCMaxDeletes == 0 {
		c.GCMaxDeletes = DefaultGCMaxDeletes
	}
	if c.GCInterval == 0 {
		c.GCInterval = max(c.Interval, c.GCGrace/gcIntervalShare)
	}
	if c.ObjectPrefix == "" {
		c.ObjectPrefix = DefaultObjectPrefix
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
		return errors.New("lifecycle: config: Meta is required")
	case c.Store == nil:
		return errors.New("lifecycle: config: Store is required")
	case c.Interval < 0 || c.CompactMinAge < 0 || c.GCGrace < 0 || c.GCInterval < 0:
		return errors.New("lifecycle: config: durations must not be negative")
	case c.CompactEntryBytes < 1024:
		return fmt.Errorf("lifecycle: config: CompactEntryBytes %d is below 1 KiB", c.CompactEntryBytes)
	case c.CompactObjectBytes < c.CompactEntryBytes:
		return fmt.Errorf("lifecycle: config: CompactObjectBytes %d is below CompactEntryBytes %d", c.CompactObjectBytes, c.CompactEntryBytes)
	case c.CompactMinInputs < 2:
		return fmt.Errorf("lifecycle: config: CompactMinInputs %d is below 2", c.CompactMinInputs)
	case c.CompactBytesPerSec < -1:
		return fmt.Errorf("lifecycle: config: CompactBytesPerSec %d, want -1 or > 0", c.CompactBytesPerSec)
	case c.GCMaxDeletes < 1:
		return fmt.Errorf("lifecycle: config: GCMaxDeletes %d is below 1", c.GCMaxDeletes)
	}
	if err := objstore.ValidateKey(c.ObjectPrefix + "x"); err != nil {
		return fmt.Errorf("lifecycle: config: ObjectPrefix %q: %w", c.ObjectPrefix, err)
	}
	return nil
}

// Manager runs retention, compaction and garbage collection. Its passes
// are meant to run one at a time (Run does so); it is not safe to run two
// passes of one Manager concurrently.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	exec    Executor
	// local is exec when New made it (no Executor in Config); boost is
	// the factor its throttle runs at over CompactBytesPerSec, raised
	// while compaction is behind, and behindPasses counts the passes in a
	// row that left work behind (throttle.go). Only compaction passes
	// touch them, and they run one at a time.
	local        *LocalExecutor
	boost        int64
	behindPasses int
	// gcBehind is set when the last garbage collection left objects due
	// for deletion (beyond GCMaxDeletes): Run collects again at its next
	// pass instead of waiting for GCInterval.
	gcBehind bool
	// settled are the partitions passes found nothing to do in, until
	// they get new entries or time changes the verdict (settled.go).
	settled settledSet
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "lifecycle"), metrics: newMetrics(cfg.Registry), exec: cfg.Executor, boost: 1}
	if m.exec == nil {
		m.local = NewLocalExecutor(cfg.Store, cfg.CompactBytesPerSec)
		m.exec = m.local
		if cfg.CompactBytesPerSec > 0 {
			m.metrics.compactRate.Set(float64(cfg.CompactBytesPerSec))
		}
	}
	return m, nil
}

// Run runs retention and compaction every Interval, and garbage
// collection with them every GCInterval, or at every pass while the last
// collection left objects due (GCStats.Left), until ctx ends. Errors are
// logged, not returned: the next pass starts over from etcd.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	var lastGC time.Time
	for {
		gc := lastGC.IsZero() || time.Since(lastGC) >= m.cfg.GCInterval || m.gcBehind
		if gc {
			lastGC = time.Now()
		}
		if err := m.runPass(ctx, gc); err != nil && ctx.Err() == nil {
			m.log.Warn("lifecycle pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs retention, then compaction, then garbage collection, once.
func (m *Manager) RunOnce(ctx context.Context) error { return m.runPass(ctx, true) }

// runPass runs retention, then compaction, then (if gc) garbage
// collection.
func (m *Manager) runPass(ctx context.Context, gc bool) error {
	_, rerr := m.Retention(ctx)
	_, cerr := m.Compact(ctx)
	var gerr error
	if gc {
		_, gerr = m.CollectGarbage(ctx)
	}
	return errors.Join(rerr, cerr, gerr)
}

// step calls the test hook for a step.
func (m *Manager) step(ctx context.Context, name string) error {
	if m.cfg.Hooks == nil || m.cfg.Hooks.Step == nil {
		return nil
	}
	if err := m.cfg.Hooks.Step(ctx, name); err != nil {
		return fmt.Errorf("lifecycle: aborted at %s: %w", name, err)
	}
	return nil
}

// topics lists every topic.
func (m *Manager) topics(ctx context.Context) ([]meta.Topic, error) {
	topics, _, err := m.cfg.Meta.ListTopics(ctx)
	return topics, err
}
