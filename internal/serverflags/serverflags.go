// Package serverflags binds the flags every Strata server shares — where
// etcd is, where objects go, how to log, which certificates to use — and
// turns them into the Env every server starts from (logger, metrics
// registry, metadata store, object store, TLS), so that each
// cmd/*/main.go declares only its own flags.
package serverflags

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
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
	fs.BoolVar(&c.S3.CreateBucket, "s3-create-bucket", false, "create the S3 bucket at start if it does not exist (default: refuse to start)")
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

// Common is the set of flags every server registers: etcd, object store,
// logging, TLS and CPU profiling.
type Common struct {
	meta       *meta.Config
	store      *objstore.Config
	newLogger  func() (*slog.Logger, error)
	tls        *Security
	cpuProfile *string
}

// Register registers the shared flags on fs.
func Register(fs *flag.FlagSet) *Common {
	c := &Common{meta: Meta(fs), store: Store(fs), newLogger: Log(fs), tls: TLS(fs)}
	c.cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file, for go tool pprof (written at exit)")
	return c
}

// Env is what every server process builds from the shared flags.
type Env struct {
	// Log is the process's logger.
	Log *slog.Logger
	// Registry holds the Go and process collectors and receives every
	// server metric; serve it with the server's -metrics-addr.
	Registry *prometheus.Registry
	// Meta is the etcd metadata store.
	Meta *meta.Store
	// Store is the instrumented object store; nil when none is configured
	// and the caller allowed that.
	Store objstore.Store
	// TLS is the process's certificate for its listener and its dials to
	// other Strata servers (with the trust domain of server identities,
	// --tls-trust-domain); nil for plaintext.
	TLS *rpc.TLS
	// profile is the -cpuprofile file being written, if any; Close ends it.
	profile *os.File
}

// OpenOptions says what kind of server Open builds the Env for.
type OpenOptions struct {
	// Internal: the server's callers are Strata's own processes (brokers,
	// coordinators), which must then present client certificates when TLS
	// is on. Proxies, which clients call, leave it false.
	Internal bool
	// StoreOptional lets the server run without an object store (the
	// coordinator, whose lifecycle work then stays off).
	StoreOptional bool
}

// Open builds the Env once the flags are parsed.
func (c *Common) Open(ctx context.Context, opts OpenOptions) (*Env, error) {
	internal, storeOptional := opts.Internal, opts.StoreOptional
	log, err := c.newLogger()
	if err != nil {
		return nil, err
	}
	env := &Env{Log: log, Registry: prometheus.NewRegistry()}
	if env.profile, err = startCPUProfile(*c.cpuProfile); err != nil {
		return nil, err
	}
	env.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	MetaDefaults(c.meta) // before Apply: etcd's certificate is verified against the endpoints' hosts
	if env.TLS, err = c.tls.Apply(c.meta, c.store, internal); err != nil {
		env.Close()
		return nil, fmt.Errorf("tls: %w", err)
	}
	if err := CheckEtcd(c.meta); err != nil {
		env.Close()
		return nil, err
	}
	c.meta.Logger, c.meta.Registerer = log, env.Registry
	if env.Meta, err = meta.New(*c.meta); err != nil {
		env.Close()
		return nil, err
	}
	if storeOptional && c.store.Dir == "" && c.store.S3.Bucket == "" {
		return env, nil
	}
	store, err := objstore.Open(ctx, *c.store)
	if err != nil {
		env.Close()
		return nil, err
	}
	env.Store = objstore.Instrument(store, env.Registry)
	return env, nil
}

// Close closes the metadata store and ends the CPU profile.
func (e *Env) Close() {
	if e.Meta != nil {
		e.Meta.Close()
	}
	if e.profile != nil {
		pprof.StopCPUProfile()
		if err := e.profile.Close(); err != nil {
			e.Log.Error("cpu profile", "err", err)
		}
		e.profile = nil
	}
}

// startCPUProfile starts writing a CPU profile to path; an empty path
// profiles nothing.
func startCPUProfile(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile %s: %w", path, err)
	}
	return f, nil
}
