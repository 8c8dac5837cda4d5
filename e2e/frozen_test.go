package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// TestFrozenBrokerUnderLoad SIGSTOPs a broker that owns partitions while
// a producer with the SDK's defaults (30 s request timeout) writes about
// 2,000 records/s to 12 partitions. The proxy's forwards to the frozen
// owner must not hold those partitions until the SDK's request timeout:
// each forward ends when the partition moves (the lease expires and the
// coordinator gives it to a live broker) or at the proxy's forward
// timeout, and is retried at once on the new owner with the same producer
// id and sequences. Every partition must take acknowledgements again well
// before the request timeout, and after the broker is resumed (a zombie
// whose commits are fenced) nothing may be lost or stored twice.
func TestFrozenBrokerUnderLoad(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin := c.Client(client.AdminAttempts(20))
	if _, err := admin.CreateTopic(ctx, "frozen", outagePartitions); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return balanced(st) })

	cl := c.Client() // SDK defaults: a 30 s request timeout
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(t, ctx, p, "frozen", outagePartitions)
	waitFor(t, "first acknowledgements", func() bool { return load.ackedCount() >= 2000 })

	if err := c.Brokers[0].Pause(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	t.Log("fault: SIGSTOP broker-0")
	waitStatus(t, ctx, admin, "broker-0's partitions moved", func(st *client.ClusterStatus) bool {
		return !live(st, "broker-0") && len(st.Unassigned) == 0
	})
	moved := time.Now()
	worst, line := spread(load.waitRecovered("SIGSTOP broker-0", frozen))
	gap, gapLine := spread(load.maxGap(frozen, time.Now()))
	t.Logf("partitions moved after %v; acknowledgements again after the freeze: %s; longest gap per partition: %s",
		moved.Sub(frozen).Round(time.Millisecond), line, gapLine)
	if err := c.Brokers[0].Resume(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, admin, "broker-0 registered again", func(st *client.ClusterStatus) bool { return live(st, "broker-0") && balanced(st) })
	t.Log(load.finish(ctx, cl, true))
	// The lease (5 s) and the move bound the stall; the SDK's 30 s request
	// timeout must not.
	if limit := moved.Sub(frozen) + 5*time.Second; worst > limit || gap > limit {
		t.Errorf("a partition stalled %v (longest gap %v) after the freeze; the move took %v, want at most %v", worst, gap, moved.Sub(frozen), limit)
	}
}

// TestProxyStopsWithFrozenBroker SIGTERMs the proxy while a produce waits
// on a frozen (SIGSTOP) broker. The proxy lets requests in flight finish
// for its shutdown timeout (1 s), then cuts them off: it must exit within
// 2 s, not when the forward times out.
func TestProxyStopsWithFrozenBroker(t *testing.T) {
	metrics := metricsAddr(t)
	c := StartCluster(t, ClusterOptions{Brokers: 1, ProxyArgs: []string{"-metrics-addr", metrics}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.Client(client.AdminAttempts(20))
	if _, err := cl.CreateTopic(ctx, "held", 1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, "the partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 && owned(st, "broker-0") == 1 })
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // its record cannot be delivered any more: give up on it
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_ = p.Close(cctx)
	}()
	if err := p.ProduceSync(ctx, &client.Record{Topic: "held", Partition: 0, Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Brokers[0].Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Brokers[0].Resume() }()
	p.Produce(ctx, &client.Record{Topic: "held", Partition: 0, Value: []byte("held")}, func(*client.Record, error) {})
	waitFor(t, "the produce at the proxy", func() bool {
		return scrape(t, "http://"+metrics+"/metrics")["strata_proxy_produce_in_flight"] > 0
	})
	start := time.Now()
	c.Proxy.Stop()
	took := time.Since(start)
	t.Logf("proxy stopped %v after SIGTERM with a produce waiting on a frozen broker", took.Round(time.Millisecond))
	if took > stopWithin {
		t.Errorf("proxy took %v to stop, want under %v; log:\n%s", took, stopWithin, c.Proxy.LogTail())
	}
}
