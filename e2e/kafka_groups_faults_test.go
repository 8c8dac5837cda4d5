//go:build cgo

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
)

// TestKafkaGroupsThroughFaults runs three consumer groups side by side —
// Sarama's (classic protocol), librdkafka's with the classic protocol and
// librdkafka's with KIP-848 (group.protocol=consumer) — two members each,
// every group on its own topic, while the coordinator leader is killed
// (SIGKILL; the standby takes the groups over from etcd), a broker is
// killed, the only proxy is killed and started again 5 s later, and etcd
// is killed for 12 s, longer than the members' sessions.
// Records are produced after each fault. Every group must read every
// acknowledged record of its topic at its offset (checker; at least once)
// and commit up to the end: zero lag, the group empty once its members
// leave.
func TestKafkaGroupsThroughFaults(t *testing.T) {
	const (
		partitions = 4
		batch      = 5000 // records per topic per phase
	)
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2, Coordinators: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type group struct {
		name    string
		join    func(topic string, reads *groupReads) groupMember
		chk     *checker.Checker
		reads   *groupReads
		members []groupMember
	}
	groups := []*group{
		{name: "sarama", join: func(topic string, reads *groupReads) groupMember {
			return startSaramaMember(t, ctx, addr, "faults-sarama", topic, reads, true)
		}},
		{name: "rdk-classic", join: func(topic string, reads *groupReads) groupMember {
			return startRdkMember(t, ctx, rdkGroupConfig(addr, "faults-rdk-classic", "classic", rdkClassic), topic, reads)
		}},
		{name: "rdk-consumer", join: func(topic string, reads *groupReads) groupMember {
			return startRdkMember(t, ctx, rdkGroupConfig(addr, "faults-rdk-consumer", "consumer", nil), topic, reads)
		}},
	}
	producer := kgoClient(t, addr)
	produced := 0
	produce := func(tag string) {
		t.Helper()
		for _, g := range groups {
			kgoProduceAll(t, ctx, producer, g.chk, "faults-"+g.name, tag, batch)
		}
		produced += batch
	}
	for _, g := range groups {
		g.chk, g.reads = checker.New(), newGroupReads()
		kgoCreateTopic(t, ctx, addr, "faults-"+g.name, partitions)
	}
	produce("first")
	for _, g := range groups {
		g.members = []groupMember{g.join("faults-"+g.name, g.reads), g.join("faults-"+g.name, g.reads)}
	}
	waitAllRead := func(what string) {
		t.Helper()
		for _, g := range groups {
			rctx, cancel := context.WithTimeout(ctx, phaseTimeout)
			waitReads(t, rctx, g.reads, produced)
			cancel()
		}
		t.Logf("every group read %d records: %s", produced, what)
	}
	waitAllRead("before the faults")

	leader := coordinatorLeader(t, ctx, c)
	c.Coordinators[leader].Kill()
	produce("after-coordinator")
	waitAllRead("after the coordinator leader's kill")

	c.Brokers[0].Kill()
	produce("after-broker")
	waitAllRead("after broker-0's kill")

	c.Proxy.Kill()
	time.Sleep(5 * time.Second) // the outage itself
	restartProcess(t, c.Proxy, c.ProxyAddr)
	produce("after-proxy")
	waitAllRead("after the proxy's restart")

	// etcd away for longer than the members' sessions (10 s): no commit,
	// join or heartbeat can be stored meanwhile, and the coordinator's
	// session and the brokers' leases end.
	c.Etcd.Kill()
	time.Sleep(12 * time.Second) // the outage itself
	if err := c.Etcd.Start(); err != nil {
		t.Fatal(err)
	}
	produce("after-etcd")
	waitAllRead("after etcd's restart")

	for _, g := range groups {
		if lag := waitLagZero(t, ctx, c, "faults-"+g.name); lag != "" {
			t.Errorf("group %s still lags:%s", g.name, lag)
		}
	}
	for _, g := range groups {
		for _, m := range g.members {
			m.close(t)
		}
		dups := g.reads.feed(g.chk)
		rep := g.chk.Verify(0)
		t.Logf("%s: %v; %d records read more than once", g.name, rep, dups)
		if !rep.OK() || rep.Acked != produced {
			t.Errorf("%s: %v (want %d acknowledged)", g.name, rep, produced)
		}
		checkGroupCaughtUp(t, ctx, c, "faults-"+g.name, partitions)
	}
}
