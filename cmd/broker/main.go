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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

func main() {
	fs := flag.NewFlagSet("broker", flag.ExitOnError)
	metaCfg := serverflags.Meta(fs)
	storeCfg := serverflags.Store(fs)
	newLogger := serverflags.Log(fs)
	tlsFlags := serverflags.TLS(fs)
	var cfg broker.Config
	fs.StringVar(&cfg.ListenAddr, "listen-addr", broker.DefaultBinaryListenAddr, "gRPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address proxies dial (default: the listen address)")
	fs.StringVar(&cfg.ID, "id", "", "broker id (default: hostname-<6 random hex>)")
	fs.StringVar(&cfg.Zone, "zone", "", "availability zone")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", broker.DefaultFlushInterval, "longest a batch waits before its flush starts")
	fs.IntVar(&cfg.FlushBytes, "flush-bytes", broker.DefaultFlushBytes, "buffered bytes that start a flush")
	fs.IntVar(&cfg.MaxInflightFlushes, "max-inflight-flushes", broker.DefaultMaxInflightFlushes, "flushes in flight at once")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", broker.DefaultMaxRequestBytes, "largest produce request")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", broker.DefaultLeaseTTL, "membership lease TTL (whole seconds)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve /metrics on this address (empty: off)")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, os.Args[1:]); err != nil {
		fail(slog.Default(), "flags", err)
	}
	log, err := newLogger()
	if err != nil {
		fail(slog.Default(), "flags", err)
	}
	if cfg.TLS, err = tlsFlags.Apply(metaCfg, storeCfg, true); err != nil {
		fail(log, "tls", err)
	}
	serverflags.MetaDefaults(metaCfg)
	if err := serverflags.CheckEtcd(metaCfg); err != nil {
		fail(log, "etcd", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metaCfg.Logger, metaCfg.Registerer = log, reg

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m, err := meta.New(*metaCfg)
	if err != nil {
		fail(log, "etcd", err)
	}
	defer m.Close()
	store, err := objstore.Open(ctx, *storeCfg)
	if err != nil {
		fail(log, "object store", err)
	}
	cfg.Meta, cfg.Store, cfg.Logger, cfg.Registry = m, objstore.Instrument(store, reg), log, reg
	b, err := broker.New(cfg)
	if err != nil {
		fail(log, "config", err)
	}
	if err := b.Run(ctx); err != nil {
		fail(log, "broker", err)
	}
}

func fail(log *slog.Logger, what string, err error) {
	log.Error("broker: "+what, "err", err)
	os.Exit(1)
}
