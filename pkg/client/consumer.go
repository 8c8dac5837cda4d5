package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/segment"
)

// Special offsets for ListOffsets (strata.v1.OffsetSpec).
const (
	// OffsetLatest asks for the high watermark.
	OffsetLatest int64 = -1
	// OffsetEarliest asks for the first readable offset (the log start).
	OffsetEarliest int64 = -2
)

// Offsets is the answer of ListOffsets.
type Offsets struct {
	// Offset is the offset asked for: the log start, the high watermark, or
	// the first offset whose timestamp is at or after the time asked for
	// (the high watermark if there is none).
	Offset         int64
	HighWatermark  int64
	LogStartOffset int64
}

// ListOffsets resolves OffsetEarliest, OffsetLatest or a Unix time in
// milliseconds to an offset of a partition.
func (c *Client) ListOffsets(ctx context.Context, topic string, partition int32, timestampMs int64) (Offsets, error) {
	if err := validTopic(topic); err != nil {
		return Offsets{}, err
	}
	if partition < 0 {
		return Offsets{}, fmt.Errorf("%w: partition %d is negative", ErrPartitionRange, partition)
	}
	if timestampMs < OffsetEarliest {
		return Offsets{}, fmt.Errorf("%w: timestamp %d", ErrInvalidRequest, timestampMs)
	}
	resp, err := call(ctx, c, c.api.ListOffsets, &stratav1.ListOffsetsRequest{Topic: topic, Partition: partition, TimestampMs: timestampMs})
	if err != nil {
		return Offsets{}, err
	}
	return Offsets{Offset: resp.GetOffset(), HighWatermark: resp.GetHighWatermark(), LogStartOffset: resp.GetLogStartOffset()}, nil
}

// Consumer reads records of the partitions assigned to it.
//
// Each assigned partition has at most one fetch in flight; a fetch at the
// end of a partition waits on the proxy up to FetchMaxWait for new
// records. Poll starts the fetches and returns what has arrived, so one
// response per partition is read ahead while the application processes
// the previous one.
//
// A Consumer is safe for concurrent use, but Poll is meant to be called
// from one goroutine. Consumer groups (subscribe, commit) are not
// implemented yet; assign partitions explicitly.
type Consumer struct {
	c   *Client
	cfg consumerConfig

	// ctx is cancelled by Close; it stops the fetches.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts fetch goroutines.
	wg sync.WaitGroup
	// notify is signalled (capacity 1) when results gets an entry.
	notify chan struct{}

	mu      sync.Mutex
	topics  map[string]*topicAssignment // guarded by mu
	parts   map[topicPartition]*cpart   // guarded by mu
	order   []topicPartition            // guarded by mu; parts in assignment order
	results []fetchResult               // guarded by mu; at most one per partition
	closed  bool                        // guarded by mu
}

// topicAssignment is what Assign asked for a topic.
type topicAssignment struct {
	// all is true while "every partition" waits for the partition count.
	all bool
	// start is the position of partitions found later: OffsetEarliest or
	// OffsetLatest.
	start int64
}

// cpart is the consumer state of one partition. Guarded by Consumer.mu.
type cpart struct {
	// pos is the offset of the next record to return, or OffsetEarliest /
	// OffsetLatest until the first fetch resolves it.
	pos int64
	// gen is incremented by every seek: results of fetches started before
	// are dropped.
	gen uint64
	// fetching is true while a fetch of the partition is in flight or its
	// result waits in results.
	fetching bool
	// stopped is true after a non-retriable error, until the next seek.
	stopped bool
}

type fetchResult struct {
	tp topicPartition
	// cp is the partition state the fetch was for; a result whose cp is no
	// longer assigned (unassign) is dropped.
	cp  *cpart
	gen uint64
	// from is the offset fetched (pos, resolved).
	from int64
	// reset is set when the position was out of range and OffsetReset
	// moved it to from.
	reset   bool
	batches []byte
	err     error
}

// NewConsumer returns a consumer with nothing assigned. It fails with
// ErrInvalidRequest if an option is out of range.
func (c *Client) NewConsumer(opts ...ConsumerOpt) (*Consumer, error) {
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o.applyConsumer(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Consumer{
		c:      c,
		cfg:    cfg,
		ctx:    ctx,
		cancel: cancel,
		notify: make(chan struct{}, 1),
		topics: map[string]*topicAssignment{},
		parts:  map[topicPartition]*cpart{},
	}, nil
}

func (c *Consumer) startSpec() int64 {
	if c.cfg.start == StartLatest {
		return OffsetLatest
	}
	return OffsetEarliest
}

// Assign adds partitions of topic to the consumer; with no partitions it
// adds all of them (found with DescribeTopic on the next Poll). Newly
// assigned partitions start as ConsumeStart says; partitions already
// assigned keep their position.
func (c *Consumer) Assign(topic string, partitions ...int32) error {
	if err := validPartitions(topic, partitions); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	ta := c.assignmentLocked(topic)
	if len(partitions) == 0 {
		ta.all = true
	}
	for _, p := range partitions {
		c.addLocked(topicPartition{topic, p}, ta.start)
	}
	return nil
}

// validPartitions checks the topic and partitions Assign and the seeks
// are given.
func validPartitions(topic string, partitions []int32) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	for _, p := range partitions {
		if p < 0 {
			return fmt.Errorf("%w: partition %d is negative", ErrPartitionRange, p)
		}
	}
	return nil
}

// assignmentLocked returns topic's assignment, making one that starts as
// ConsumeStart says if the topic has none. c.mu must be held.
func (c *Consumer) assignmentLocked(topic string) *topicAssignment {
	ta := c.topics[topic]
	if ta == nil {
		ta = &topicAssignment{start: c.startSpec()}
		c.topics[topic] = ta
	}
	return ta
}

// addLocked assigns tp at pos unless it is assigned. c.mu must be held.
func (c *Consumer) addLocked(tp topicPartition, pos int64) *cpart {
	if cp := c.parts[tp]; cp != nil {
		return cp
	}
	cp := &cpart{pos: pos}
	c.parts[tp] = cp
	c.order = append(c.order, tp)
	return cp
}

// Seek sets the position of a partition — the offset of the next record
// Poll returns — assigning the partition if needed. Records of fetches
// started before are dropped.
func (c *Consumer) Seek(topic string, partition int32, offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: offset %d is negative", ErrOffsetOutOfRange, offset)
	}
	return c.seek(topic, []int32{partition}, offset)
}

// SeekToBeginning moves partitions of topic (all assigned ones if none are
// given) to their first readable offset, resolved on the next fetch.
func (c *Consumer) SeekToBeginning(topic string, partitions ...int32) error {
	return c.seek(topic, partitions, OffsetEarliest)
}

// SeekToEnd moves partitions of topic (all assigned ones if none are
// given) to their high watermark, resolved on the next fetch: only
// records produced after it are read.
func (c *Consumer) SeekToEnd(topic string, partitions ...int32) error {
	return c.seek(topic, partitions, OffsetLatest)
}

// SeekToTime moves a partition to the first record whose timestamp is at
// or after t (the high watermark if there is none), with ListOffsets.
func (c *Consumer) SeekToTime(ctx context.Context, topic string, partition int32, t time.Time) error {
	off, err := c.c.ListOffsets(ctx, topic, partition, max(t.UnixMilli(), 0))
	if err != nil {
		return err
	}
	return c.Seek(topic, partition, off.Offset)
}

func (c *Consumer) seek(topic string, partitions []int32, pos int64) error {
	if err := validPartitions(topic, partitions); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.topics[topic] == nil && len(partitions) == 0 {
		return fmt.Errorf("%w: topic %q is not assigned", ErrInvalidRequest, topic)
	}
	ta := c.assignmentLocked(topic)
	if len(partitions) == 0 {
		// Every assigned partition, and those still to be found.
		ta.start = pos
		for _, tp := range c.order {
			if tp.topic == topic {
				partitions = append(partitions, tp.partition)
			}
		}
	}
	for _, p := range partitions {
		cp := c.addLocked(topicPartition{topic, p}, pos)
		cp.pos = pos
		cp.gen++
		cp.stopped = false
	}
	return nil
}

// Position returns the offset of the next record Poll will return for a
// partition. ok is false if the partition is not assigned or its start
// (beginning or end) is not resolved yet.
func (c *Consumer) Position(topic string, partition int32) (offset int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := c.parts[topicPartition{topic, partition}]
	if cp == nil || cp.pos < 0 {
		return 0, false
	}
	return cp.pos, true
}

// FetchError is a non-retriable failure of one partition's fetch, as Poll
// returns it. It unwraps to the cause (ErrUnknownTopic,
// ErrOffsetOutOfRange, ErrCorruptBatch, …). The partition is not fetched
// again until it is moved with a Seek.
type FetchError struct {
	Topic     string
	Partition int32
	Err       error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Poll returns the records that have arrived, waiting until there is at
// least one or ctx ends (then it returns ctx's error). Records of a
// partition come in offset order, starting at its position, which Poll
// advances past them.
//
// Retriable failures are retried in the background. A non-retriable one
// is returned once, as a *FetchError (joined with others, and possibly
// together with records of other partitions); its partition stops until
// the next Seek. Assigning all partitions of an unknown topic fails with
// ErrUnknownTopic.
func (c *Consumer) Poll(ctx context.Context) ([]*Record, error) {
	if err := c.resolveTopics(ctx); err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		recs, err := c.takeResultsLocked()
		c.startFetchesLocked()
		c.mu.Unlock()
		if len(recs) > 0 || err != nil {
			return recs, err
		}
		select {
		case <-c.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// resolveTopics finds the partitions of topics assigned as a whole.
func (c *Consumer) resolveTopics(ctx context.Context) error {
	c.mu.Lock()
	var todo []string
	for name, ta := range c.topics {
		if ta.all {
			todo = append(todo, name)
		}
	}
	c.mu.Unlock()
	slices.Sort(todo)
	for _, name := range todo {
		info, err := c.c.DescribeTopic(ctx, name)
		if err != nil {
			return err
		}
		c.mu.Lock()
		ta := c.topics[name]
		if ta != nil && ta.all {
			ta.all = false
			for p := range info.Partitions {
				c.addLocked(topicPartition{name, p}, ta.start)
			}
		}
		c.mu.Unlock()
	}
	return nil
}

// startFetchesLocked starts a fetch for every partition without one.
// c.mu must be held.
func (c *Consumer) startFetchesLocked() {
	for _, tp := range c.order {
		cp := c.parts[tp]
		if cp.fetching || cp.stopped {
			continue
		}
		cp.fetching = true
		c.wg.Add(1)
		go c.fetch(tp, cp, cp.gen, cp.pos)
	}
}

// takeResultsLocked turns the arrived fetch results into records and
// advances positions. c.mu must be held.
func (c *Consumer) takeResultsLocked() ([]*Record, error) {
	var (
		out  []*Record
		errs []error
	)
	results := c.results
	c.results = nil
	for _, res := range results {
		cp := c.parts[res.tp]
		if cp != res.cp {
			continue // unassigned meanwhile
		}
		cp.fetching = false
		if res.gen != cp.gen {
			continue // a seek happened meanwhile
		}
		if res.err != nil {
			cp.stopped = true
			errs = append(errs, &FetchError{Topic: res.tp.topic, Partition: res.tp.partition, Err: res.err})
			continue
		}
		if cp.pos < 0 || res.reset {
			cp.pos = res.from
		}
		recs, next, err := decodeFrom(res.tp, res.batches, cp.pos)
		cp.pos = max(cp.pos, next)
		out = append(out, recs...)
		if err != nil {
			cp.stopped = true
			errs = append(errs, &FetchError{Topic: res.tp.topic, Partition: res.tp.partition, Err: err})
		}
	}
	return out, errors.Join(errs...)
}

// decodeFrom decodes the record batches b of tp and returns the records at
// or after offset from, and the offset to read next: past the last batch
// it decoded or skipped. A fetch may start in the middle of a batch.
// Control batches (Kafka transaction markers) are skipped: they are not
// records.
func decodeFrom(tp topicPartition, b []byte, from int64) (_ []*Record, next int64, _ error) {
	hs, splitErr := segment.SplitBatches(b)
	var out []*Record
	pos := 0
	next = from
	for _, h := range hs {
		size := h.Size()
		batch := b[pos : pos+size]
		pos += size
		if h.LastOffset() < from {
			continue
		}
		if h.Attributes&segment.AttrControl != 0 {
			next = h.LastOffset() + 1
			continue
		}
		recs, err := segment.DecodeRecords(batch)
		if err != nil {
			return out, next, fmt.Errorf("%w: batch at offset %d: %w", ErrCorruptBatch, h.BaseOffset, err)
		}
		for i := range recs {
			if recs[i].Offset >= from {
				out = append(out, fromSegment(tp.topic, tp.partition, &recs[i]))
			}
		}
		next = h.LastOffset() + 1
	}
	if splitErr != nil {
		return out, next, fmt.Errorf("%w: %w", ErrCorruptBatch, splitErr)
	}
	return out, next, nil
}

// fetch fetches tp from pos (resolving OffsetEarliest/OffsetLatest first),
// retrying retriable failures, and hands the result to Poll.
func (c *Consumer) fetch(tp topicPartition, cp *cpart, gen uint64, pos int64) {
	defer c.wg.Done()
	res := fetchResult{tp: tp, cp: cp, gen: gen}
	for attempt := 1; ; attempt++ {
		var err error
		if pos < 0 {
			var off Offsets
			off, err = c.c.ListOffsets(c.ctx, tp.topic, tp.partition, pos)
			if err == nil {
				pos = off.Offset
			}
		}
		if err == nil {
			timeout := c.c.cfg.requestTimeout + c.cfg.fetchMaxWait
			ctx, cancel := context.WithTimeout(c.ctx, timeout)
			var resp *stratav1.FetchResponse
			resp, err = c.c.api.Fetch(ctx, &stratav1.FetchRequest{
				Topic:     tp.topic,
				Partition: tp.partition,
				Offset:    pos,
				MaxBytes:  c.cfg.fetchMaxBytes,
				MaxWaitMs: int32(c.cfg.fetchMaxWait.Milliseconds()),
				MinBytes:  1,

				ReadUncommitted: c.cfg.readUncommitted,
			})
			cancel()
			if err == nil {
				res.from, res.batches = pos, resp.GetBatches()
				break
			}
			err = apierr.FromStatus(err)
		}
		if c.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrOffsetOutOfRange) && c.cfg.reset != ResetNone {
			// Start again from the end the policy names; ListOffsets
			// resolves it on the next attempt.
			pos, res.reset = OffsetEarliest, true
			if c.cfg.reset == ResetLatest {
				pos = OffsetLatest
			}
		} else if !apierr.Retriable(err) {
			res.err = err
			break
		}
		if backoff.Sleep(c.ctx, backoff.Delay(c.c.cfg.backoffMin, c.c.cfg.backoffMax, attempt)) != nil {
			return
		}
	}
	c.mu.Lock()
	c.results = append(c.results, res)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// unassign removes partitions: they are no longer fetched, and records
// fetched but not yet returned by Poll are dropped. Consumer groups use it
// to revoke partitions.
func (c *Consumer) unassign(tps []topicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tp := range tps {
		delete(c.parts, tp)
	}
	c.order = slices.DeleteFunc(c.order, func(tp topicPartition) bool { return c.parts[tp] == nil })
}

// wake makes a waiting Poll look at its partitions again, after partitions
// were assigned from another goroutine.
func (c *Consumer) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Close stops the consumer's fetches. Poll after Close fails with
// ErrClosed.
func (c *Consumer) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}
