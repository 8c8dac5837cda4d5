package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// ConsumeConfig configures Consume.
type ConsumeConfig struct {
	// Server is the proxy address: its gRPC address, or its Kafka
	// address with ProtocolKafka.
	Server string `json:"server"`
	// Protocol is ProtocolGRPC (the default when empty) or ProtocolKafka.
	Protocol string `json:"protocol,omitempty"`
	// Topic is read from the beginning of every partition up to the high
	// watermarks it had when the run started.
	Topic string `json:"topic"`
	// FetchMaxBytes is the consumer's per-partition fetch budget (0: the
	// SDK default).
	FetchMaxBytes int32 `json:"fetch_max_bytes"`
	// Duration bounds the run; it ends earlier when the topic is read.
	Duration time.Duration `json:"duration"`
}

// Validate checks the settings.
func (c *ConsumeConfig) Validate() error {
	switch {
	case c.Server == "":
		return errors.New("bench: no server address")
	case c.Protocol != "" && c.Protocol != ProtocolGRPC && c.Protocol != ProtocolKafka:
		return fmt.Errorf("bench: protocol %q: want %s or %s", c.Protocol, ProtocolGRPC, ProtocolKafka)
	case c.Topic == "":
		return errors.New("bench: no topic")
	case c.FetchMaxBytes < 0:
		return fmt.Errorf("bench: fetch max bytes must not be negative, got %d", c.FetchMaxBytes)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("bench: duration must be in (0, 24h], got %v", c.Duration)
	}
	return nil
}

// Consume reads a topic from the beginning to the high watermarks it had
// at the start (or until Duration passes) and reports records per second;
// the latency is that of each Poll call.
func Consume(ctx context.Context, cfg ConsumeConfig, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Protocol == ProtocolKafka {
		return consumeKafka(ctx, cfg, progress)
	}
	cl, err := client.New(cfg.Server)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := ensureTopic(actx, cl, cfg.Topic, 0)
	if err != nil {
		return nil, err
	}
	remaining, err := highWatermarks(actx, cl, cfg.Topic, n)
	if err != nil {
		return nil, err
	}
	if len(remaining) == 0 {
		return nil, fmt.Errorf("bench: topic %q is empty", cfg.Topic)
	}
	c, err := consumeFromStart(cl, cfg, remaining)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	rec := newRecorder("consume", "records", progress)
	stopTicker := rec.startTicker(time.Second)
	defer stopTicker()
	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Duration)
	defer cancelRun()
	if err := readUntil(runCtx, c, remaining, rec); err != nil {
		return nil, err
	}
	stopTicker()
	return rec.summary(time.Now(), cfg), nil
}

// highWatermarks returns the high watermark of each of a topic's n
// partitions that holds records.
func highWatermarks(ctx context.Context, cl *client.Client, topic string, n int32) (map[int32]int64, error) {
	hw := map[int32]int64{}
	for p := range n {
		o, err := cl.ListOffsets(ctx, topic, p, client.OffsetLatest)
		if err != nil {
			return nil, fmt.Errorf("bench: offsets of partition %d: %w", p, err)
		}
		if o.Offset > 0 {
			hw[p] = o.Offset
		}
	}
	return hw, nil
}

// consumeFromStart returns a consumer assigned the partitions of parts,
// each read from its beginning.
func consumeFromStart(cl *client.Client, cfg ConsumeConfig, parts map[int32]int64) (*client.Consumer, error) {
	opts := []client.ConsumerOpt{client.ConsumeStart(client.StartEarliest)}
	if cfg.FetchMaxBytes > 0 {
		opts = append(opts, client.FetchMaxBytes(cfg.FetchMaxBytes))
	}
	c, err := cl.NewConsumer(opts...)
	if err != nil {
		return nil, err
	}
	for p := range parts {
		if err := c.Assign(cfg.Topic, p); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.SeekToBeginning(cfg.Topic); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// readUntil polls until every partition of remaining (partition → high
// watermark still to reach) has been read up to its high watermark, or ctx
// ends; it fails after more than 100 failed polls.
func readUntil(ctx context.Context, c *client.Consumer, remaining map[int32]int64, rec *recorder) error {
	for len(remaining) > 0 {
		t := time.Now()
		recs, err := c.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		rec.latency(time.Since(t))
		if err != nil {
			rec.failed(err)
			if rec.errCount() > 100 {
				return fmt.Errorf("bench: consuming: %w", err)
			}
		}
		nbytes := 0
		for _, r := range recs {
			nbytes += len(r.Value) + len(r.Key)
			if hw, ok := remaining[r.Partition]; ok && r.Offset+1 >= hw {
				delete(remaining, r.Partition)
			}
		}
		rec.batch(len(recs), nbytes)
	}
	return nil
}

// E2E produces as Produce does while one consumer reads the topic from
// its end, and reports consumed records per second and the latency from
// Produce to Poll returning the record (the send time travels in the
// first 8 bytes of each value), with the acknowledgement latency of the
// same records. With ProtocolKafka both sides are franz-go clients.
func E2E(ctx context.Context, cfg ProduceConfig, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rec := newRecorder("e2e", "records", progress)
	l, err := startLoad(ctx, cfg, true, rec)
	if err != nil {
		return nil, err
	}
	defer l.close(ctx)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t, err := startTail(actx, l, cfg)
	if err != nil {
		return nil, err
	}
	defer t.close()

	r := &e2eReader{poll: t.poll, rec: rec, l: l, caughtUp: make(chan struct{})}
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var wg sync.WaitGroup
	wg.Go(func() { r.run(cctx) })
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	// Wait for the consumer to read every acknowledged record. (Once run
	// has returned, finished is set, so either this check or the
	// consumer's after its next poll sees the last record.)
	select {
	case <-r.caughtUp:
	case <-alreadyRead(r.consumed.Load() >= l.acked.Load()):
	case <-time.After(flushTimeout):
		rec.failed(fmt.Errorf("bench: consumer read %d of %d acknowledged records", r.consumed.Load(), l.acked.Load()))
	case <-ctx.Done(): // interrupted: report what was read
	}
	stopConsumer()
	wg.Wait()
	end := l.end
	if t := time.Unix(0, r.lastRead.Load()); t.After(end) {
		end = t
	}
	return rec.summary(end, cfg), nil
}

// startTail starts E2E's consumer: through the first producer's client,
// or through its own connection to ConsumeServer when set.
func startTail(ctx context.Context, l *load, cfg ProduceConfig) (tail, error) {
	if cfg.ConsumeServer != "" {
		cfg.Server = cfg.ConsumeServer
	}
	if cfg.Protocol == ProtocolKafka {
		return kafkaTail(ctx, cfg)
	}
	if cfg.ConsumeServer == "" {
		return sdkTail(ctx, l.clients[0], cfg)
	}
	cl, err := client.New(cfg.Server)
	if err != nil {
		return tail{}, err
	}
	t, err := sdkTail(ctx, cl, cfg)
	if err != nil {
		cl.Close()
		return tail{}, err
	}
	stop := t.close
	t.close = func() {
		stop()
		cl.Close()
	}
	return t, nil
}

// tail is E2E's consumer, positioned at the end of every partition.
type tail struct {
	// poll returns the values of the next records read.
	poll  func(context.Context) ([][]byte, error)
	close func()
}

// sdkTail is an SDK consumer of the topic from its current end.
func sdkTail(ctx context.Context, cl *client.Client, cfg ProduceConfig) (tail, error) {
	n, err := ensureTopic(ctx, cl, cfg.Topic, cfg.Partitions)
	if err != nil {
		return tail{}, err
	}
	c, err := cl.NewConsumer()
	if err != nil {
		return tail{}, err
	}
	for p := range n {
		o, err := cl.ListOffsets(ctx, cfg.Topic, p, client.OffsetLatest)
		if err == nil {
			err = c.Seek(cfg.Topic, p, o.Offset)
		}
		if err != nil {
			c.Close()
			return tail{}, fmt.Errorf("bench: offsets of partition %d: %w", p, err)
		}
	}
	poll := func(ctx context.Context) ([][]byte, error) {
		recs, err := c.Poll(ctx)
		values := make([][]byte, len(recs))
		for i, r := range recs {
			values[i] = r.Value
		}
		return values, err
	}
	return tail{poll: poll, close: func() { c.Close() }}, nil
}

// e2eReader is E2E's consumer: it records each stamped record's latency
// from Produce to poll.
type e2eReader struct {
	poll     func(context.Context) ([][]byte, error)
	rec      *recorder
	l        *load
	consumed atomic.Int64
	lastRead atomic.Int64  // UnixNano of the last record read
	caughtUp chan struct{} // closed once the load has finished and every acknowledged record is read
}

// run polls until ctx ends or, the load having finished, it has read as
// many records as were acknowledged.
func (r *e2eReader) run(ctx context.Context) {
	for {
		values, err := r.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.rec.failed(err)
		}
		now := time.Now().UnixNano()
		for _, v := range values {
			if len(v) < stampBytes {
				continue
			}
			sent := int64(binary.BigEndian.Uint64(v))
			r.rec.done(time.Duration(now-sent), len(v))
		}
		if len(values) > 0 {
			r.lastRead.Store(now)
		}
		if r.consumed.Add(int64(len(values))) >= r.l.acked.Load() && r.l.finished.Load() {
			close(r.caughtUp)
			return
		}
	}
}

// alreadyRead returns a closed channel if done, else nil (which blocks).
func alreadyRead(done bool) <-chan struct{} {
	if !done {
		return nil
	}
	c := make(chan struct{})
	close(c)
	return c
}
