package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

// Defaults of EtcdConfig.
const (
	// DefaultEtcdConcurrency is one commit in flight: the floor under a
	// produce with one record in flight (--linger 0 --inflight 1).
	DefaultEtcdConcurrency = 1
	// DefaultEtcdPrefix is the scratch key prefix, under the cluster
	// prefix but outside every key the cluster reads, so no coordinator or
	// broker sees the bench's topic.
	DefaultEtcdPrefix = "bench-etcd"
	// DefaultEtcdRecords is the records each commit's entry covers: one,
	// as with one record in flight.
	DefaultEtcdRecords = 1
	// DefaultEtcdPartitions is the partitions each commit covers: one, as
	// a flush of one record does.
	DefaultEtcdPartitions = 1
	// etcdBroker is the broker ID the bench commits as.
	etcdBroker = "bench-etcd"
	// etcdObjectBytes is the object size the entries name: a 1 KiB record
	// in a segment object.
	etcdObjectBytes = 1200
)

// EtcdConfig configures Etcd, the raw metadata-commit baseline.
type EtcdConfig struct {
	// Concurrency is the number of commits in flight, each to a partition
	// of its own.
	Concurrency int `json:"concurrency"`
	// Records is how many offsets each committed entry covers.
	Records int `json:"records"`
	// Partitions is how many partitions each commit covers, an entry each,
	// in one transaction: a flush of a broker whose records are spread
	// over many partitions.
	Partitions int `json:"partitions"`
	// Duration is the measured time; Warmup runs before it, unmeasured.
	Duration time.Duration `json:"duration"`
	Warmup   time.Duration `json:"warmup"`
	// Prefix is the scratch prefix, below the cluster's etcd prefix, that
	// the bench's topic lives under; it is deleted again unless Keep is
	// set.
	Prefix string `json:"prefix"`
	Keep   bool   `json:"keep"`
	// PutBytes, if positive, PUTs an object of this size before each
	// commit (the one the entry names), under ObjectPrefix; the objects
	// are deleted again unless Keep is set.
	PutBytes     int    `json:"put_bytes"`
	ObjectPrefix string `json:"object_prefix"`
}

// Validate checks the settings.
func (c *EtcdConfig) Validate() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("bench: concurrency must be in [1, 1024], got %d", c.Concurrency)
	case c.Records < 1 || c.Records > 1<<20:
		return fmt.Errorf("bench: records per commit must be in [1, %d], got %d", 1<<20, c.Records)
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("bench: partitions per commit must be in [1, 1024], got %d", c.Partitions)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("bench: duration must be in (0, 24h], got %v", c.Duration)
	case c.Warmup < 0 || c.Warmup > time.Hour:
		return fmt.Errorf("bench: warmup must be in [0, 1h], got %v", c.Warmup)
	case strings.Trim(c.Prefix, "/") == "":
		return errors.New("bench: empty etcd scratch prefix")
	case c.PutBytes < 0 || c.PutBytes > 1<<30:
		return fmt.Errorf("bench: PUT size must be in [0, 1 GiB], got %d", c.PutBytes)
	case c.PutBytes > 0 && c.ObjectPrefix == "":
		return errors.New("bench: empty object key prefix")
	}
	return nil
}

// Etcd runs the broker's flush commit (meta.Store.CommitSegments: the
// fencing compare of owner, epoch, next offset and producer state, then the
// segment entry and the new partition state) from Concurrency committers
// for Warmup + Duration and reports commits per second and their latency:
// what etcd itself takes for the commit every produce acknowledgement
// waits for. mc names the etcd and the cluster prefix; the bench works in
// a fresh scratch prefix below it, on a topic it creates and owns at epoch 1.
// With PutBytes each commit is preceded by a PUT of that many bytes into
// objects, and the latency is the pair's: the floor of a produce with one
// record in flight, without SDK, proxy or broker.
func Etcd(ctx context.Context, mc meta.Config, objects objstore.Store, cfg EtcdConfig, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PutBytes > 0 && objects == nil {
		return nil, errors.New("bench: PUTs before the commits need an object store")
	}
	if cfg.PutBytes == 0 {
		objects = nil
	}
	if mc.Prefix == "" {
		mc.Prefix = meta.DefaultPrefix
	}
	mc.Prefix = fmt.Sprintf("%s/%s/%d", strings.TrimSuffix(mc.Prefix, "/"), strings.Trim(cfg.Prefix, "/"), time.Now().UnixNano())
	store, err := meta.New(mc)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	top, err := store.CreateTopic(ctx, meta.Topic{Name: "bench", Partitions: int32(cfg.Concurrency * cfg.Partitions), RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		return nil, fmt.Errorf("bench: creating the scratch topic under %s: %w", mc.Prefix, err)
	}
	s, err := runEtcd(ctx, store, objects, top.ID, cfg, progress)
	if !cfg.Keep {
		dctx, cancel := afterRun(ctx)
		defer cancel()
		if _, derr := store.Client().Delete(dctx, mc.Prefix+"/", clientv3.WithPrefix()); derr != nil && err == nil {
			err = fmt.Errorf("bench: deleting the scratch keys under %s: %w", mc.Prefix, derr)
		}
	}
	return s, err
}

// runEtcd takes the scratch topic's partitions and runs the committers.
func runEtcd(ctx context.Context, store *meta.Store, objects objstore.Store, topicID string, cfg EtcdConfig, progress io.Writer) (*Summary, error) {
	ws := make([]*etcdWorker, cfg.Concurrency)
	for i := range ws {
		w := &etcdWorker{meta: store, objects: objects, cfg: cfg, topicID: topicID}
		for j := range cfg.Partitions {
			p := int32(i*cfg.Partitions + j)
			st, err := store.GetPartition(ctx, topicID, p)
			if err == nil {
				st, err = store.AssignPartition(ctx, st, etcdBroker)
			}
			if err != nil {
				return nil, fmt.Errorf("bench: taking the scratch partition %d: %w", p, err)
			}
			w.parts = append(w.parts, p)
			w.epoch = st.Epoch
		}
		ws[i] = w
	}
	rec := newRecorder("etcd", "commits", progress)
	stopTicker := rec.startTicker(time.Second)
	defer stopTicker()
	runCtx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration)
	defer cancel()
	if cfg.Warmup > 0 {
		warm := time.AfterFunc(cfg.Warmup, rec.restart)
		defer warm.Stop()
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { w.run(runCtx, rec) })
	}
	wg.Wait()
	stopTicker()
	s := rec.summary(time.Now(), cfg)
	if objects == nil || cfg.Keep {
		return s, nil
	}
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.keys...)
	}
	dctx, cancel := afterRun(ctx)
	defer cancel()
	if err := deleteAll(dctx, objects, keys, cfg.Concurrency); err != nil {
		return s, fmt.Errorf("bench: deleting the objects written: %w", err)
	}
	return s, nil
}

// etcdWorker commits entries of its partitions back to back, one to each
// partition per commit, carrying one idempotent producer's state as the
// SDK's default producer does; with PutBytes it first PUTs the object the
// entries name, as a flush does.
type etcdWorker struct {
	meta    *meta.Store
	objects objstore.Store // nil: commit only
	cfg     EtcdConfig
	topicID string
	parts   []int32
	epoch   int64    // every partition's: each was assigned once
	keys    []string // objects written
}

// run commits until ctx ends. A failure ends the loop: the next offset is
// then unknown.
func (w *etcdWorker) run(ctx context.Context, rec *recorder) {
	const pid = 1
	data := make([]byte, w.cfg.PutBytes)
	_, _ = rand.Read(data)
	n := int64(w.cfg.Records)
	var before map[int64]meta.ProducerState
	for next := int64(0); ctx.Err() == nil; next += n {
		last := next + n - 1
		after := map[int64]meta.ProducerState{pid: {FirstSeq: int32(next), LastSeq: int32(last), FirstOffset: next, LastOffset: last}}
		now := time.Now()
		key := fmt.Sprintf("%s%d-%s-%d-%d", w.cfg.ObjectPrefix, now.UnixMilli(), etcdBroker, w.parts[0], next)
		size := int64(etcdObjectBytes)
		var err error
		if w.objects != nil {
			size = int64(len(data))
			if err = w.objects.Put(ctx, key, data); err == nil {
				w.keys = append(w.keys, key)
			}
		}
		if err == nil {
			err = w.commit(ctx, key, size, next, last, before, after)
		}
		switch {
		case err == nil:
			rec.done(time.Since(now), len(data))
		case ctx.Err() != nil: // cut off by the end of the run
			return
		default:
			rec.failed(err)
			return
		}
		before = after
	}
}

// commit commits offsets first..last of every partition of w, in the
// object key of size bytes, in one call, and returns the first error.
func (w *etcdWorker) commit(ctx context.Context, key string, size, first, last int64, before, after map[int64]meta.ProducerState) error {
	now := time.Now().UnixMilli()
	cs := make([]meta.Commit, len(w.parts))
	for i, p := range w.parts {
		cs[i] = meta.Commit{Broker: etcdBroker, Epoch: w.epoch, Producers: before, NewProducers: after, Entry: meta.SegmentEntry{
			TopicID: w.topicID, Partition: p,
			ObjectKey: key, ObjectSize: size, Pos: int64(i) * size / int64(len(w.parts)), Len: max(size/int64(len(w.parts))-100, 1),
			FirstOffset: first, LastOffset: last,
			MinTimestamp: now, MaxTimestamp: now, CreatedMs: now,
		}}
	}
	for _, err := range w.meta.CommitSegments(ctx, cs) {
		if err != nil {
			return err
		}
	}
	return nil
}
