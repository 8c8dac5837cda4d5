// Package serverflags binds the flags every Strata server shares — where
// etcd is, where objects go, where to log and serve metrics — to the
// configuration structs of pkg/meta and pkg/objstore, so that each
// cmd/*/main.go declares only its own flags.
package serverflags

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
)

// Meta registers the etcd flags and returns the config they fill.
func Meta(fs *flag.FlagSet) *meta.Config {
	c := &meta.Config{}
	fs.Func("etcd-endpoints", "comma-separated etcd client URLs (default http://127.0.0.1:2379)", func(s string) error {
		c.Endpoints = splitList(s)
		return nil
	})
	fs.StringVar(&c.Prefix, "etcd-prefix", meta.DefaultPrefix, "key prefix of this cluster in etcd")
	return c
}

// MetaDefaults fills what the flags left empty.
func MetaDefaults(c *meta.Config) {
	if len(c.Endpoints) == 0 {
		c.Endpoints = []string{"http://127.0.0.1:2379"}
	}
}

// Store registers the object-store flags and returns the config they fill.
func Store(fs *flag.FlagSet) *objstore.Config {
	c := &objstore.Config{}
	fs.StringVar(&c.Dir, "data-dir", "", "store objects in this local directory (instead of S3)")
	fs.StringVar(&c.S3.Bucket, "s3-bucket", "", "S3 bucket for segment objects")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", "", "S3 endpoint URL (empty: AWS)")
	fs.StringVar(&c.S3.Region, "s3-region", "", "S3 region")
	fs.StringVar(&c.S3.Prefix, "s3-prefix", "", "key prefix inside the bucket")
	fs.BoolVar(&c.S3.PathStyle, "s3-path-style", false, "path-style bucket addressing (MinIO)")
	fs.StringVar(&c.S3.AccessKeyID, "s3-access-key", "", "S3 access key (empty: AWS credential chain)")
	fs.StringVar(&c.S3.SecretAccessKey, "s3-secret-key", "", "S3 secret key")
	return c
}

// Log registers the log-level flag and returns a function that builds the
// logger once flags are parsed.
func Log(fs *flag.FlagSet) func() (*slog.Logger, error) {
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	return func() (*slog.Logger, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			return nil, fmt.Errorf("log-level %q: %w", *level, err)
		}
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
