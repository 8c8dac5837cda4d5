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
	remaining := map[int32]int64{} // partition → high watermark still to reach
	var total int64
	for p := range n {
		o, err := cl.ListOffsets(actx, cfg.Topic, p, client.OffsetLatest)
		if err != nil {
			return nil, fmt.Errorf("bench: offsets of partition %d: %w", p, err)
		}
		if o.Offset > 0 {
			remaining[p] = o.Offset
			total += o.Offset
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("bench: topic %q is empty", cfg.Topic)
	}
	opts := []client.ConsumerOpt{client.ConsumeStart(client.StartEarliest)}
	if cfg.FetchMaxBytes > 0 {
		opts = append(opts, client.FetchMaxBytes(cfg.FetchMaxBytes))
	}
	c, err := cl.NewConsumer(opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for p := range remaining {
		if err := c.Assign(cfg.Topic, p); err != nil {
			return nil, err
		}
	}
	if err := c.SeekToBeginning(cfg.Topic); err != nil {
		return nil, err
	}

	rec := newRecorder("consume", "records", progress)
	stopTicker := rec.startTicker(time.Second)
	defer stopTicker()
	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Duration)
	defer cancelRun()
	for len(remaining) > 0 {
		t := time.Now()
		recs, err := c.Poll(runCtx)
		if runCtx.Err() != nil {
			break
		}
		rec.latency(time.Since(t))
		if err != nil {
			rec.failed(err)
			if rec.errCount() > 100 {
				return nil, fmt.Errorf("bench: consuming: %w", err)
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
	stopTicker()
	return rec.summary(time.Now(), cfg), nil
}

// E2E produces as Produce does while one consumer reads the topic from
// its end, and reports consumed records per second and the latency from
// Produce to Poll returning the record (the send time travels in the
// first 8 bytes of each value).
func E2E(ctx context.Context, cfg ProduceConfig, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rec := newRecorder("e2e", "records", progress)
	l, err := startLoad(ctx, cfg, true, rec)
	if err != nil {
		return nil, err
	}
	defer l.close()
	cl := l.clients[0]
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := ensureTopic(actx, cl, cfg.Topic, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	c, err := cl.NewConsumer()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for p := range n {
		o, err := cl.ListOffsets(actx, cfg.Topic, p, client.OffsetLatest)
		if err != nil {
			return nil, fmt.Errorf("bench: offsets of partition %d: %w", p, err)
		}
		if err := c.Seek(cfg.Topic, p, o.Offset); err != nil {
			return nil, err
		}
	}

	var (
		consumed atomic.Int64
		lastRead atomic.Int64 // UnixNano of the last record read
		caughtUp = make(chan struct{})
	)
	cctx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			recs, err := c.Poll(cctx)
			if cctx.Err() != nil {
				return
			}
			if err != nil {
				rec.failed(err)
			}
			now := time.Now().UnixNano()
			for _, r := range recs {
				if len(r.Value) < stampBytes {
					continue
				}
				sent := int64(binary.BigEndian.Uint64(r.Value))
				rec.done(time.Duration(now-sent), len(r.Value))
			}
			if len(recs) > 0 {
				lastRead.Store(now)
			}
			if consumed.Add(int64(len(recs))) >= l.acked.Load() && l.finished.Load() {
				close(caughtUp)
				return
			}
		}
	})
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	// Wait for the consumer to read every acknowledged record. (Once run
	// has returned, finished is set, so either this check or the
	// consumer's after its next Poll sees the last record.)
	select {
	case <-caughtUp:
	case <-alreadyRead(consumed.Load() >= l.acked.Load()):
	case <-time.After(flushTimeout):
		rec.failed(fmt.Errorf("bench: consumer read %d of %d acknowledged records", consumed.Load(), l.acked.Load()))
	case <-ctx.Done():
	}
	stopConsumer()
	wg.Wait()
	end := l.end
	if t := time.Unix(0, lastRead.Load()); t.After(end) {
		end = t
	}
	return rec.summary(end, cfg), nil
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
