package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// outageBudget is the producers' delivery timeout in TestDependencyOutages;
// every outage there lasts longer.
const outageBudget = 8 * time.Second

// TestDependencyOutages pins "nothing lost, nothing twice" (invariants 2
// and 7) across outages of etcd and MinIO, each longer than the
// producers' delivery timeout: etcd frozen (SIGSTOP; its leases expire
// when it wakes, so every broker loses its session) and killed (SIGKILL,
// restarted: etcd keeps the leases, and the servers must not wait them
// out), then MinIO killed and frozen. Two idempotent producers run throughout,
// the SDK's and franz-go's through the Kafka port, each with an 8 s
// delivery timeout, so records fail during every outage. Afterwards each
// topic is read back: every acknowledged record once at its acknowledged
// offset (checker), offsets dense, no value stored twice, no record the
// SDK reported as failed (rather than ErrUnknownOutcome) stored, and
// every partition takes writes again after each outage. The times are
// logged: under 2 s after etcd or MinIO is back, with race-enabled
// servers too
// (brokers and the coordinator used to wait out their own leases, which
// etcd keeps across its restart, 13-18 s; requests ahead of a predecessor
// failed by a reset each waited a 2 s gap wait, 8-48 s).
func TestDependencyOutages(t *testing.T) {
	c, kafkaAddr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	admin := c.Client(client.AdminAttempts(20))
	const parts = 4
	for _, topic := range []string{"dep-sdk", "dep-kafka"} {
		if _, err := admin.CreateTopic(ctx, topic, parts); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })

	cl := c.Client()
	p, err := cl.NewProducer(client.DeliveryTimeout(outageBudget))
	if err != nil {
		t.Fatal(err)
	}
	sdk := startLoad(t, ctx, p, "dep-sdk", parts)
	kafka := startFranzLoad(t, ctx, kgoClient(t, kafkaAddr, kgo.RecordDeliveryTimeout(outageBudget)), "dep-kafka")
	waitFor(t, "first acknowledgements", func() bool { return sdk.ackedCount() >= 1000 && kafka.ackedCount() >= 1000 })

	type outage struct {
		name  string
		proc  *testenv.Process
		pause bool // SIGSTOP and SIGCONT; otherwise SIGKILL and a restart
	}
	outages := []outage{
		{"etcd frozen", c.Etcd.Process, true}, {"etcd killed", c.Etcd.Process, false},
		{"MinIO killed", c.MinIO.Process, false}, {"MinIO frozen", c.MinIO.Process, true},
	}
	down := outageBudget + 7*time.Second
	for _, o := range outages {
		t.Logf("fault: %s for %v", o.name, down)
		outageOf(t, o.proc, o.pause, down)
		back := time.Now()
		d := sdk.waitRecovered(o.name, back)
		k := kafka.waitRecovered(t, o.name, back)
		_, line := spread(d)
		t.Logf("recovered after %s: SDK's first acknowledgement %v, franz-go's %v; SDK per partition: %s", o.name, minDuration(d).Round(time.Millisecond), k.Round(time.Millisecond), line)
	}
	t.Log("SDK: " + sdk.finish(ctx, cl, false))
	t.Log("franz-go: " + kafka.finish(t, ctx, kafkaAddr, cl, false))
}

// outageOf takes p away for down: frozen (SIGSTOP, then SIGCONT) when
// pause, otherwise killed (SIGKILL) and started again.
func outageOf(t *testing.T, p *testenv.Process, pause bool, down time.Duration) {
	t.Helper()
	if pause {
		if err := p.Pause(); err != nil {
			t.Fatal(err)
		}
	} else {
		p.Kill()
	}
	time.Sleep(down) // the outage itself
	if pause {
		if err := p.Resume(); err != nil {
			t.Fatal(err)
		}
	} else if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}
