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

	"github.com/strata-mq/strata/internal/flagenv"
	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		slog.Error("coordinator failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	common := serverflags.Register(fs)
	var cfg coordinator.Config
	fs.StringVar(&cfg.ID, "id", "", "coordinator id (default hostname-random)")
	fs.StringVar(&cfg.ListenAddr, "listen-addr", coordinator.DefaultListenAddr, "gRPC listen address")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address proxies reach this coordinator at (default: the listen address)")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", coordinator.DefaultSessionTTL, "etcd session TTL of the leader (whole seconds)")
	fs.DurationVar(&cfg.PlacementInterval, "placement-interval", coordinator.DefaultPlacementInterval, "period of the placement safety pass")
	fs.DurationVar(&cfg.LoadRebalanceInterval, "load-rebalance-interval", coordinator.DefaultLoadRebalanceInterval, "least time between partition moves made for bytes-in (hot partitions)")
	fs.DurationVar(&cfg.GroupSessionTimeout, "group-session-timeout", coordinator.DefaultGroupSessionTimeout, "session timeout of consumer group members that ask for none (1s..5m)")
	fs.DurationVar(&cfg.GroupHeartbeatInterval, "group-heartbeat-interval", coordinator.DefaultGroupHeartbeatInterval, "heartbeat interval told to consumer group members (at most a third of their session timeout)")
	fs.DurationVar(&cfg.GroupRebalanceTimeout, "group-rebalance-timeout", coordinator.DefaultGroupRebalanceTimeout, "how long a group member may keep a revoked partition before it is removed (1s..5m)")
	fs.DurationVar(&cfg.GroupSessionCheckInterval, "group-session-check-interval", coordinator.DefaultGroupSessionCheckInterval, "how often the leader looks for expired group sessions and rebalance timeouts")
	fs.DurationVar(&cfg.LagInterval, "lag-interval", coordinator.DefaultLagInterval, "how often the leader recomputes strata_coordinator_group_lag")
	var maxParts int
	fs.IntVar(&maxParts, "max-partitions-per-topic", meta.MaxPartitions, "most partitions a topic may be created with")
	fs.Int64Var(&cfg.DefaultRetentionMs, "default-retention-ms", coordinator.DefaultRetentionMs, "retention of topics created without one (-1: forever)")
	lc := &cfg.Lifecycle
	fs.DurationVar(&lc.Interval, "lifecycle-interval", lifecycle.DefaultInterval, "period of the retention, compaction and GC passes")
	fs.DurationVar(&lc.CompactMinAge, "compact-min-age", lifecycle.DefaultCompactMinAge, "entries younger than this are not compacted")
	fs.Int64Var(&lc.CompactEntryBytes, "compact-entry-bytes", lifecycle.DefaultCompactEntryBytes, "target size of a compacted segment entry")
	fs.Int64Var(&lc.CompactObjectBytes, "compact-object-bytes", lifecycle.DefaultCompactObjectBytes, "target size of a compacted segment object")
	fs.Int64Var(&lc.CompactBytesPerSec, "compact-bytes-per-sec", lifecycle.DefaultCompactBytesPerSec, "compaction throttle: bytes read per second, and apart from them bytes written per second, raised up to 8x while compaction is behind (-1: none)")
	fs.DurationVar(&lc.GCGrace, "gc-grace", lifecycle.DefaultGCGrace, "age and unreferenced time before an object is deleted")
	fs.DurationVar(&lc.GCInterval, "gc-interval", 0, "period of garbage collection passes (0: a tenth of -gc-grace, at least -lifecycle-interval)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "Prometheus /metrics listen address, e.g. :9472 (empty: none)")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env, err := common.Open(ctx, serverflags.OpenOptions{Internal: true, StoreOptional: true})
	if err != nil {
		return err
	}
	defer env.Close()
	if env.Store == nil {
		env.Log.Warn("no object store configured (-data-dir or -s3-bucket): retention, compaction and GC are off")
	}
	cfg.MaxPartitionsPerTopic = int32(max(-1, min(maxParts, meta.MaxPartitions+1))) // out of range fails Validate
	cfg.Meta, cfg.Store, cfg.Logger, cfg.Registry, cfg.TLS = env.Meta, env.Store, env.Log, env.Registry, env.TLS
	srv, err := coordinator.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
