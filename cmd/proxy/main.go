// Command proxy runs a Strata proxy: the one address clients need. It routes
// produce requests to partition owners, serves fetches from object storage
// through its block cache and forwards admin calls to the coordinator
// leader; with --kafka-addr it also serves the Kafka protocol
// (docs/kafka.md). Every flag can also be set with a STRATA_* environment
// variable.
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
	"github.com/strata-mq/strata/pkg/cache"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/txn"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		slog.Error("proxy failed", "err", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	common := serverflags.Register(fs)
	cfg := proxy.Config{}
	finishSecurity := securityFlags(fs, &cfg)
	fs.StringVar(&cfg.ListenAddr, "listen-addr", proxy.DefaultListenAddr, "gRPC address clients connect to")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "HTTP address of /metrics and /healthz (empty: none)")
	fs.Int64Var(&cfg.Cache.MaxBytes, "cache-bytes", cache.DefaultMaxBytes, "size of the block cache in bytes")
	fs.Int64Var(&cfg.Cache.BlockSize, "cache-block-bytes", cache.DefaultBlockSize, "block size of the block cache in bytes")
	fs.DurationVar(&cfg.ProduceTimeout, "produce-timeout", proxy.DefaultProduceTimeout, "produce deadline, retries included, when the client sets none")
	fs.DurationVar(&cfg.ForwardTimeout, "forward-timeout", proxy.DefaultForwardTimeout, "bound on one attempt to forward a produce to the partition's owner (retried on the new owner when the partition moves)")
	fs.DurationVar(&cfg.AdminTimeout, "admin-timeout", proxy.DefaultAdminTimeout, "admin call deadline, retries included, when the client sets none")
	fs.DurationVar(&cfg.MaxFetchWait, "max-fetch-wait", proxy.DefaultMaxFetchWait, "cap on a fetch's long-poll wait")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", proxy.DefaultShutdownTimeout, "longest a graceful stop lets requests in flight finish")
	maxFetch := fs.Int("max-fetch-bytes", proxy.DefaultMaxFetchBytes, "cap on a fetch's byte budget")
	fs.DurationVar(&cfg.TailWindow, "tail-window", proxy.DefaultTailWindow, "age below which a segment entry is the tail: cached in the block cache's hot budget, apart from readers of older data")
	fs.IntVar(&cfg.TailBufferBytes, "tail-buffer-bytes", proxy.DefaultTailBufferBytes, "bytes of acknowledged batches kept to answer readers at the high watermark from memory (negative: none)")
	kcfg := kafka.Config{}
	fs.StringVar(&kcfg.Addr, "kafka-addr", "", "address of the Kafka protocol listener (empty: none)")
	fs.StringVar(&kcfg.AdvertisedAddr, "kafka-advertised-addr", "", "host:port Kafka clients are told to connect to (empty: the bound address)")
	fs.DurationVar(&kcfg.ConsumerSessionTimeout, "kafka-consumer-session-timeout", kafka.DefaultConsumerSessionTimeout, "session timeout of KIP-848 consumer group members (Kafka's group.consumer.session.timeout.ms)")
	fs.DurationVar(&kcfg.MaxTxnTimeout, "kafka-txn-max-timeout", txn.DefaultMaxTimeout, "longest transaction timeout a transactional producer may ask for (Kafka's transaction.max.timeout.ms)")
	fs.DurationVar(&kcfg.TxnIDExpiration, "kafka-txn-id-expiration", txn.DefaultIDExpiration, "how long a transactional id with no transaction open may go unused before it is deleted (Kafka's transactional.id.expiration.ms)")
	fs.BoolVar(&kcfg.AutoCreateTopics, "kafka-auto-create-topics", false, "create a topic that does not exist when a Kafka Metadata request names it (Kafka's auto.create.topics.enable)")
	fs.IntVar(&kcfg.MaxRequestBytes, "kafka-max-request-bytes", kafka.DefaultMaxRequestBytes, "largest Kafka request; a larger one closes its connection (Kafka's socket.request.max.bytes)")
	fs.IntVar(&kcfg.MaxQueuedRequestBytes, "kafka-max-queued-request-bytes", 0, "bytes of Kafka requests all connections may hold read and unanswered; a connection past it waits before reading (Kafka's queued.max.request.bytes; 0: 256 MiB, or -kafka-max-request-bytes if larger)")
	fs.IntVar(&kcfg.MaxControlRequestBytes, "kafka-max-control-request-bytes", kafka.DefaultMaxControlRequestBytes, "largest Kafka request other than Produce (a SyncGroup of many members, an OffsetCommit of many partitions)")
	fs.IntVar(&kcfg.AutoCreatePartitions, "kafka-num-partitions", kafka.DefaultAutoCreatePartitions, "partitions of a topic created by -kafka-auto-create-topics (Kafka's num.partitions)")
	flagenv.Usage(fs)
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	finishSecurity()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	env, err := common.Open(ctx, serverflags.OpenOptions{})
	if err != nil {
		return err
	}
	defer env.Close()
	cfg.Meta, cfg.Store, cfg.Logger, cfg.Registry, cfg.TLS = env.Meta, env.Store, env.Log, env.Registry, env.TLS
	cfg.MaxFetchBytes = int32(min(*maxFetch, 1<<30))
	if kcfg.Addr != "" {
		cfg.FrontEnds = append(cfg.FrontEnds, kafka.Attach(kcfg, nil))
	}
	srv, err := proxy.New(cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
