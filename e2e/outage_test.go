package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

const outagePartitions = 12

// TestProxyOutage pins the idempotent producer's promise across outages
// of the only proxy (DESIGN invariant 7). Under a steady load of about
// 2,000 records/s over 12 partitions with the SDK's defaults, the proxy is
// killed (SIGKILL) and restarted after 3 s, after 15 s, after 45 s, and
// once together with a broker (kill -9), restarted after 15 s. The
// producer used to give up on its first request after MaxAttempts fast
// "connection refused" retries, report records failed that the broker had
// stored, and send the requests after it again under a new producer id —
// hundreds of values stored twice. Now: no value is stored twice, every
// record is acknowledged (all outages are shorter than the delivery
// timeout), and each partition takes acknowledgements again soon after the
// proxy is ready (the first within 500 ms: the SDK reconnects with a short
// backoff and sends its waiting requests as soon as the connection is up).
func TestProxyOutage(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	admin := c.Client(client.AdminAttempts(20))
	if _, err := admin.CreateTopic(ctx, "outage", outagePartitions); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })

	cl := c.Client() // SDK defaults
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(t, ctx, p, "outage", outagePartitions)
	waitFor(t, "first acknowledgements", func() bool { return load.ackedCount() >= 2000 })

	var lines []string
	firstAck := time.Duration(0)
	for _, o := range []struct {
		name   string
		down   time.Duration
		broker bool
	}{
		{"proxy down 3s", 3 * time.Second, false},
		{"proxy down 15s", 15 * time.Second, false},
		{"proxy down 45s", 45 * time.Second, false},
		{"proxy and broker-0 down, proxy back after 15s", 15 * time.Second, true},
	} {
		if o.broker {
			c.Brokers[0].Kill()
		}
		c.Proxy.Kill()
		t.Logf("fault: %s", o.name)
		time.Sleep(o.down) // the outage itself
		readyAt := restartProcess(t, c.Proxy, c.ProxyAddr)
		_, line := spread(load.waitRecovered(o.name, readyAt))
		firstAck = max(firstAck, minDuration(load.firstAcksAfter(readyAt)))
		lines = append(lines, fmt.Sprintf("%-48s first ack after ready %v; per partition: %s", o.name, minDuration(load.firstAcksAfter(readyAt)).Round(time.Millisecond), line))
		t.Log("recovered: " + lines[len(lines)-1])
		if o.broker {
			if err := c.Brokers[0].Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	summary := load.finish(ctx, cl, true)
	t.Logf("after the outages:\n  %s\n  %s", joinLines(lines), summary)
	if firstAck > 500*time.Millisecond {
		t.Errorf("first acknowledgement %v after the proxy was ready, want <= 500ms", firstAck)
	}
}

// minDuration returns the smallest of ds (0 if none).
func minDuration(ds map[int32]time.Duration) time.Duration {
	first := true
	var out time.Duration
	for _, d := range ds {
		if first || d < out {
			out, first = d, false
		}
	}
	return out
}

// addProxy starts one more proxy of c and returns it with its address;
// c.ProxyAddr stays the first proxy's.
func (c *Cluster) addProxy(name string) (*testenv.Process, string) {
	c.t.Helper()
	first := c.ProxyAddr
	p := c.start(name, "proxy", nil)
	addr := c.ProxyAddr
	c.ProxyAddr = first
	return p, addr
}

// TestTwoProxiesFailover runs the steady load through a client of two
// proxies ("a,b": the SDK spreads requests round-robin over both) and
// kills each proxy in turn (SIGKILL), restarting it before the other one
// goes. No partition may stall for more than a second — the requests in
// flight at the dead proxy are resent through the live one, which the
// brokers deduplicate — and nothing may be lost or stored twice.
func TestTwoProxiesFailover(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Brokers: 3})
	second, addr2 := c.addProxy("proxy-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin := c.Client(client.AdminAttempts(20))
	if _, err := admin.CreateTopic(ctx, "twoproxies", outagePartitions); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })
	cl, err := client.New(c.ProxyAddr + "," + addr2) // SDK defaults otherwise
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(t, ctx, p, "twoproxies", outagePartitions)
	waitFor(t, "first acknowledgements", func() bool { return load.ackedCount() >= 2000 })
	const window = 5 * time.Second
	baseline := time.Now()
	load.waitRecovered("baseline", baseline.Add(window))
	_, line := spread(load.maxGap(baseline, baseline.Add(window)))
	lines := []string{fmt.Sprintf("%-16s longest gap between acknowledgements per partition: %s", "no fault", line)}
	worst := time.Duration(0)
	for _, v := range []struct {
		name string
		p    *testenv.Process
		addr string
	}{{"kill -9 proxy-0", c.Proxy, c.ProxyAddr}, {"kill -9 proxy-1", second, addr2}} {
		killed := time.Now()
		v.p.Kill()
		t.Logf("fault: %s", v.name)
		load.waitRecovered(v.name, killed.Add(window))
		gap, line := spread(load.maxGap(killed, killed.Add(window)))
		worst = max(worst, gap)
		lines = append(lines, fmt.Sprintf("%-16s longest gap between acknowledgements per partition: %s", v.name, line))
		t.Log(lines[len(lines)-1])
		restartProcess(t, v.p, v.addr)
		// Let the client reconnect to it and load it before the other goes.
		n := load.ackedCount()
		waitFor(t, "load after the restart", func() bool { return load.ackedCount() >= n+4000 })
	}
	summary := load.finish(ctx, cl, true)
	t.Logf("two proxies:\n  %s\n  %s", joinLines(lines), summary)
	if worst > time.Second {
		t.Errorf("a partition stalled %v when a proxy died, want at most 1s", worst)
	}
}
