// Command proxy runs a Strata proxy: the one address clients need. It routes
// produce requests to partition owners, serves fetches from object storage
// through its block cache and forwards admin calls to the coordinator
// leader. Every flag can also be set with a STRATA_* environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/proxy"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		slog.Error("proxy failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	metaCfg, storeCfg, newLogger := serverflags.Meta(fs), serverflags.Store(fs), serverflags.Log(fs)
	tlsFlags := serverflags.TLS(fs)
	cfg := proxy.Config{}
	finishSecurity := securityFlags(fs, &cfg)
	fs.StringVar(&cfg.ListenAddr, "listen-addr", proxy.DefaultListenAddr, "gRPC address clients connect to")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "HTTP address of /metrics and /healthz (empty: none)")
	fs.Int64Var(&cfg.Cache.MaxBytes, "cache-bytes", cache.DefaultMaxBytes, "size of the block cache in bytes")
	fs.Int64Var(&cfg.Cache.BlockSize, "cache-block-bytes", cache.DefaultBlockSize, "block size of the block cache in bytes")
	fs.DurationVar(&cfg.ProduceTimeout, "produce-timeout", proxy.DefaultProduceTimeout, "produce deadline, retries included, when the client sets none")
	fs.DurationVar(&cfg.AdminTimeout, "admin-timeout", proxy.DefaultAdminTimeout, "admin call deadline, retries included, when the client sets none")
	fs.DurationVar(&cfg.MaxFetchWait, "max-fetch-wait", proxy.DefaultMaxFetchWait, "cap on a fetch's long-poll wait")
	maxFetch := fs.Int("max-fetch-bytes", proxy.DefaultMaxFetchBytes, "cap on a fetch's byte budget")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	finishSecurity()
	if cfg.TLS, err = tlsFlags.Apply(metaCfg, storeCfg, false); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	serverflags.MetaDefaults(metaCfg)
	if err := serverflags.CheckEtcd(metaCfg); err != nil {
		return err
	}
	metaCfg.Logger, metaCfg.Registerer = log, reg
	ms, err := meta.New(*metaCfg)
	if err != nil {
		return err
	}
	defer ms.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	store, err := objstore.Open(ctx, *storeCfg)
	if err != nil {
		return err
	}
	cfg.Meta, cfg.Store, cfg.Logger, cfg.Registry = ms, objstore.Instrument(store, reg), log, reg
	cfg.MaxFetchBytes = int32(min(*maxFetch, 1<<30))
	srv, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
