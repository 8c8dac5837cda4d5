package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
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
}

// ClusterOptions shapes a cluster.
type ClusterOptions struct {
	Coordinators int // default 1
	Brokers      int // default 2
	// BrokerArgs are extra flags for every broker.
	BrokerArgs []string
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
	c.Etcd = testenv.StartEtcd(t)
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
	for i := range opts.Coordinators {
		c.Coordinators = append(c.Coordinators, c.start(fmt.Sprintf("coordinator-%d", i), "coordinator", nil))
	}
	for i := range opts.Brokers {
		c.Brokers = append(c.Brokers, c.start(fmt.Sprintf("broker-%d", i), "broker",
			append([]string{"-id", fmt.Sprintf("broker-%d", i)}, opts.BrokerArgs...)))
	}
	c.Proxy = c.start("proxy", "proxy", nil)
	return c
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
		Ready:  testenv.GRPCServing(addr),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(p.Kill)
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
