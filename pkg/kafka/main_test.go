package kafka_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/rpc"
)

// etcd is one real etcd server shared by the package's tests; each test
// works under a prefix of its own.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// cluster is a coordinator, a broker and a proxy with its Kafka front end,
// in this process, on the shared etcd under a fresh prefix.
type cluster struct {
	t     testing.TB
	ctx   context.Context
	meta  *meta.Store
	proxy *proxy.Server
	kafka *kafka.Server
	// reg is the proxy's metrics registry (the Kafka front end's too).
	reg *prometheus.Registry
}

// clusterOpts adjusts a test cluster before it starts.
type clusterOpts struct {
	store  objstore.Store // default: a filesystem store in a temp dir
	proxy  func(*proxy.Config)
	kafka  func(*kafka.Config)
	broker func(*broker.Config)
	// tls, if set, secures every server (the proxy dials brokers with
	// it too).
	tls *rpc.TLS
}

func startCluster(t testing.TB, o clusterOpts) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ms, err := meta.New(meta.Config{Endpoints: etcd.Endpoints(), Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	store := o.store
	if store == nil {
		if store, err = objstore.NewFS(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{t: t, ctx: ctx, meta: ms, reg: prometheus.NewRegistry()}
	co, err := coordinator.New(coordinator.Config{ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Logger: log, Registry: prometheus.NewRegistry(), TLS: o.tls})
	if err != nil {
		t.Fatal(err)
	}
	bcfg := broker.Config{ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Logger: log, Registry: prometheus.NewRegistry(), TLS: o.tls}
	if o.broker != nil {
		o.broker(&bcfg)
	}
	br, err := broker.New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := kafka.Config{Addr: "127.0.0.1:0"}
	if o.kafka != nil {
		o.kafka(&kcfg)
	}
	pcfg := proxy.Config{
		ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Logger: log, Registry: c.reg, TLS: o.tls,
		FrontEnds: []proxy.NewFrontEnd{kafka.Attach(kcfg, func(k *kafka.Server) { c.kafka = k })},
	}
	if o.proxy != nil {
		o.proxy(&pcfg)
	}
	if c.proxy, err = proxy.New(pcfg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface {
		Start(context.Context) error
		Ready() <-chan struct{}
		Close() error
	}{co, br, c.proxy} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		select {
		case <-s.Ready():
		case <-ctx.Done():
			t.Fatal("server never became ready")
		}
	}
	return c
}

// client returns a franz-go client of the cluster's Kafka listener.
func (c *cluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.kafka.Addr())}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through the Kafka protocol and waits until
// every partition has an owner, so produces do not wait for placement.
func (c *cluster) createTopic(name string, partitions int32) {
	c.t.Helper()
	adm := kadm.NewClient(c.client())
	resp, err := adm.CreateTopic(c.ctx, partitions, 1, nil, name)
	if err != nil {
		c.t.Fatalf("create topic %s: %v", name, err)
	}
	if resp.Err != nil {
		c.t.Fatalf("create topic %s: %v", name, resp.Err)
	}
	t, err := c.meta.GetTopic(c.ctx, name)
	if err != nil {
		c.t.Fatal(err)
	}
	for p := range partitions {
		for {
			st, err := c.meta.GetPartition(c.ctx, t.ID, p)
			if err == nil && st.Broker != "" {
				break
			}
			select {
			case <-c.ctx.Done():
				c.t.Fatalf("partition %d of %s never got an owner", p, name)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// gauge returns the value of an unlabelled gauge or counter of the
// proxy's registry.
func (c *cluster) gauge(name string) float64 {
	c.t.Helper()
	return testenv.Gathered(c.t, c.reg, name)
}

// rejections returns strata_kafka_limit_rejections_total{limit}.
func (c *cluster) rejections(limit string) float64 {
	c.t.Helper()
	return testenv.Gathered(c.t, c.reg, "strata_kafka_limit_rejections_total", "limit", limit)
}

// kafkaHostPort is the advertised host and port of the Kafka listener.
func (c *cluster) kafkaHostPort() (string, int32) {
	c.t.Helper()
	host, port, err := net.SplitHostPort(c.kafka.AdvertisedAddr())
	if err != nil {
		c.t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		c.t.Fatal(err)
	}
	return host, int32(p)
}
