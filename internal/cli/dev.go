package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/kafka"
)

var devCmd = &command{
	summary: "run a whole cluster in this process (embedded etcd, local object store)",
	setup: func(fs *flag.FlagSet) runFunc {
		cfg := dev.Config{}
		fs.StringVar(&cfg.Addr, "addr", dev.DefaultAddr, "address clients connect to")
		fs.StringVar(&cfg.KafkaAddr, "kafka-addr", kafka.DefaultAddr, `address Kafka clients connect to ("" turns the Kafka listener off)`)
		fs.StringVar(&cfg.DataDir, "data-dir", dev.DefaultDataDir, "directory for etcd's data and the segment objects")
		fs.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "store objects in this S3 bucket instead of --data-dir")
		fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 endpoint URL (empty: AWS)")
		fs.StringVar(&cfg.S3.Region, "s3-region", "", "S3 region")
		fs.BoolVar(&cfg.S3.PathStyle, "s3-path-style", false, "path-style bucket addressing (MinIO)")
		fs.StringVar(&cfg.S3.AccessKeyID, "s3-access-key", "", "S3 access key (empty: AWS credential chain)")
		fs.StringVar(&cfg.S3.SecretAccessKey, "s3-secret-key", "", "S3 secret key")
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
				if k := c.KafkaAddr(); k != "" {
					fmt.Fprintf(a.Stdout, "Kafka clients connect to %s (bootstrap.servers).\n", k)
				}
			})
		}
	},
}
