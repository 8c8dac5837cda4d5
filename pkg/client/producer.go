package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/coalesce"
	"github.com/strata-mq/strata/pkg/segment"
)

// Producer writes records asynchronously, batching them per partition.
//
// Records for one partition collect in a buffer that becomes a batch once
// it holds MaxBatchBytes, or when the oldest record buffered in any
// partition has waited Linger: then every partition's buffer does. Each
// partition has one sender that keeps up to MaxInflight produce requests
// in flight and packs the batches waiting into each request, up to
// MaxBatchBytes. A request that fails
// with a retriable error is sent again, up to MaxAttempts times within
// DeliveryTimeout, after the requests before it are resolved; the
// idempotent producer's sequences make the broker write a partition's
// requests in the order they were built, so records of a partition are
// written in the order they were produced (see sender.go).
//
// Partitioning: a record whose partition the application chose (Partition
// above zero, or SetPartition) goes there; a record with a key goes to
// murmur2(key) mod partitions, as with Kafka's default partitioner; other
// records are spread round-robin. The partition count comes from
// DescribeTopic, cached per topic and refreshed after UNKNOWN_TOPIC or
// PARTITION_OUT_OF_RANGE errors.
//
// A Producer is safe for concurrent use.
type Producer struct {
	c   *Client
	cfg producerConfig
	// pid is the idempotent producer id (random, see newProducerID).
	pid int64

	// ctx is cancelled by Close once the producer has flushed (or given
	// up flushing): it aborts requests and retries in progress.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the goroutines of the producer (senders, lookups).
	wg sync.WaitGroup
	// buffered bounds the bytes of records held (MaxBufferedBytes).
	buffered *semaphore.Weighted

	topicsMu     sync.Mutex
	topics       map[string]*topicState // guarded by topicsMu
	topicsClosed bool                   // guarded by topicsMu; no new lookups after Close

	mu       sync.Mutex
	parts    map[topicPartition]*partBuf // guarded by mu
	closed   bool                        // guarded by mu
	flushing int                         // guarded by mu; >0 makes batches without lingering
	inflight int                         // guarded by mu; records accepted and not completed
	idle     chan struct{}               // guarded by mu; closed when inflight drops to 0
	// lingering are the partitions whose open batch waits for Linger
	// (some may have been sealed since), each once, and lingerTimer, if
	// not nil, seals them all when the oldest has waited Linger. Guarded
	// by mu.
	lingering   []*partBuf
	lingerTimer *time.Timer

	// work hands a request to an idle attempt worker; workers counts the
	// workers started (see goAttempts).
	work    chan *request
	workers atomic.Int32
	// calls gathers the requests of partitions sent together into one
	// ProduceMany call; follow gathers, apart from them, the requests sent
	// while an earlier one of their partition is in flight (see attempt).
	calls, follow *coalesce.Coalescer
}

type topicPartition struct {
	topic     string
	partition int32
}

// topicState is the cached partition count of a topic.
type topicState struct {
	ready chan struct{} // closed once n or err is set
	n     int32
	err   error
	rr    roundRobin
	// expires is when the count is looked up again (MetadataMaxAge after
	// it was): written before ready closes, then under topicsMu.
	expires time.Time
	// refreshing: a lookup after expires is in flight. Guarded by
	// topicsMu.
	refreshing bool
}

// pending is a record waiting for its acknowledgement.
type pending struct {
	rec      *Record
	cb       func(*Record, error)
	size     int
	deadline time.Time
}

// partBuf is the buffer and queue of one partition.
type partBuf struct {
	tp topicPartition
	// wake tells the sender that sealed has batches (capacity 1).
	wake chan struct{}
	// pid and nextSeq are the idempotent producer id and the sequence
	// number of the next record sent to the partition; only the
	// partition's sender goroutine uses them.
	pid     int64
	nextSeq int32

	// The fields below are guarded by Producer.mu.
	cur       []pending   // records of the batch being built
	curBytes  int         // size of cur
	lingering bool        // cur waits for the producer's linger timer
	queued    bool        // b is in Producer.lingering
	sealed    [][]pending // batches waiting for the sender, in order

	// sending is set by the sender while it has requests in flight, so
	// that the linger timer knows which sealed batches go out at once.
	sending atomic.Bool
}

// NewProducer returns a producer. It fails with ErrInvalidRequest if an
// option is out of range.
func (c *Client) NewProducer(opts ...ProducerOpt) (*Producer, error) {
	cfg := defaultProducerConfig()
	for _, o := range opts {
		o.applyProducer(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Calls wait for a connection too (gRPC's wait-for-ready), in case
	// the one seen before the attempt drops.
	many := func(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		return c.api.ProduceMany(ctx, req, grpc.WaitForReady(true))
	}
	single := func(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
		return c.api.Produce(ctx, req, grpc.WaitForReady(true))
	}
	return &Producer{
		calls:    coalesce.New(many, single, 0, 0),
		follow:   coalesce.New(many, single, 0, 0),
		c:        c,
		cfg:      cfg,
		pid:      newProducerID(),
		ctx:      ctx,
		cancel:   cancel,
		buffered: semaphore.NewWeighted(cfg.maxBufferedBytes),
		topics:   map[string]*topicState{},
		parts:    map[topicPartition]*partBuf{},
		work:     make(chan *request),
	}, nil
}

// Produce buffers r for sending and returns; cb (which may be nil) is
// called exactly once with r when r is acknowledged — with r.Partition
// and r.Offset filled in — or has failed. Callbacks of one partition run
// in produce order, on the partition's sender goroutine: they must not
// block for long, and must not call Flush or Close.
//
// ctx bounds only the wait before r is buffered: the partition-count
// lookup and the wait for buffer space (MaxBufferedBytes). Once buffered,
// r is delivered or fails on its own (DeliveryTimeout). r must not be
// modified until cb is called.
//
// Invalid records fail at once (cb is called before Produce returns):
// a nil record or empty topic (ErrInvalidRequest / ErrInvalidTopic), a
// partition out of range (ErrPartitionRange), a record larger than
// MaxBatchBytes (ErrRecordTooLarge), an unknown topic (ErrUnknownTopic), or
// a closed producer (ErrClosed).
func (p *Producer) Produce(ctx context.Context, r *Record, cb func(*Record, error)) {
	if cb == nil {
		cb = func(*Record, error) {}
	}
	if err := p.produce(ctx, r, cb); err != nil {
		cb(r, err)
	}
}

func (p *Producer) produce(ctx context.Context, r *Record, cb func(*Record, error)) error {
	size, err := p.check(r)
	if err != nil {
		return err
	}
	ts, err := p.topic(ctx, r.Topic)
	if err != nil {
		return err
	}
	switch {
	case r.partitionChosen():
		if r.Partition >= ts.n {
			return fmt.Errorf("%w: partition %d of topic %q with %d partitions", ErrPartitionRange, r.Partition, r.Topic, ts.n)
		}
	case r.Key != nil:
		r.Partition = keyPartition(r.Key, ts.n)
	default:
		r.Partition = ts.rr.partition(ts.n)
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	if err := p.buffered.Acquire(ctx, int64(size)); err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.buffered.Release(int64(size))
		return ErrClosed
	}
	p.appendLocked(r, cb, size)
	return nil
}

// check validates r before anything is buffered and returns its size.
func (p *Producer) check(r *Record) (int, error) {
	if r == nil {
		return 0, fmt.Errorf("%w: nil record", ErrInvalidRequest)
	}
	if err := validTopic(r.Topic); err != nil {
		return 0, err
	}
	if r.partitionChosen() && r.Partition < 0 {
		return 0, fmt.Errorf("%w: partition %d is negative", ErrPartitionRange, r.Partition)
	}
	size := r.size()
	if size > p.cfg.maxBatchBytes-segment.BatchHeaderSize {
		return 0, fmt.Errorf("%w: record of about %d bytes exceeds MaxBatchBytes %d", ErrRecordTooLarge, size, p.cfg.maxBatchBytes)
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return 0, ErrClosed
	}
	return size, nil
}

// appendLocked adds r to its partition's open batch, starting the
// partition's send loop on first use, and seals the batch when it is full,
// when lingering is off or a Flush runs, or after Linger. p.mu must be
// held.
func (p *Producer) appendLocked(r *Record, cb func(*Record, error), size int) {
	if p.inflight == 0 {
		p.idle = make(chan struct{})
	}
	p.inflight++
	tp := topicPartition{r.Topic, r.Partition}
	b := p.parts[tp]
	if b == nil {
		b = &partBuf{tp: tp, wake: make(chan struct{}, 1), pid: p.pid}
		p.parts[tp] = b
		p.wg.Add(1)
		go p.sendLoop(b)
	}
	if len(b.cur) > 0 && b.curBytes+size > p.cfg.maxBatchBytes-segment.BatchHeaderSize {
		p.sealLocked(b)
	}
	b.cur = append(b.cur, pending{rec: r, cb: cb, size: size, deadline: time.Now().Add(p.cfg.deliveryTimeout)})
	b.curBytes += size
	switch {
	case p.flushing > 0 || p.cfg.linger == 0 || b.curBytes >= p.cfg.maxBatchBytes-segment.BatchHeaderSize:
		p.sealLocked(b)
	case !b.lingering:
		b.lingering = true
		if !b.queued {
			b.queued = true
			p.lingering = append(p.lingering, b)
		}
		if p.lingerTimer == nil {
			p.lingerTimer = time.AfterFunc(p.cfg.linger, p.lingerExpired)
		}
	}
}

// lingerExpired seals every lingering batch once the oldest has waited
// Linger, as a Kafka producer drains every partition of a broker it sends
// to: the batches of partitions that filled together travel together,
// in one ProduceMany call, and so reach the brokers together. The
// Coalescer is told how many to expect, so the first does not leave
// alone when no call is in flight.
func (p *Producer) lingerExpired() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lingerTimer = nil
	expect := 0
	for _, b := range p.lingering {
		b.queued = false
		if !b.lingering {
			continue // sealed since it began to linger
		}
		if !b.sending.Load() {
			expect++
		}
		p.sealLocked(b)
	}
	clear(p.lingering)
	p.lingering = p.lingering[:0]
	p.calls.Expect(expect)
}

// sealLocked turns b's current records into a batch for the sender.
// p.mu must be held.
func (p *Producer) sealLocked(b *partBuf) {
	if len(b.cur) == 0 {
		return
	}
	b.sealed = append(b.sealed, b.cur)
	b.cur, b.curBytes = nil, 0
	b.lingering = false
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// ProduceSync produces recs and waits until every one is acknowledged or
// failed. It returns nil if all were written, else the records' errors
// joined (errors.Is works on the result). Records carry their partition
// and offset on return.
func (p *Producer) ProduceSync(ctx context.Context, recs ...*Record) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wg.Add(len(recs))
	for _, r := range recs {
		p.Produce(ctx, r, func(_ *Record, err error) {
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Flush sends every buffered record at once, without lingering, and waits
// until all records produced before the call are acknowledged or failed
// (records produced during Flush are waited for too). It returns ctx's
// error if ctx ends first. Flush does not report delivery errors: the
// callbacks do.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.flushing++
	for _, b := range p.parts {
		p.sealLocked(b)
	}
	idle := p.idle
	if p.inflight == 0 {
		idle = nil
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.flushing--
		p.mu.Unlock()
	}()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes the producer (see Flush) and stops it. Records not
// delivered when ctx ends fail with ErrClosed. Produce after Close fails
// with ErrClosed. Close returns ctx's error if the flush did not finish.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	err := p.Flush(ctx)
	p.cancel()
	p.topicsMu.Lock()
	p.topicsClosed = true
	p.topicsMu.Unlock()
	p.wg.Wait()
	return err
}

// topic returns the cached partition count of topic, looking it up with
// DescribeTopic the first time. A failed lookup is not cached. Once the
// count is MetadataMaxAge old it is looked up again in the background
// (refresh) while records keep using it.
func (p *Producer) topic(ctx context.Context, topic string) (*topicState, error) {
	p.topicsMu.Lock()
	if p.topicsClosed {
		p.topicsMu.Unlock()
		return nil, ErrClosed
	}
	ts := p.topics[topic]
	if ts != nil && ts.stale() {
		p.refresh(topic, ts)
	}
	if ts == nil {
		ts = &topicState{ready: make(chan struct{})}
		p.topics[topic] = ts
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			info, err := p.c.DescribeTopic(p.ctx, topic)
			if err == nil && info.Partitions < 1 {
				err = fmt.Errorf("%w: topic %q has %d partitions", ErrUnknownTopic, topic, info.Partitions)
			}
			if err != nil {
				ts.err = err
				p.invalidate(topic, ts)
			} else {
				ts.n = info.Partitions
			}
			ts.expires = time.Now().Add(p.cfg.metadataMaxAge)
			close(ts.ready)
		}()
	}
	p.topicsMu.Unlock()
	select {
	case <-ts.ready:
		return ts, ts.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stale reports whether ts holds a count looked up MetadataMaxAge ago
// and not being looked up again. p.topicsMu must be held.
func (ts *topicState) stale() bool {
	select {
	case <-ts.ready:
		return ts.err == nil && !ts.refreshing && time.Now().After(ts.expires)
	default:
		return false // still looking up
	}
}

// refresh looks topic's partition count up again in the background and
// replaces ts with the new count. A failed lookup, or a smaller count
// (partitions are never removed; a view behind), keeps ts for another
// MetadataMaxAge: a proxy outage must not fail records that have a count
// to go by. p.topicsMu must be held.
func (p *Producer) refresh(topic string, ts *topicState) {
	ts.refreshing = true
	p.wg.Go(func() {
		info, err := p.c.DescribeTopic(p.ctx, topic)
		p.topicsMu.Lock()
		defer p.topicsMu.Unlock()
		ts.refreshing = false
		ts.expires = time.Now().Add(p.cfg.metadataMaxAge)
		if err != nil || info.Partitions <= ts.n || p.topics[topic] != ts {
			return
		}
		fresh := &topicState{ready: make(chan struct{}), n: info.Partitions, expires: ts.expires}
		close(fresh.ready)
		p.topics[topic] = fresh
	})
}

// invalidate drops the cached partition count of topic, if it still is ts.
func (p *Producer) invalidate(topic string, ts *topicState) {
	p.topicsMu.Lock()
	if p.topics[topic] == ts {
		delete(p.topics, topic)
	}
	p.topicsMu.Unlock()
}

// requestSpan bounds how far apart the records of one request were
// produced: a request's records share one fate and its deadline is its
// oldest record's, so after a stall longer than DeliveryTimeout a request
// gathering the whole backlog failed records produced seconds later,
// which had time left, with the oldest. Gathering only records produced
// within DeliveryTimeout/requestSpan of each other costs a record at most
// that share of its time.
const requestSpan = 10

// take removes from b the records of the next request: the first sealed
// batch, and the next ones while they fit in MaxBatchBytes and were
// produced within DeliveryTimeout/requestSpan of the first, merged into
// one batch. Merging keeps the request to one record batch however many
// small batches queued up while requests were in flight (after an outage,
// tens of thousands): proxies bound the batches of a request
// (proxy.DefaultMaxBatchesPerRequest), and one batch per request is what
// Kafka producers send too.
//
// Records whose deadline passed while they queued are taken first, alone,
// with expired set: the caller fails them without sending them, so they
// take no sequences. Sent, they would fail at once and leave a gap in the
// sequences, which costs the requests after them a new producer id and a
// resend; after a long stall that cost recurred for every request of the
// backlog, and the partition fell further behind than it caught up.
func (p *Producer) take(b *partBuf) (batches [][]pending, expired bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if out := takeExpiredLocked(b, time.Now()); len(out) > 0 {
		return [][]pending{out}, true
	}
	n, bytes := 0, 0
	var last time.Time // the latest first deadline the request may take
	for _, batch := range b.sealed {
		size := segment.BatchHeaderSize
		for _, r := range batch {
			size += r.size
		}
		if n > 0 && (bytes+size > p.cfg.maxBatchBytes || batch[0].deadline.After(last)) {
			break
		}
		if n == 0 {
			last = batch[0].deadline.Add(p.cfg.deliveryTimeout / requestSpan)
		}
		n, bytes = n+1, bytes+size
	}
	out := b.sealed[:n:n]
	b.sealed = b.sealed[n:]
	if len(out) > 1 {
		var merged []pending
		for _, batch := range out {
			merged = append(merged, batch...)
		}
		out = [][]pending{merged}
	}
	return out, false
}

// takeExpiredLocked removes and returns the leading sealed records of b
// whose deadline is not after now. Deadlines grow in produce order, so
// they are the oldest. p.mu must be held.
func takeExpiredLocked(b *partBuf, now time.Time) []pending {
	var out []pending
	for len(b.sealed) > 0 {
		batch := b.sealed[0]
		i := 0
		for i < len(batch) && !batch[i].deadline.After(now) {
			i++
		}
		out = append(out, batch[:i]...)
		if i < len(batch) {
			b.sealed[0] = batch[i:]
			break
		}
		b.sealed = b.sealed[1:]
	}
	return out
}

// complete reports the outcome of recs to their callbacks — on success
// with offsets from base on — and releases their buffer space.
func (p *Producer) complete(recs []pending, base int64, err error) {
	var bytes int64
	for i, r := range recs {
		if err == nil {
			r.rec.Offset = base + int64(i)
		}
		r.cb(r.rec, err)
		bytes += int64(r.size)
	}
	p.buffered.Release(bytes)
	p.mu.Lock()
	p.inflight -= len(recs)
	if p.inflight == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	p.mu.Unlock()
}
