package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/kafka"
)

var devCmd = &command{
	summary: "run a whole cluster in this process (embedded etcd, local object store)",
	setup: func(fs *flag.FlagSet) runFunc {
		cfg := dev.Config{}
		fs.StringVar(&cfg.Addr, "addr", dev.DefaultAddr, "address clients connect to")
		fs.StringVar(&cfg.KafkaAddr, "kafka-addr", kafka.DefaultAddr, `address Kafka clients connect to ("" turns the Kafka listener off)`)
		fs.BoolVar(&cfg.KafkaAutoCreateTopics, "kafka-auto-create-topics", true, "create a topic that does not exist when a Kafka client's Metadata request names it, with one partition (Kafka's auto.create.topics.enable)")
		fs.StringVar(&cfg.DataDir, "data-dir", dev.DefaultDataDir, "directory for etcd's data and the segment objects")
		fs.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "store objects in this S3 bucket instead of --data-dir")
		fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 endpoint URL (empty: AWS)")
		fs.StringVar(&cfg.S3.Region, "s3-region", "", "S3 region")
		fs.BoolVar(&cfg.S3.PathStyle, "s3-path-style", false, "path-style bucket addressing (MinIO)")
		fs.BoolVar(&cfg.S3.CreateBucket, "s3-create-bucket", false, "create --s3-bucket if it does not exist (default: refuse to start)")
		fs.StringVar(&cfg.S3.AccessKeyID, "s3-access-key", "", "S3 access key (empty: AWS credential chain)")
		fs.StringVar(&cfg.S3.SecretAccessKey, "s3-secret-key", "", "S3 secret key")
		fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", broker.DefaultMaxRequestBytes, "largest produce request the broker accepts (bounds a topic's usable max message bytes)")
		fs.StringVar(&cfg.MetricsAddr, "metrics-addr", dev.DefaultMetricsAddr, "serve every role's /metrics and /healthz here (empty: off)")
		level := fs.String("log-level", "warn", "log level: debug, info, warn, error")
		sec := devSecurityFlags(fs, &cfg)
		return func(ctx context.Context, a *App, args []string) error {
			if err := exactArgs(args); err != nil {
				return err
			}
			var l slog.Level
			if err := l.UnmarshalText([]byte(*level)); err != nil {
				return usagef("--log-level %q: %v", *level, err)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: l}))
			if err := sec(a); err != nil {
				return err
			}
			c, err := dev.New(cfg)
			if err != nil {
				return err
			}
			return c.Run(ctx, func(addr string) {
				fmt.Fprintf(a.Stdout, "Strata is running (data in %s). Clients connect to %s; stop with Ctrl-C.\n", cfg.DataDir, addr)
				if m := c.MetricsAddr(); m != "" {
					fmt.Fprintf(a.Stdout, "Metrics: %s/metrics (health: %s/healthz)\n", m, m)
				}
				if k := c.KafkaAddr(); k != "" {
					fmt.Fprintf(a.Stdout, "Kafka clients connect to %s (bootstrap.servers).\n", k)
				}
			})
		}
	},
}
