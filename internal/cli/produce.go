package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/segment"
)

var produceCmd = &command{
	summary: "produce one record per line of standard input",
	usage:   "TOPIC",
	setup: func(fs *flag.FlagSet) runFunc {
		partition := fs.Int("partition", -1, "write every record to this partition (-1: key hash, or round-robin without key)")
		keySep := fs.String("key-separator", "", "split each line at the first occurrence into key and value (empty: no key)")
		codec := fs.String("codec", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
		linger := fs.Duration("linger", client.DefaultLinger, "how long a partition's batch waits for more records")
		batchBytes := fs.Int("max-batch-bytes", client.DefaultMaxBatchBytes, "largest batch and request in bytes; bounds the line length")
		verbose := fs.Bool("v", false, "print a summary to standard error")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic"); err != nil {
				return err
			}
			if *partition < -1 || *partition > 1<<20 {
				return usagef("--partition must be -1 or a partition number, got %d", *partition)
			}
			c, err := segment.ParseCodec(*codec)
			if err != nil {
				return usagef("--codec: %v", err)
			}
			if *linger < 0 {
				return usagef("--linger must not be negative")
			}
			return a.produce(ctx, args[0], produceOpts{
				partition: int32(*partition), keySep: []byte(*keySep), codec: c,
				linger: *linger, batchBytes: *batchBytes, verbose: *verbose,
			})
		}
	},
}

type produceOpts struct {
	partition  int32
	keySep     []byte
	codec      segment.Codec
	linger     time.Duration
	batchBytes int
	verbose    bool
}

func (a *App) produce(ctx context.Context, topic string, o produceOpts) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	// Check the topic once up front, for a clear error before reading input.
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	info, err := c.DescribeTopic(dctx, topic)
	cancel()
	if err != nil {
		return err
	}
	if o.partition >= info.Partitions {
		return fmt.Errorf("%w: partition %d, topic %q has %d", client.ErrPartitionRange, o.partition, topic, info.Partitions)
	}
	p, err := c.NewProducer(client.Compression(o.codec), client.Linger(o.linger), client.MaxBatchBytes(o.batchBytes),
		client.MaxBufferedBytes(max(int64(o.batchBytes), client.DefaultMaxBufferedBytes)))
	if err != nil {
		return usagef("%v", err)
	}

	start := time.Now()
	var (
		mu       sync.Mutex
		firstErr error // guarded by mu
		failed   int   // guarded by mu
		sent     int
	)
	failedErr := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	cb := func(_ *client.Record, err error) {
		if err != nil {
			mu.Lock()
			failed++
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	in := bufio.NewReaderSize(a.Stdin, 1<<20)
	var readErr error
	for ctx.Err() == nil && failedErr() == nil {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			r := &client.Record{Topic: topic, Value: line}
			if len(o.keySep) > 0 {
				if k, v, ok := bytes.Cut(line, o.keySep); ok {
					r.Key, r.Value = k, v
				}
			}
			if o.partition >= 0 {
				r.SetPartition(o.partition)
			}
			p.Produce(ctx, r, cb)
			sent++
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	// Flush even when interrupted: records read so far are delivered.
	closeErr := p.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if o.verbose {
		fmt.Fprintf(a.Stderr, "produced %d of %d records to %q in %s\n", sent-failed, sent, topic, time.Since(start).Round(time.Millisecond))
	}
	switch {
	case firstErr != nil:
		return fmt.Errorf("%d of %d records failed, first: %w", failed, sent, firstErr)
	case readErr != nil:
		return fmt.Errorf("reading standard input: %w", readErr)
	case closeErr != nil:
		return closeErr
	}
	return ctx.Err()
}
