//go:build cgo

package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client"
)

// TestKafkaClientsFailover runs the idempotent producers of Sarama and
// librdkafka side by side through the Kafka port, each about 2,000
// records/s into its own topic, while one broker is killed (SIGKILL) and
// another frozen (SIGSTOP) until the coordinator has moved its partitions,
// then woken — the frozen broker still holds requests it took before the
// freeze. Kafka's leader elections look the same to these clients, which
// retry with the same producer id and sequence numbers. Afterwards each
// topic is read back: no record failed, every acknowledged record is
// stored once at its acknowledged offset (checker), and no value is
// stored twice. franz-go's producer is run through the same faults by
// TestKafkaFailover.
func TestKafkaClientsFailover(t *testing.T) {
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin := c.Client(client.AdminAttempts(20))
	for _, topic := range []string{"failover-sarama", "failover-librdkafka"} {
		kgoCreateTopic(t, ctx, addr, topic, 6)
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })
	loads := []*kafkaLoad{startSaramaLoad(t, ctx, addr, "failover-sarama"), startLibrdkafkaLoad(t, addr, "failover-librdkafka")}
	waitAcked := func(what string) {
		t.Helper()
		want := make([]int, len(loads))
		for i, l := range loads {
			want[i] = l.ackedCount() + 1000
		}
		waitFor(t, what, func() bool {
			for i, l := range loads {
				if l.ackedCount() < want[i] {
					return false
				}
			}
			return true
		})
	}
	waitAcked("first acknowledgements")

	c.Brokers[0].Kill()
	waitStatus(t, ctx, admin, "broker-0's partitions moved", func(st *client.ClusterStatus) bool {
		return !live(st, "broker-0") && len(st.Unassigned) == 0
	})
	waitAcked("acknowledgements after the kill")

	if err := c.Brokers[1].Pause(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	waitStatus(t, ctx, admin, "broker-1's partitions moved", func(st *client.ClusterStatus) bool {
		return !live(st, "broker-1") && len(st.Unassigned) == 0
	})
	t.Logf("broker-1's partitions moved %v after it froze", time.Since(frozen).Round(time.Millisecond))
	waitAcked("acknowledgements with broker-1 frozen")
	if err := c.Brokers[1].Resume(); err != nil {
		t.Fatal(err)
	}
	waitAcked("acknowledgements after broker-1 woke")

	// The only proxy is killed and comes back on the same address 15 s
	// later: longer than Sarama's retries here (30 × 250 ms), shorter
	// than librdkafka's (message.timeout.ms, 5 min).
	c.Proxy.Kill()
	time.Sleep(15 * time.Second) // the outage itself
	restartProcess(t, c.Proxy, c.ProxyAddr)
	waitAcked("acknowledgements after the proxy came back")

	for _, l := range loads {
		t.Logf("%s: %s", l.client, l.finish(t, ctx, addr, admin, l.client == "librdkafka"))
	}
}
