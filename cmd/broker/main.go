// Command broker runs a Strata broker: it owns the partitions placement
// gives it, writes their data to object storage and commits it to etcd.
// Every flag can also be set from its STRATA_* environment variable.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/broker"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("broker failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	common := serverflags.Register(fs)
	var cfg broker.Config
	fs.StringVar(&cfg.ListenAddr, "listen-addr", broker.DefaultBinaryListenAddr, "gRPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address proxies dial (default: the listen address)")
	fs.StringVar(&cfg.ID, "id", "", "broker id (default: hostname-<6 random hex>)")
	fs.StringVar(&cfg.Zone, "zone", "", "availability zone")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", broker.DefaultFlushInterval, "longest a batch waits before its flush starts")
	fs.BoolVar(&cfg.LingerWhenIdle, "linger-when-idle", false, "wait for -flush-interval even when no flush is in flight (bounds the PUT rate on billed stores)")
	fs.IntVar(&cfg.MaxBufferedBytes, "max-buffered-bytes", 0, "buffered bytes past which produces wait (0: the larger of 16 MiB and -max-request-bytes)")
	fs.DurationVar(&cfg.LoadReportInterval, "load-report-interval", broker.DefaultLoadReportInterval, "how often the broker publishes its bytes-in rate for load balancing")
	fs.IntVar(&cfg.FlushBytes, "flush-bytes", broker.DefaultFlushBytes, "buffered bytes that start a flush")
	fs.IntVar(&cfg.MaxInflightFlushes, "max-inflight-flushes", broker.DefaultMaxInflightFlushes, "flushes in flight at once")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", broker.DefaultMaxRequestBytes, "largest produce request")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", broker.DefaultLeaseTTL, "membership lease TTL (whole seconds)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", broker.DefaultShutdownTimeout, "longest a graceful stop flushes, hands partitions off and deregisters")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /metrics on this address (empty: off)")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env, err := common.Open(ctx, serverflags.OpenOptions{Internal: true})
	if err != nil {
		return err
	}
	defer env.Close()
	cfg.Meta, cfg.Store, cfg.Logger, cfg.Registry, cfg.TLS = env.Meta, env.Store, env.Log, env.Registry, env.TLS
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	return b.Run(ctx)
}
