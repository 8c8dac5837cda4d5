package coordinator

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// countingListener counts the connections it accepted and can reset
// them while it keeps listening.
type countingListener struct {
	net.Listener
	n atomic.Int64

	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// resetConns closes every accepted connection.
func (l *countingListener) resetConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// fakeBroker serves gRPC (health only) on a free port and registers as
// broker id with a lease far longer than the test.
func fakeBroker(t *testing.T, store *meta.Store, id string) (*rpc.Server, *countingListener) {
	t.Helper()
	lis, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: lis}
	srv := rpc.NewServer(slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(srv.Stop)
	info := meta.BrokerInfo{ID: id, Addr: lis.Addr().String(), StartedAt: time.Now().UTC()}
	r, err := store.RegisterBroker(testCtx(t), info, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(testCtx(t)) })
	return srv, cl
}

// A broker whose process is gone (its connection closed, its port
// refusing) is evicted and its partitions reassigned at epoch + 1 long
// before its 60 s lease could expire; a broker whose connection is lost
// but whose port still accepts, and a registered address that was never
// reachable, are left alone.
func TestLivenessEvictsDeadBroker(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1")
	waitFor(t, "leader", c.IsLeader)
	v := startView(t, store)
	srv1, lis1 := fakeBroker(t, store, "b1")
	_, lis2 := fakeBroker(t, store, "b2")
	register(t, store, "b3") // 127.0.0.1:1: never reachable
	waitView(t, c.view, "three brokers", func() bool { return len(c.view.Brokers()) == 3 })
	resp, err := client(t, c).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "t", Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetTopic().GetId()
	waitView(t, v, "2/2/2", func() bool {
		o := owners(v, id)
		return o["b1"] == 2 && o["b2"] == 2 && o["b3"] == 2
	})
	waitFor(t, "leader connected to b1 and b2", func() bool { return lis1.n.Load() > 0 && lis2.n.Load() > 0 })

	// A lost connection to a broker whose port still accepts (a network
	// blip, a frozen process) evicts nothing: the leader probes, finds
	// the port open and connects again.
	lis2.resetConns()
	waitFor(t, "leader reconnected to b2", func() bool { return lis2.n.Load() >= 2 })
	if _, ok := c.view.Broker("b2"); !ok || owners(v, id)["b2"] != 2 || metricValue(t, c.metrics.evictions) != 0 {
		t.Fatalf("b2 evicted or moved after a lost connection to an open port: %v", owners(v, id))
	}

	start := time.Now()
	srv1.Stop() // closes the listener and the leader's connection: as kill -9
	waitView(t, v, "b1's partitions moved", func() bool { return owners(v, id)["b1"] == 0 })
	took := time.Since(start)
	t.Logf("b1's partitions reassigned %v after it stopped", took)
	if took > 5*time.Second {
		t.Errorf("reassignment took %v, want well under the 60 s lease", took)
	}
	if _, ok := v.Broker("b1"); ok {
		t.Error("b1 still registered after eviction")
	}
	for _, p := range v.Partitions() {
		if p.Epoch > 2 {
			t.Errorf("partition %d epoch %d, want at most 2", p.Partition, p.Epoch)
		}
	}
	waitFor(t, "eviction counted", func() bool { return metricValue(t, c.metrics.evictions) >= 1 })
	if got := metricValue(t, c.metrics.evictions); got != 1 {
		t.Errorf("evictions = %v, want 1 (b1 only; b3 was never reached)", got)
	}
	if _, ok := v.Broker("b3"); !ok {
		t.Error("unreachable b3 was evicted")
	}
}
