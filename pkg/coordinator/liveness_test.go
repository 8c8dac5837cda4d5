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
func fakeBroker(t *testing.T, store *meta.Store, id string) (*rpc.Server, *countingListener, meta.BrokerInfo) {
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
	return srv, cl, info
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
	srv1, lis1, _ := fakeBroker(t, store, "b1")
	_, lis2, _ := fakeBroker(t, store, "b2")
	// 127.0.0.1:1: never reachable. Its lease is as long as the others',
	// so that only an eviction, not a keepalive starved on a busy machine,
	// could end its registration before the test looks.
	b3, err := store.RegisterBroker(ctx, meta.BrokerInfo{ID: "b3", Addr: "127.0.0.1:1"}, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b3.Close(testCtx(t)) })
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
	if _, ok := c.view.Broker("b2"); !ok || owners(v, id)["b2"] != 2 || testenv.MetricValue(t, c.metrics.evictions) != 0 {
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
	// Placement may move them (b1 is marked unreachable) before the
	// revoke of b1's lease applies.
	waitView(t, v, "b1's registration revoked", func() bool { _, ok := v.Broker("b1"); return !ok })
	for _, p := range v.Partitions() {
		if p.Epoch > 2 {
			t.Errorf("partition %d epoch %d, want at most 2", p.Partition, p.Epoch)
		}
	}
	waitFor(t, "eviction counted", func() bool { return testenv.MetricValue(t, c.metrics.evictions) >= 1 })
	if got := testenv.MetricValue(t, c.metrics.evictions); got != 1 {
		t.Errorf("evictions = %v, want 1 (b1 only; b3 was never reached)", got)
	}
	if _, ok := v.Broker("b3"); !ok {
		t.Error("unreachable b3 was evicted")
	}
}

// A broker that is alive but cut off — its address refuses the leader's
// connections while it still reaches etcd — registers again at once after
// its eviction, under the same start time. Placement must pass it over
// while the cut lasts: none of its partitions stay with it, and it gets no
// new ones. Once the leader reaches it again, it takes partitions again.
func TestLivenessPassesOverCutOffBroker(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1")
	waitFor(t, "leader", c.IsLeader)
	v := startView(t, store)
	srv1, cl1, b1 := fakeBroker(t, store, "b1")
	fakeBroker(t, store, "b2")
	// Both must be in the leader's view before the first topic, or
	// placement may give all four partitions to b1.
	waitView(t, c.view, "two brokers", func() bool { return len(c.view.Brokers()) == 2 })
	topic := func(name string) string {
		resp, err := client(t, c).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: name, Partitions: 4})
		if err != nil {
			t.Fatal(err)
		}
		id := resp.GetTopic().GetId()
		waitView(t, v, name+" placed", func() bool { o := owners(v, id); return o["b1"]+o["b2"] == 4 })
		return id
	}
	first := topic("first")
	waitFor(t, "leader connected to b1", func() bool { return cl1.n.Load() > 0 })
	if o := owners(v, first); o["b1"] != 2 {
		t.Fatalf("b1 owns %d partitions of 4, want 2", o["b1"])
	}

	srv1.Stop() // b1's port refuses from now on
	waitView(t, v, "b1 evicted", func() bool { _, ok := v.Broker("b1"); return !ok })
	var (
		r   *meta.Registration
		err error
	)
	for r == nil { // b1 is alive: it registers again as soon as its lease is gone
		if r, err = store.RegisterBroker(ctx, b1, 60*time.Second); err != nil && ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { r.Close(testCtx(t)) })
	waitView(t, v, "b1 registered again and its partitions moved", func() bool {
		_, ok := v.Broker("b1")
		return ok && owners(v, first)["b1"] == 0
	})
	if got := testenv.MetricValue(t, c.metrics.unreachable); got != 1 {
		t.Errorf("unreachable brokers = %v, want 1", got)
	}
	if o := owners(v, topic("second")); o["b1"] != 0 {
		t.Errorf("cut-off b1 got %d partitions of a new topic", o["b1"])
	}

	// The cut heals: b1 serves on its address again.
	lis, err := rpc.Listen(b1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(slog.New(slog.DiscardHandler))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	waitFor(t, "b1 reachable again", func() bool { return testenv.MetricValue(t, c.metrics.unreachable) == 0 })
	third := topic("third")
	if o := owners(v, third); o["b1"] == 0 {
		t.Errorf("b1 got none of a new topic's partitions after the leader reached it again: %v", o)
	}
}
