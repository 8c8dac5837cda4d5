package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/strata-mq/strata/pkg/client"
)

var consumeCmd = &command{
	summary: "print the records of a topic, one per line",
	usage:   "TOPIC",
	aliases: map[string]string{"n": "max-messages"},
	setup: func(fs *flag.FlagSet) runFunc {
		partition := fs.Int("partition", -1, "read only this partition (-1: all)")
		fromBeginning := fs.Bool("from-beginning", false, "start at the first readable offset instead of the end")
		offset := fs.Int64("offset", -1, "start at this offset (of --partition, or of every partition)")
		var maxMessages int
		fs.IntVar(&maxMessages, "max-messages", 0, "exit after this many records (0: no limit)")
		fs.IntVar(&maxMessages, "n", 0, "short for --max-messages")
		timeout := fs.Duration("timeout", 0, "exit once no record arrived for this long (0: wait forever)")
		group := fs.String("group", "", "consume as a member of this consumer group: share the partitions, resume from and commit to its offsets")
		sessionTimeout := fs.Duration("session-timeout", 0, "with --group: the member's session timeout (0: the coordinator's default)")
		readUncommitted := fs.Bool("read-uncommitted", false, "also print the records of open and aborted Kafka transactions (Kafka's isolation.level=read_uncommitted)")
		format := fs.String("format", "value", "output: value, kv, json, or a Go template such as '{{.Partition}}:{{.Offset}} {{.Key}}={{.Value}}'")
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args, "topic"); err != nil {
				return err
			}
			offsetSet := false
			fs.Visit(func(f *flag.Flag) { offsetSet = offsetSet || f.Name == "offset" })
			switch {
			case *partition < -1 || *partition > 1<<20:
				return usagef("--partition must be -1 or a partition number, got %d", *partition)
			case offsetSet && *offset < 0:
				return usagef("--offset must not be negative, got %d", *offset)
			case offsetSet && *fromBeginning:
				return usagef("--from-beginning and --offset exclude each other")
			case maxMessages < 0:
				return usagef("--max-messages must not be negative")
			case *timeout < 0:
				return usagef("--timeout must not be negative")
			case *group != "" && (*partition != -1 || offsetSet):
				return usagef("--group excludes --partition and --offset (the group assigns partitions and keeps offsets)")
			case *sessionTimeout != 0 && (*sessionTimeout < time.Second || *sessionTimeout > 5*time.Minute):
				return usagef("--session-timeout must be 0 or between 1s and 5m")
			}
			out, err := newFormatter(*format)
			if err != nil {
				return usagef("--format: %v", err)
			}
			o := consumeOpts{partition: int32(*partition), fromBeginning: *fromBeginning, offset: -1,
				max: maxMessages, timeout: *timeout, format: out, readUncommitted: *readUncommitted}
			if offsetSet {
				o.offset = *offset
			}
			if *group != "" {
				o.sessionTimeout = *sessionTimeout
				return a.consumeGroup(ctx, args[0], *group, o)
			}
			return a.consume(ctx, args[0], o)
		}
	},
}

type consumeOpts struct {
	partition     int32 // -1: all
	fromBeginning bool
	offset        int64 // -1: not set
	max           int
	timeout       time.Duration
	format        formatter
	// sessionTimeout is the group member's session timeout (--group).
	sessionTimeout time.Duration
	// readUncommitted reads Kafka transactions' open and aborted records.
	readUncommitted bool
}

// consumerOpts are the consumer options every consume takes: where to
// start, and the isolation.
func (o consumeOpts) consumerOpts() []client.ConsumerOpt {
	start := client.StartLatest
	if o.fromBeginning {
		start = client.StartEarliest
	}
	opts := []client.ConsumerOpt{client.ConsumeStart(start)}
	if o.readUncommitted {
		opts = append(opts, client.ReadUncommitted())
	}
	return opts
}

func (a *App) consume(ctx context.Context, topic string, o consumeOpts) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	opts := o.consumerOpts()
	if o.offset >= 0 {
		// An explicit offset is never silently replaced by another one.
		opts = append(opts, client.OffsetReset(client.ResetNone))
	}
	cons, err := c.NewConsumer(opts...)
	if err != nil {
		return err
	}
	defer cons.Close()

	var parts []int32
	if o.partition >= 0 {
		parts = []int32{o.partition}
	}
	if o.offset >= 0 {
		if parts, err = checkOffset(ctx, c, topic, parts, o.offset); err != nil {
			return err
		}
	}
	if err := cons.Assign(topic, parts...); err != nil {
		return err
	}
	if o.offset >= 0 {
		for _, p := range parts {
			if err := cons.Seek(topic, p, o.offset); err != nil {
				return err
			}
		}
	}

	return a.printRecords(ctx, cons, o)
}

// printRecords prints polled records until -n, --timeout or an interrupt.
func (a *App) printRecords(ctx context.Context, cons *client.Consumer, o consumeOpts) error {
	w := bufio.NewWriter(a.Stdout)
	defer w.Flush()
	n := 0
	for {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.timeout > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.timeout)
		}
		recs, err := cons.Poll(pctx)
		cancel()
		for _, r := range recs {
			if o.max > 0 && n >= o.max {
				break
			}
			if ferr := o.format(w, r); ferr != nil {
				return ferr
			}
			n++
		}
		if ferr := w.Flush(); ferr != nil {
			return ferr
		}
		switch {
		case o.max > 0 && n >= o.max:
			return nil
		case ctx.Err() != nil:
			return nil // interrupted: a normal way to stop consuming
		case errors.Is(err, context.DeadlineExceeded) && o.timeout > 0:
			return nil // nothing new for --timeout
		case err != nil:
			return err
		}
	}
}

// checkOffset checks that offset is readable in each of parts (every
// partition when parts is empty) and returns the partitions. An offset
// equal to the high watermark is the next one to be written: consuming
// from it waits for new records. One past it, or below the log start, is
// ErrOffsetOutOfRange, as docs/cli.md says.
func checkOffset(ctx context.Context, c *client.Client, topic string, parts []int32, offset int64) ([]int32, error) {
	dctx, cancel := context.WithTimeout(ctx, requestTimeout)
	info, err := c.DescribeTopic(dctx, topic)
	cancel()
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		for p := range info.Partitions {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if p >= info.Partitions {
			return nil, fmt.Errorf("%w: partition %d, topic %q has %d", client.ErrPartitionRange, p, topic, info.Partitions)
		}
		for _, pi := range info.PartitionInfo {
			switch {
			case pi.Partition != p:
			case offset > pi.HighWatermark:
				return nil, fmt.Errorf("%w: offset %d is past the high watermark %d of %s/%d (offset %d waits for the next record)",
					client.ErrOffsetOutOfRange, offset, pi.HighWatermark, topic, p, pi.HighWatermark)
			case offset < pi.LogStartOffset:
				return nil, fmt.Errorf("%w: offset %d is below the log start %d of %s/%d (retention removed it)",
					client.ErrOffsetOutOfRange, offset, pi.LogStartOffset, topic, p)
			}
		}
	}
	return parts, nil
}

// formatter writes one record.
type formatter func(w io.Writer, r *client.Record) error

// templateRecord is what a --format template sees.
type templateRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Timestamp time.Time
	Headers   map[string]string
}

func newFormatter(format string) (formatter, error) {
	switch format {
	case "value":
		return func(w io.Writer, r *client.Record) error {
			_, err := fmt.Fprintf(w, "%s\n", r.Value)
			return err
		}, nil
	case "kv":
		return func(w io.Writer, r *client.Record) error {
			_, err := fmt.Fprintf(w, "%s\t%s\n", r.Key, r.Value)
			return err
		}, nil
	case "json":
		return func(w io.Writer, r *client.Record) error {
			return json.NewEncoder(w).Encode(toJSON(r))
		}, nil
	}
	tmpl, err := template.New("format").Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, err
	}
	if err := tmpl.Execute(io.Discard, templateRecord{}); err != nil {
		return nil, err
	}
	return func(w io.Writer, r *client.Record) error {
		if err := tmpl.Execute(w, toTemplate(r)); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	}, nil
}

// jsonRecord is a record as --format json prints it. Bytes that are valid
// UTF-8 print as a string; others print as base64 with the matching
// *Encoding field set to "base64". A missing key (or value) is null, an
// empty one "".
type jsonRecord struct {
	Topic         string       `json:"Topic"`
	Partition     int32        `json:"Partition"`
	Offset        int64        `json:"Offset"`
	Timestamp     time.Time    `json:"Timestamp"`
	Key           *string      `json:"Key"`
	KeyEncoding   string       `json:"KeyEncoding,omitempty"`
	Value         *string      `json:"Value"`
	ValueEncoding string       `json:"ValueEncoding,omitempty"`
	Headers       []jsonHeader `json:"Headers,omitempty"`
}

// jsonHeader is one header, in the record's order (keys may repeat).
type jsonHeader struct {
	Key           string  `json:"Key"`
	Value         *string `json:"Value"`
	ValueEncoding string  `json:"ValueEncoding,omitempty"`
}

// jsonBytes encodes b for jsonRecord: nil stays nil.
func jsonBytes(b []byte) (*string, string) {
	switch {
	case b == nil:
		return nil, ""
	case utf8.Valid(b):
		s := string(b)
		return &s, ""
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, "base64"
}

func toJSON(r *client.Record) jsonRecord {
	j := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
	j.Key, j.KeyEncoding = jsonBytes(r.Key)
	j.Value, j.ValueEncoding = jsonBytes(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueEncoding = jsonBytes(h.Value)
		j.Headers = append(j.Headers, jh)
	}
	return j
}

func toTemplate(r *client.Record) templateRecord {
	t := templateRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value), Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		t.Headers = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			t.Headers[h.Key] = string(h.Value)
		}
	}
	return t
}
