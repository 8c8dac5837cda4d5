package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/segment"
)

// DefaultFlushTimeout is how long produce keeps delivering the records it
// already read after an interrupt: long enough for a healthy cluster to
// ack many batches (each takes milliseconds), short enough that the
// command exits within 2 s of Ctrl-C, as every command does.
const DefaultFlushTimeout = 1500 * time.Millisecond

var produceCmd = &command{
	summary: "produce one record per line of standard input",
	usage:   "TOPIC",
	setup: func(fs *flag.FlagSet) runFunc {
		partition := fs.Int("partition", -1, "write every record to this partition (-1: key hash, or round-robin without key)")
		keySep := fs.String("key-separator", "", "split each line at the first occurrence into key and value (empty: no key)")
		codec := fs.String("codec", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
		linger := fs.Duration("linger", client.DefaultLinger, "how long the oldest buffered record waits for more (then every partition's batch goes)")
		batchBytes := fs.Int("max-batch-bytes", client.DefaultMaxBatchBytes, "largest batch and request in bytes; bounds the line length (default: the larger of this and the topic's max message bytes)")
		flushTimeout := fs.Duration("flush-timeout", DefaultFlushTimeout, "after Ctrl-C, how long to keep delivering the records already read")
		valueFormat := fs.String("value-format", "text", "how each line's value is written: text, base64 or hex")
		keyFormat := fs.String("key-format", "text", "how each line's key is written (with --key-separator): text, base64 or hex")
		var headers []client.Header
		fs.Func("header", "add header KEY=VALUE to every record (repeatable)", func(s string) error {
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return fmt.Errorf("header %q: want KEY=VALUE", s)
			}
			headers = append(headers, client.Header{Key: k, Value: []byte(v)})
			return nil
		})
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
			if *flushTimeout <= 0 {
				return usagef("--flush-timeout must be positive")
			}
			vdec, err := newDecoder(*valueFormat)
			if err != nil {
				return usagef("--value-format: %v", err)
			}
			kdec, err := newDecoder(*keyFormat)
			if err != nil {
				return usagef("--key-format: %v", err)
			}
			if *keyFormat != "text" && *keySep == "" {
				return usagef("--key-format needs --key-separator (lines have no key without it)")
			}
			batchBytesSet := false
			fs.Visit(func(f *flag.Flag) { batchBytesSet = batchBytesSet || f.Name == "max-batch-bytes" })
			return a.produce(ctx, args[0], produceOpts{
				batchBytesSet: batchBytesSet,
				partition:     int32(*partition), keySep: []byte(*keySep), codec: c,
				linger: *linger, batchBytes: *batchBytes, flushTimeout: *flushTimeout, verbose: *verbose,
				value: vdec, key: kdec, headers: headers,
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
	// batchBytesSet: --max-batch-bytes was given; otherwise a topic with
	// a larger max message bytes raises batchBytes to it.
	batchBytesSet bool
	flushTimeout  time.Duration
	verbose       bool
	// value and key decode a line's value and key (--value-format,
	// --key-format); headers go on every record.
	value, key decoder
	headers    []client.Header
}

// decoder turns the text of a line into bytes.
type decoder func([]byte) ([]byte, error)

func newDecoder(format string) (decoder, error) {
	switch format {
	case "text":
		return func(b []byte) ([]byte, error) { return b, nil }, nil
	case "base64":
		return func(b []byte) ([]byte, error) { return base64.StdEncoding.AppendDecode(nil, b) }, nil
	case "hex":
		return func(b []byte) ([]byte, error) { return hex.AppendDecode(nil, b) }, nil
	}
	return nil, fmt.Errorf("%q: want text, base64 or hex", format)
}

// produceRun is one produce command's state, shared by the goroutine that
// reads standard input and the callbacks.
type produceRun struct {
	topic string
	o     produceOpts
	p     *client.Producer
	// deliverCtx bounds the wait for buffer room: it ends flushTimeout
	// after the interrupt.
	deliverCtx context.Context

	// readMu is held while a line is counted and handed to the producer,
	// so that stop() knows no line is half-handed over.
	readMu  sync.Mutex
	stopped bool // guarded by readMu: no more lines are taken
	read    int  // guarded by readMu: lines handed to the producer

	delivered, failed atomic.Int64
	firstErr          atomic.Pointer[error]
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
	if m := int(info.Config.MaxMessageBytes); !o.batchBytesSet && m > o.batchBytes {
		o.batchBytes = m // the topic allows larger records than the default
	}
	p, err := c.NewProducer(client.Compression(o.codec), client.Linger(o.linger), client.MaxBatchBytes(o.batchBytes),
		client.MaxBufferedBytes(max(int64(o.batchBytes), client.DefaultMaxBufferedBytes)))
	if err != nil {
		return usagef("%v", err)
	}
	// Records already read get flushTimeout after an interrupt to be
	// delivered; without an interrupt, the producer's delivery timeout
	// bounds them.
	deliverCtx, cancelDeliver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDeliver()
	stopTimer := context.AfterFunc(ctx, func() {
		fmt.Fprintf(a.Stderr, "strata produce: interrupted; delivering the records already read for up to %v (interrupt again to quit now)\n", o.flushTimeout)
		time.AfterFunc(o.flushTimeout, cancelDeliver)
	})
	defer stopTimer()
	r := &produceRun{topic: topic, o: o, p: p, deliverCtx: deliverCtx}

	start := time.Now()
	// The reader cannot be interrupted while it blocks reading standard
	// input; on an interrupt it is abandoned there (the process exits
	// next) and takes no further line, see stop.
	readDone := make(chan error, 1)
	go func() { readDone <- r.readLines(a.Stdin) }()
	var readErr error
	select {
	case readErr = <-readDone:
		if o.verbose && readErr == nil {
			r.readMu.Lock()
			fmt.Fprintf(a.Stderr, "end of input after %d records; waiting for their delivery\n", r.read)
			r.readMu.Unlock()
		}
	case <-ctx.Done():
		r.stop()
	}
	closeErr := p.Close(deliverCtx)
	return r.report(a, ctx, start, readErr, closeErr)
}

// readLines hands every line of in to the producer until EOF, a read
// error, a failed record, or stop.
func (r *produceRun) readLines(stdin io.Reader) error {
	in := bufio.NewReaderSize(stdin, 1<<20)
	for r.firstErr.Load() == nil {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 && !r.take(line) {
			return nil
		}
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
	return nil
}

// take counts line and hands it to the producer, unless stop was called.
// A line that does not decode (--value-format, --key-format) counts as
// read and failed, and stops the reading like any failed record.
func (r *produceRun) take(line []byte) bool {
	rec, err := r.record(line)
	r.readMu.Lock()
	defer r.readMu.Unlock()
	if r.stopped {
		return false
	}
	r.read++
	if err != nil {
		r.done(nil, fmt.Errorf("line %d: %w", r.read, err))
		return true
	}
	r.p.Produce(r.deliverCtx, rec, r.done)
	return true
}

// record turns one line into a record.
func (r *produceRun) record(line []byte) (*client.Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	rec := &client.Record{Topic: r.topic, Value: line, Headers: r.o.headers}
	if len(r.o.keySep) > 0 {
		if k, v, ok := bytes.Cut(line, r.o.keySep); ok {
			key, err := r.o.key(k)
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			rec.Key, rec.Value = key, v
		}
	}
	value, err := r.o.value(rec.Value)
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	rec.Value = value
	if r.o.partition >= 0 {
		rec.SetPartition(r.o.partition)
	}
	return rec, nil
}

// done is every record's callback.
func (r *produceRun) done(_ *client.Record, err error) {
	if err == nil {
		r.delivered.Add(1)
		return
	}
	r.failed.Add(1)
	r.firstErr.CompareAndSwap(nil, &err)
}

// stop makes the reader take no further line; it returns once a line
// being handed over is in the producer.
func (r *produceRun) stop() {
	r.readMu.Lock()
	r.stopped = true
	r.readMu.Unlock()
}

// report prints the summary and returns the command's error.
func (r *produceRun) report(a *App, ctx context.Context, start time.Time, readErr, closeErr error) error {
	r.stop()
	r.readMu.Lock()
	read := r.read
	r.readMu.Unlock()
	delivered := int(r.delivered.Load())
	if r.o.verbose || ctx.Err() != nil {
		what := "produced"
		if ctx.Err() != nil {
			what = "interrupted: delivered"
		}
		fmt.Fprintf(a.Stderr, "%s %d of %d records read to %q in %s\n", what, delivered, read, r.topic, time.Since(start).Round(time.Millisecond))
	}
	var first error
	if p := r.firstErr.Load(); p != nil {
		first = *p
	}
	switch {
	case delivered < read && first != nil:
		var fromServer *apierr.Error
		if errors.Is(first, client.ErrRecordTooLarge) && !errors.As(first, &fromServer) {
			first = fmt.Errorf("%w (raise --max-batch-bytes, now %d)", first, r.o.batchBytes)
		}
		return fmt.Errorf("%d of %d records not delivered, first: %w", read-delivered, read, first)
	case delivered < read:
		return fmt.Errorf("%d of %d records not delivered: %v", read-delivered, read, closeErr)
	case readErr != nil:
		return readErr
	}
	return nil
}
