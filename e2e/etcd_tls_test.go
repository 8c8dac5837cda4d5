package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestEtcdClientCertificatesKeepRogueBrokerOut runs etcd with TLS and
// client-certificate authentication by CA-1. Every Strata server reaches
// it with a CA-1 certificate; the broker gets its own through --etcd-ca,
// --etcd-cert and --etcd-key. A second broker process whose etcd
// certificate comes from CA-2 (trusting etcd's CA, so only its own
// certificate is at stake) exits at start-up naming the refusal, never
// registers, and never appears in the cluster's broker list, in etcd or
// in `strata cluster status`; records produced and consumed through the
// proxy all go through the CA-1 broker.
//
// The servers' gRPC stays plaintext here on purpose: the proxy would let
// the rogue broker in if it were a member, so etcd is the only guard this
// test exercises.
func TestEtcdClientCertificatesKeepRogueBrokerOut(t *testing.T) {
	dir := t.TempDir()
	ca1, err := tlsgen.NewCA("etcd-ca-1")
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca1.WriteIssued(dir, "broker-good", "broker-good")
	if err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, ClusterOptions{
		Brokers:    1,
		EtcdCA:     ca1,
		BrokerArgs: []string{"-etcd-ca", good.CA, "-etcd-cert", good.Cert, "-etcd-key", good.Key},
	})
	const goodID = "broker-0"

	ca2, err := tlsgen.NewCA("etcd-ca-2")
	if err != nil {
		t.Fatal(err)
	}
	rogueDir := filepath.Join(dir, "rogue")
	if err := os.Mkdir(rogueDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rogue, err := ca2.WriteIssued(rogueDir, "rogue", "broker-good") // same name, wrong CA
	if err != nil {
		t.Fatal(err)
	}
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	p, err := testenv.StartProcess(testenv.ProcessSpec{
		Name: "broker-rogue",
		Path: filepath.Join(c.bin, "broker"),
		Args: []string{"-listen-addr", addr, "-id", "rogue",
			"-etcd-ca", good.CA, "-etcd-cert", rogue.Cert, "-etcd-key", rogue.Key},
		Env:          c.env,
		LogDir:       c.dir,
		Ready:        testenv.GRPCServing(addr),
		ReadyTimeout: 30 * time.Second,
	})
	if err == nil {
		p.Kill()
		t.Fatal("the broker with a CA-2 etcd certificate became ready")
	}
	if !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("rogue broker: %v; want it to exit at start-up", err)
	}
	log, rerr := os.ReadFile(filepath.Join(c.dir, "broker-rogue.log"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"etcd refuses this server's TLS identity", "unknown certificate authority"} {
		if !bytes.Contains(log, []byte(want)) {
			t.Fatalf("rogue broker's log lacks %q:\n%s", want, log)
		}
	}
	t.Logf("rogue broker exited after %v: %s", time.Since(started).Round(time.Millisecond), bytes.TrimSpace(log))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// etcd holds exactly the good broker's registration.
	tlsCfg, err := c.Etcd.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := meta.New(meta.Config{Endpoints: c.Etcd.Endpoints(), Prefix: "/e2e", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	brokers, _, err := ms.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 1 || brokers[0].ID != goodID {
		t.Fatalf("brokers registered in etcd: %+v, want only %s", brokers, goodID)
	}

	cl := c.Client()
	const topic, parts, n = "guarded", 4, 400
	if _, err := cl.CreateTopic(ctx, topic, parts); err != nil {
		t.Fatal(err)
	}
	prod, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*client.Record
	for i := range n {
		recs = append(recs, &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%04d", i)})
	}
	if err := prod.ProduceSync(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if err := prod.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign(topic, 0, 1, 2, 3); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		got, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("consume after %d records: %v", len(seen), err)
		}
		for _, r := range got {
			seen[string(r.Value)] = true
		}
	}

	// Every partition is owned by the good broker, and the coordinator
	// knows no other broker.
	ti, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var hw int64
	for _, pi := range ti.PartitionInfo {
		if pi.Broker != goodID {
			t.Fatalf("partition %d owned by %q, want %s", pi.Partition, pi.Broker, goodID)
		}
		hw += pi.HighWatermark
	}
	if hw != n {
		t.Fatalf("high watermarks sum to %d, want %d", hw, n)
	}
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Brokers) != 1 || st.Brokers[0].ID != goodID || len(st.Brokers[0].Partitions) != parts {
		t.Fatalf("cluster status brokers: %+v, want only %s with %d partitions", st.Brokers, goodID, parts)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "strata"), "--server", c.ProxyAddr, "cluster", "status")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("strata cluster status: %v\n%s", err, stderr.Bytes())
	}
	if !bytes.Contains(out, []byte(goodID)) || bytes.Contains(out, []byte("rogue")) {
		t.Fatalf("strata cluster status shows:\n%s\nwant %s and no rogue", out, goodID)
	}
}
