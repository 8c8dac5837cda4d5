package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-mq/strata/internal/bench"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/objstore"
)

var benchCmd = &command{summary: "measure throughput and latency (load generator and object-store baseline)", subs: map[string]*command{
	"produce": benchLoadCmd("produce", "produce records and measure produce-to-ack latency", bench.Produce),
	"e2e":     benchLoadCmd("e2e", "produce and consume at once and measure produce-to-consume latency", bench.E2E),
	"consume": benchConsumeCmd,
	"s3":      benchS3Cmd,
	"etcd":    benchEtcdCmd,
	"plot":    benchPlotCmd,
}}

// benchOutput holds the flags every bench command has: where the summary
// and plots go.
type benchOutput struct {
	json *bool
	plot *string
}

func benchOutputFlags(fs *flag.FlagSet) benchOutput {
	return benchOutput{
		json: fs.Bool("json", false, "write the summary as JSON to standard output (progress stays on standard error)"),
		plot: fs.String("plot", "", "write throughput and latency PNGs to files starting with this path (e.g. out/produce)"),
	}
}

// benchProtocolFlags registers --protocol (into protocol) and
// --kafka-addr, the Kafka address --protocol kafka drives.
func benchProtocolFlags(fs *flag.FlagSet, protocol *string) *string {
	fs.StringVar(protocol, "protocol", bench.ProtocolGRPC, "grpc (the Strata SDK at --server) or kafka (franz-go at --kafka-addr)")
	return fs.String("kafka-addr", kafka.DefaultAddr, "Kafka address of the proxy, with --protocol kafka")
}

// benchServer is the address a bench run drives.
func benchServer(a *App, protocol, kafkaAddr string) string {
	if protocol == bench.ProtocolKafka {
		return kafkaAddr
	}
	return a.server
}

// noArgsValid checks that a bench command got no arguments and that its
// configuration is valid; a bad configuration is a usage error.
func noArgsValid(args []string, validate func() error) error {
	if err := exactArgs(args); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// reportPartial returns a function that reports a benchmark's summary,
// if it has one, and returns the benchmark's error first: a run that
// failed part way still shows what it measured.
func (o benchOutput) reportPartial(a *App) func(*bench.Summary, error) error {
	return func(s *bench.Summary, err error) error {
		if s == nil {
			return err
		}
		if rerr := o.report(a, s); err == nil {
			err = rerr
		}
		return err
	}
}

// report writes s: progress went to stderr, the summary goes to stdout.
func (o benchOutput) report(a *App, s *bench.Summary) error {
	if *o.plot != "" {
		files, err := bench.WritePlots(*o.plot, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.Stderr, "wrote %s\n", strings.Join(files, ", "))
	}
	if *o.json {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return s.WriteText(a.Stdout)
}

func benchLoadCmd(kind, summary string, run func(context.Context, bench.ProduceConfig, io.Writer) (*bench.Summary, error)) *command {
	return &command{
		summary: summary,
		setup: func(fs *flag.FlagSet) runFunc {
			var cfg bench.ProduceConfig
			fs.StringVar(&cfg.Topic, "topic", bench.DefaultTopic, "topic (created if missing)")
			partitions := fs.Int("partitions", bench.DefaultPartitions, "partitions of the topic (0: use an existing topic as it is)")
			fs.IntVar(&cfg.RecordBytes, "record-size", bench.DefaultRecordBytes, "value size of each record in bytes")
			fs.IntVar(&cfg.Producers, "producers", bench.DefaultProducers, "concurrent producers, each with its own connection")
			fs.DurationVar(&cfg.Linger, "linger", client.DefaultLinger, "producer linger")
			fs.IntVar(&cfg.MaxBatchBytes, "max-batch-bytes", 0, "producer batch size limit (0: SDK default)")
			fs.StringVar(&cfg.Codec, "codec", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
			fs.Float64Var(&cfg.Rate, "rate", 0, "target records/s over all producers (0: as fast as possible)")
			fs.IntVar(&cfg.Inflight, "inflight", 0, "unacknowledged records per producer (0: bounded by the producer's buffer; 1: latency-tuned)")
			fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measured time")
			fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured time before it")
			kafkaAddr := benchProtocolFlags(fs, &cfg.Protocol)
			if kind == "e2e" {
				fs.StringVar(&cfg.ConsumeServer, "consume-server", "", "read through this proxy address instead (gRPC, or Kafka with --protocol kafka): another proxy than the producer's")
			}
			out := benchOutputFlags(fs)
			return func(ctx context.Context, a *App, args []string) error {
				if err := exactArgs(args); err != nil {
					return err
				}
				if *partitions < 0 || *partitions > 1<<20 {
					return usagef("--partitions must be in [0, %d], got %d", 1<<20, *partitions)
				}
				cfg.Server, cfg.Partitions = benchServer(a, cfg.Protocol, *kafkaAddr), int32(*partitions)
				if err := cfg.Validate(); err != nil {
					return usagef("%v", err)
				}
				s, err := run(ctx, cfg, a.Stderr)
				if err != nil {
					return err
				}
				return out.report(a, s)
			}
		},
	}
}

var benchConsumeCmd = &command{
	summary: "read a topic from the beginning and measure records/s",
	setup: func(fs *flag.FlagSet) runFunc {
		var cfg bench.ConsumeConfig
		fs.StringVar(&cfg.Topic, "topic", bench.DefaultTopic, "topic to read")
		fetchBytes := fs.Int("fetch-max-bytes", 0, "per-partition fetch budget (0: SDK default)")
		fs.DurationVar(&cfg.Duration, "duration", time.Minute, "longest run; it ends when the topic is read")
		kafkaAddr := benchProtocolFlags(fs, &cfg.Protocol)
		out := benchOutputFlags(fs)
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			if *fetchBytes < 0 || *fetchBytes > 1<<30 {
				return usagef("--fetch-max-bytes must be in [0, 1 GiB], got %d", *fetchBytes)
			}
			cfg.Server, cfg.FetchMaxBytes = benchServer(a, cfg.Protocol, *kafkaAddr), int32(*fetchBytes)
			if err := cfg.Validate(); err != nil {
				return usagef("%v", err)
			}
			s, err := bench.Consume(ctx, cfg, a.Stderr)
			if err != nil {
				return err
			}
			return out.report(a, s)
		}
	},
}

var benchS3Cmd = &command{
	summary: "PUT objects straight into the object store: the baseline for produce throughput",
	setup: func(fs *flag.FlagSet) runFunc {
		store := serverflags.Store(fs)
		var cfg bench.S3Config
		fs.IntVar(&cfg.ObjectBytes, "object-size", bench.DefaultObjectBytes, "bytes per PUT (the broker's flush size)")
		fs.IntVar(&cfg.Concurrency, "concurrency", bench.DefaultConcurrency, "PUTs in flight (the broker's in-flight flushes)")
		fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measured time")
		fs.StringVar(&cfg.Prefix, "prefix", bench.DefaultS3Prefix, "key prefix of the objects written (deleted afterwards)")
		fs.BoolVar(&cfg.Keep, "keep", false, "keep the objects written")
		out := benchOutputFlags(fs)
		return func(ctx context.Context, a *App, args []string) error {
			if err := noArgsValid(args, cfg.Validate); err != nil {
				return err
			}
			if err := store.Validate(); err != nil {
				return usagef("%v", err)
			}
			s, err := objstore.Open(ctx, *store)
			if err != nil {
				return err
			}
			return out.reportPartial(a)(bench.S3(ctx, s, cfg, a.Stderr))
		}
	},
}

var benchEtcdCmd = &command{
	summary: "run the broker's fencing commit against etcd: the baseline for produce-ack latency",
	setup: func(fs *flag.FlagSet) runFunc {
		mc, store := serverflags.Meta(fs), serverflags.Store(fs)
		cfg := bench.EtcdConfig{Records: bench.DefaultEtcdRecords}
		fs.IntVar(&cfg.Concurrency, "concurrency", bench.DefaultEtcdConcurrency, "commits in flight, each to partitions of its own")
		fs.IntVar(&cfg.Partitions, "partitions", bench.DefaultEtcdPartitions, "partitions each commit covers, an entry each, in one transaction (a flush of records spread over many partitions)")
		fs.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "measured time")
		fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured time before it")
		fs.StringVar(&cfg.Prefix, "prefix", bench.DefaultEtcdPrefix, "scratch key prefix under --etcd-prefix (deleted afterwards)")
		fs.IntVar(&cfg.PutBytes, "put-size", 0, "PUT an object of this many bytes before each commit and time the pair (needs --s3-* or --data-dir)")
		fs.StringVar(&cfg.ObjectPrefix, "object-prefix", bench.DefaultS3Prefix, "key prefix of the objects --put-size writes (deleted afterwards)")
		fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch keys and objects written")
		out := benchOutputFlags(fs)
		return func(ctx context.Context, a *App, args []string) error {
			if err := noArgsValid(args, cfg.Validate); err != nil {
				return err
			}
			var objects objstore.Store
			if cfg.PutBytes > 0 {
				if err := store.Validate(); err != nil {
					return usagef("--put-size: %v", err)
				}
				s, err := objstore.Open(ctx, *store)
				if err != nil {
					return err
				}
				objects = s
			}
			serverflags.MetaDefaults(mc)
			return out.reportPartial(a)(bench.Etcd(ctx, *mc, objects, cfg, a.Stderr))
		}
	},
}

var benchPlotCmd = &command{
	summary: "plot one metric of several --json summaries on one chart",
	usage:   "NAME=FILE.json...",
	setup: func(fs *flag.FlagSet) runFunc {
		metric := fs.String("metric", bench.MetricMBPerSec, "per_sec, mb_per_sec, p50_ms or p99_ms")
		title := fs.String("title", "", "chart title")
		outPath := fs.String("out", "compare.png", "PNG file to write")
		return func(_ context.Context, a *App, args []string) error {
			if len(args) == 0 {
				return usagef("missing NAME=FILE.json")
			}
			var names []string
			var runs []*bench.Summary
			for _, arg := range args {
				name, file, ok := strings.Cut(arg, "=")
				if !ok {
					name, file = strings.TrimSuffix(filepath.Base(arg), ".json"), arg
				}
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				var s bench.Summary
				if err := json.Unmarshal(b, &s); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				names, runs = append(names, name), append(runs, &s)
			}
			return bench.PlotCompare(*outPath, *title, *metric, names, runs)
		}
	},
}
