package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/rpc"
)

// bucket is the MinIO bucket every test cluster writes to.
const bucket = "strata-e2e"

// Cluster is a Strata cluster of real processes.
type Cluster struct {
	t     testing.TB
	dir   string
	bin   string
	env   []string
	Etcd  *testenv.Etcd
	MinIO *testenv.MinIO

	Coordinators []*testenv.Process
	Brokers      []*testenv.Process
	Proxy        *testenv.Process
	// ProxyAddr is the address clients use.
	ProxyAddr string
	// brokerArgs are the extra broker flags, for AddBroker.
	brokerArgs []string
	// tls is the servers' TLS (ClusterOptions.TLS) for readiness checks.
	tls *rpc.TLS
	// BrokerMetrics are the brokers' metrics addresses, in the order of
	// Brokers, when ClusterOptions.BrokerMetrics is set.
	BrokerMetrics []string
}

// ClusterOptions shapes a cluster.
type ClusterOptions struct {
	Coordinators int // default 1
	Brokers      int // default 2
	// BrokerArgs are extra flags for every broker.
	BrokerArgs []string
	// CoordinatorArgs are extra flags for every coordinator.
	CoordinatorArgs []string
	// TLS, if set, runs every server with this certificate, key and CA
	// (STRATA_TLS_*): brokers and coordinators then require client
	// certificates (mutual TLS), the proxy verifies them when given.
	// Readiness checks present the same certificate.
	TLS *tlsgen.Files
	// ProxyArgs are extra flags for the proxy.
	ProxyArgs []string
	// BrokerMetrics gives every broker a metrics address of its own
	// (Cluster.BrokerMetrics).
	BrokerMetrics bool
	// Env are extra STRATA_* variables for every server.
	Env []string
	// EtcdCA, if set, runs etcd with TLS that requires client
	// certificates of this CA (testenv.NewEtcdTLS) and gives every server
	// etcd's client certificate (STRATA_ETCD_CA, _CERT, _KEY); flags such
	// as --etcd-cert in the *Args override it per server.
	EtcdCA *tlsgen.CA
}

// StartCluster builds the binaries and starts MinIO, etcd, the
// coordinators, the brokers and a proxy, each waited on until ready. Every
// process is killed when the test ends.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Coordinators == 0 {
		opts.Coordinators = 1
	}
	if opts.Brokers == 0 {
		opts.Brokers = 2
	}
	bin, err := testenv.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, dir: t.TempDir(), bin: bin}
	if opts.EtcdCA != nil {
		c.Etcd = testenv.StartEtcdTLS(t, opts.EtcdCA)
	} else {
		c.Etcd = testenv.StartEtcd(t)
	}
	c.MinIO = testenv.StartMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.MinIO.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	// Every server reads the shared settings from the environment.
	c.env = []string{
		"STRATA_ETCD_ENDPOINTS=" + c.Etcd.Endpoint,
		"STRATA_ETCD_PREFIX=/e2e",
		"STRATA_S3_BUCKET=" + bucket,
		"STRATA_S3_ENDPOINT=" + c.MinIO.Endpoint,
		"STRATA_S3_REGION=" + testenv.MinIORegion,
		"STRATA_S3_PATH_STYLE=true",
		"STRATA_S3_ACCESS_KEY=" + testenv.MinIOAccessKey,
		"STRATA_S3_SECRET_KEY=" + testenv.MinIOSecretKey,
		"STRATA_LOG_LEVEL=info",
	}
	if f := c.Etcd.ClientTLS; f != nil {
		c.env = append(c.env, "STRATA_ETCD_CA="+f.CA, "STRATA_ETCD_CERT="+f.Cert, "STRATA_ETCD_KEY="+f.Key)
	}
	c.env = append(c.env, opts.Env...)
	if opts.TLS != nil {
		c.env = append(c.env, "STRATA_TLS_CERT="+opts.TLS.Cert, "STRATA_TLS_KEY="+opts.TLS.Key, "STRATA_TLS_CA="+opts.TLS.CA)
		if c.tls, err = rpc.LoadTLS(rpc.TLSConfig{CertFile: opts.TLS.Cert, KeyFile: opts.TLS.Key, CAFile: opts.TLS.CA}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range opts.Coordinators {
		c.Coordinators = append(c.Coordinators, c.start(fmt.Sprintf("coordinator-%d", i), "coordinator",
			append([]string{"-id", fmt.Sprintf("coordinator-%d", i)}, opts.CoordinatorArgs...)))
	}
	for i := range opts.Brokers {
		args := append([]string{"-id", fmt.Sprintf("broker-%d", i)}, opts.BrokerArgs...)
		if opts.BrokerMetrics {
			m := metricsAddr(t)
			c.BrokerMetrics = append(c.BrokerMetrics, m)
			args = append(args, "-metrics-addr", m)
		}
		c.Brokers = append(c.Brokers, c.start(fmt.Sprintf("broker-%d", i), "broker", args))
	}
	c.brokerArgs = opts.BrokerArgs
	c.Proxy = c.start("proxy", "proxy", opts.ProxyArgs)
	return c
}

// AddBroker starts one more broker with the given ID, the cluster's broker
// flags and extra flags (which win over the cluster's), waits until it
// serves, and appends it to Brokers.
func (c *Cluster) AddBroker(id string, extra ...string) *testenv.Process {
	c.t.Helper()
	args := append(append([]string{"-id", id}, c.brokerArgs...), extra...)
	p := c.start(id, "broker", args)
	c.Brokers = append(c.Brokers, p)
	return p
}

// start runs one server binary on a free port and waits until its gRPC
// health check says SERVING.
func (c *Cluster) start(name, binary string, args []string) *testenv.Process {
	c.t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := testenv.StartProcess(testenv.ProcessSpec{
		Name:   name,
		Path:   filepath.Join(c.bin, binary),
		Args:   append([]string{"-listen-addr", addr}, args...),
		Env:    c.env,
		LogDir: c.dir,
		Ready:  c.ready(addr),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(p.Kill)
	c.t.Cleanup(func() {
		if c.t.Failed() { // the servers' own account, for a failure seen only in CI
			c.t.Logf("%s log, last 16 KiB:\n%s", name, p.LogTailN(16<<10))
		}
	})
	if binary == "proxy" {
		c.ProxyAddr = addr
	}
	return p
}

// Client returns an SDK client of the proxy, closed when the test ends.
func (c *Cluster) Client(opts ...client.Opt) *client.Client {
	c.t.Helper()
	cl, err := client.New(c.ProxyAddr, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// ready is the readiness check of a server at addr: plaintext, or TLS
// with the cluster's certificate.
func (c *Cluster) ready(addr string) func(context.Context) error {
	if c.tls != nil {
		return testenv.GRPCServingTLS(addr, c.tls)
	}
	return testenv.GRPCServing(addr)
}
