// Command coordinator runs a Strata coordinator: topic administration and,
// while elected leader, partition placement and the storage lifecycle
// (retention, compaction, garbage collection; it needs the object store). Run one to three replicas
// against the same etcd; one leads, the others stand by.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("coordinator failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	metaCfg := serverflags.Meta(fs)
	storeCfg := serverflags.Store(fs)
	newLogger := serverflags.Log(fs)
	tlsFlags := serverflags.TLS(fs)
	var cfg coordinator.Config
	fs.StringVar(&cfg.ID, "id", "", "coordinator id (default hostname-random)")
	fs.StringVar(&cfg.ListenAddr, "listen-addr", coordinator.DefaultListenAddr, "gRPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address proxies reach this coordinator at (default: the listen address)")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", coordinator.DefaultSessionTTL, "etcd session TTL of the leader (whole seconds)")
	fs.DurationVar(&cfg.PlacementInterval, "placement-interval", coordinator.DefaultPlacementInterval, "period of the placement safety pass")
	var maxParts int
	fs.IntVar(&maxParts, "max-partitions-per-topic", meta.MaxPartitions, "most partitions a topic may be created with")
	fs.Int64Var(&cfg.DefaultRetentionMs, "default-retention-ms", coordinator.DefaultRetentionMs, "retention of topics created without one (-1: forever)")
	lc := &cfg.Lifecycle
	fs.DurationVar(&lc.Interval, "lifecycle-interval", lifecycle.DefaultInterval, "period of the retention, compaction and GC passes")
	fs.DurationVar(&lc.CompactMinAge, "compact-min-age", lifecycle.DefaultCompactMinAge, "entries younger than this are not compacted")
	fs.Int64Var(&lc.CompactEntryBytes, "compact-entry-bytes", lifecycle.DefaultCompactEntryBytes, "target size of a compacted segment entry")
	fs.Int64Var(&lc.CompactObjectBytes, "compact-object-bytes", lifecycle.DefaultCompactObjectBytes, "target size of a compacted segment object")
	fs.Int64Var(&lc.CompactBytesPerSec, "compact-bytes-per-sec", lifecycle.DefaultCompactBytesPerSec, "compaction read throttle (-1: none)")
	fs.DurationVar(&lc.GCGrace, "gc-grace", lifecycle.DefaultGCGrace, "age and unreferenced time before an object is deleted")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "Prometheus /metrics listen address, e.g. :9472 (empty: none)")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	if cfg.TLS, err = tlsFlags.Apply(metaCfg, storeCfg, true); err != nil {
		return err
	}
	serverflags.MetaDefaults(metaCfg)
	if err := serverflags.CheckEtcd(metaCfg); err != nil {
		return err
	}
	metaCfg.Logger = log
	store, err := meta.New(*metaCfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if storeCfg.Dir != "" || storeCfg.S3.Bucket != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := objstore.Open(ctx, *storeCfg)
		cancel()
		if err != nil {
			return err
		}
		cfg.Store = st
	} else {
		log.Warn("no object store configured (-data-dir or -s3-bucket): retention, compaction and GC are off")
	}
	cfg.MaxPartitionsPerTopic = int32(max(-1, min(maxParts, meta.MaxPartitions+1))) // out of range fails Validate
	cfg.Meta, cfg.Logger = store, log
	srv, err := coordinator.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx)
}
