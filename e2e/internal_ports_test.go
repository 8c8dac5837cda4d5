package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestInternalPortsRefuseClients pins issue 17: with TLS, ACLs and
// client-certificate authentication on, a certificate of the cluster's CA
// that is not a server's used to open the coordinator's and the brokers'
// ports directly, bypassing every ACL. Now each such call is refused with
// PERMISSION_DENIED and nothing changes in etcd or the object store; the
// same calls through the proxy by that principal (no grants) are denied;
// a principal with only a token cannot even complete a handshake with an
// internal port; and the servers, whose certificates carry their
// identities, still produce and consume end to end.
func TestInternalPortsRefuseClients(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("e2e-ca")
	if err != nil {
		t.Fatal(err)
	}
	// One certificate for every server, naming all three roles (like the
	// chart's shared secret).
	server, err := ca.WriteSpec(dir, "server", tlsgen.Spec{CN: "strata-server", Server: true, Client: true,
		URIs: auth.ServerIdentities(auth.DefaultTrustDomain, auth.Roles...)})
	if err != nil {
		t.Fatal(err)
	}
	load := func(c rpc.TLSConfig) *rpc.TLS {
		tl, err := rpc.LoadTLS(c)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	certOf := func(cn string) *rpc.TLS {
		// Valid for both client and server authentication, of the cluster
		// CA, without a server identity: the strongest certificate a
		// client can hold.
		f, err := ca.WriteIssued(dir, cn, cn)
		if err != nil {
			t.Fatal(err)
		}
		return load(rpc.TLSConfig{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA})
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("auditor", "tok-auditor")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, ClusterOptions{
		Brokers:   2,
		TLS:       &server,
		ProxyArgs: []string{"-auth-token-file", tokens, "-auth-client-certs", "-acls", "-super-users", "admin"},
		// The state compared before and after the refused calls must stand
		// still: no compaction, no periodic placement pass.
		CoordinatorArgs: []string{"-compact-min-age", "1h", "-placement-interval", "1h"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := c.Client(client.TLS(certOf("admin")))
	mallory := certOf("mallory")

	const topic = "payments"
	if _, err := admin.CreateTopic(ctx, topic, 4); err != nil {
		t.Fatal(err)
	}
	produceAndConsume(ctx, t, admin, topic, 0, 200)
	st, err := admin.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.CoordinatorAddr == "" || len(st.Brokers) != 2 {
		t.Fatalf("cluster status %+v: want a coordinator and 2 brokers", st)
	}
	ms, err := meta.New(meta.Config{Endpoints: c.Etcd.Endpoints(), Prefix: "/e2e"})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	before := snapshot(ctx, t, c, ms)
	for deadline := time.Now().Add(30 * time.Second); before.owned["broker-0"] == 0 || before.owned["broker-1"] == 0; before = snapshot(ctx, t, c, ms) {
		if time.Now().After(deadline) {
			t.Fatalf("partition owners %v: want both brokers owning partitions", before.owned)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	p0 := before.parts[topic+"/0"]
	owner := brokerAddr(t, st, p0.Broker)

	dial := func(addr string, opts ...rpc.DialOption) *grpc.ClientConn {
		conn, err := rpc.Dial(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	batch, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Value: []byte("forged")}}, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	coord := stratav1.NewCoordinatorClient(dial(st.CoordinatorAddr, rpc.WithTLS(mallory)))
	brokerAsMallory := func(addr string) stratav1.BrokerClient {
		return stratav1.NewBrokerClient(dial(addr, rpc.WithTLS(mallory)))
	}
	proxy := stratav1.NewStrataClient(dial(c.ProxyAddr, rpc.WithTLS(mallory)))
	const notServer = `certificate "mallory" is not a Strata server's`
	calls := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"direct Coordinator/CreateTopic", func() error {
			_, err := coord.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "secret1", Partitions: 1})
			return err
		}, codes.PermissionDenied, notServer},
		{"direct Coordinator/DeleteTopic", func() error {
			_, err := coord.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: topic})
			return err
		}, codes.PermissionDenied, notServer},
		{"direct Coordinator/DrainBroker", func() error {
			_, err := coord.DrainBroker(ctx, &stratav1.DrainBrokerRequest{BrokerId: p0.Broker})
			return err
		}, codes.PermissionDenied, notServer},
		{"direct Broker/Produce", func() error {
			_, err := brokerAsMallory(owner).Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: 0, Batches: batch})
			return err
		}, codes.PermissionDenied, notServer},
		{"direct Broker/ReleasePartitions", func() error {
			_, err := brokerAsMallory(owner).ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{Drain: true})
			return err
		}, codes.PermissionDenied, notServer},
		{"proxy CreateTopic", func() error {
			_, err := proxy.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "secret1", Partitions: 1})
			return err
		}, codes.PermissionDenied, `principal "mallory" may not create topic:secret1`},
		{"proxy DeleteTopic", func() error {
			_, err := proxy.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: topic})
			return err
		}, codes.PermissionDenied, `principal "mallory" may not delete topic:` + topic},
		{"proxy DrainBroker", func() error {
			_, err := proxy.DrainBroker(ctx, &stratav1.DrainBrokerRequest{BrokerId: p0.Broker})
			return err
		}, codes.PermissionDenied, `principal "mallory" may not admin cluster`},
		{"proxy Produce", func() error {
			_, err := proxy.Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: 0, Batches: batch})
			return err
		}, codes.PermissionDenied, `principal "mallory" may not produce topic:` + topic},
		// A principal with only a token holds no certificate: the internal
		// ports, which require one, end the handshake (the client sees the
		// alert or the closed connection, whichever comes first).
		{"token at Coordinator/CreateTopic", func() error {
			conn := dial(st.CoordinatorAddr, rpc.WithTLS(load(rpc.TLSConfig{CAFile: server.CA})), rpc.WithBearerToken("tok-auditor"))
			_, err := stratav1.NewCoordinatorClient(conn).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "secret1", Partitions: 1})
			return err
		}, codes.Unavailable, ""},
		{"token at Broker/Produce", func() error {
			conn := dial(owner, rpc.WithTLS(load(rpc.TLSConfig{CAFile: server.CA})), rpc.WithBearerToken("tok-auditor"))
			_, err := stratav1.NewBrokerClient(conn).Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Batches: batch})
			return err
		}, codes.Unavailable, ""},
		// Even beside a certificate that completes the handshake, a token
		// is refused: internal ports take no bearer tokens.
		{"token with a client certificate at Coordinator/CreateTopic", func() error {
			conn := dial(st.CoordinatorAddr, rpc.WithTLS(mallory), rpc.WithBearerToken("tok-auditor"))
			_, err := stratav1.NewCoordinatorClient(conn).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "secret1", Partitions: 1})
			return err
		}, codes.Unauthenticated, "send no bearer token"},
	}
	for _, tc := range calls {
		err := tc.call()
		s := status.Convert(err)
		t.Logf("%-60s → %s: %s", tc.name, s.Code(), s.Message())
		if s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
			t.Errorf("%s: status %s %q, want %s with %q", tc.name, s.Code(), s.Message(), tc.code, tc.msg)
		}
	}

	after := snapshot(ctx, t, c, ms)
	if d := before.diff(after); d != "" {
		t.Fatalf("refused calls changed the cluster: %s", d)
	}
	// The servers still call each other: produce and consume end to end.
	produceAndConsume(ctx, t, admin, topic, 200, 200)
	// The proxy forwarded the administrator's principal to the
	// coordinator, which trusted it from a server and logged it.
	if b, err := os.ReadFile(c.Coordinators[0].LogPath()); err != nil || !strings.Contains(string(b), `by=admin topic=payments`) {
		t.Errorf("coordinator log lacks the forwarded principal (err %v)", err)
	}
}

// state is what the refused calls would have changed.
type state struct {
	topics  []string
	parts   map[string]meta.PartitionState // "<topic>/<partition>"
	owned   map[string]int                 // partitions per broker
	drain   map[string]bool                // brokers marked draining
	objects []string
}

func snapshot(ctx context.Context, t *testing.T, c *Cluster, ms *meta.Store) state {
	t.Helper()
	s := state{parts: map[string]meta.PartitionState{}, owned: map[string]int{}, drain: map[string]bool{}}
	topics, _, err := ms.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, tp := range topics {
		s.topics = append(s.topics, tp.Name+"#"+tp.ID)
		names[tp.ID] = tp.Name
	}
	parts, _, err := ms.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		s.parts[fmt.Sprintf("%s/%d", names[p.TopicID], p.Partition)] = p
		s.owned[p.Broker]++
	}
	brokers, _, err := ms.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		s.drain[b.ID] = b.Draining
	}
	out, err := c.MinIO.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		s.objects = append(s.objects, aws.ToString(o.Key))
	}
	slices.Sort(s.topics)
	slices.Sort(s.objects)
	return s
}

// diff describes how b differs from s, "" when it does not.
func (s state) diff(b state) string {
	var d []string
	if !slices.Equal(s.topics, b.topics) {
		d = append(d, fmt.Sprintf("topics %v → %v", s.topics, b.topics))
	}
	for k, p := range s.parts {
		q := b.parts[k]
		if p.Broker != q.Broker || p.Epoch != q.Epoch || p.NextOffset != q.NextOffset {
			d = append(d, fmt.Sprintf("partition %s %s@%d next %d → %s@%d next %d", k, p.Broker, p.Epoch, p.NextOffset, q.Broker, q.Epoch, q.NextOffset))
		}
	}
	for id, dr := range b.drain {
		if dr {
			d = append(d, "broker "+id+" is draining")
		}
	}
	if !slices.Equal(s.objects, b.objects) {
		d = append(d, fmt.Sprintf("objects %d → %d", len(s.objects), len(b.objects)))
	}
	return strings.Join(d, "; ")
}

func brokerAddr(t *testing.T, st *client.ClusterStatus, id string) string {
	t.Helper()
	for _, b := range st.Brokers {
		if b.ID == id {
			return b.Addr
		}
	}
	t.Fatalf("broker %q not in cluster status", id)
	return ""
}

// produceAndConsume produces n records numbered from first through the
// proxy and reads them all back.
func produceAndConsume(ctx context.Context, t *testing.T, cl *client.Client, topic string, first, n int) {
	t.Helper()
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*client.Record
	for i := first; i < first+n; i++ {
		recs = append(recs, &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%05d", i)})
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatalf("produce through proxy → brokers: %v", err)
	}
	if err := p.Close(ctx); err != nil {
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
	for i := first; i < first+n; {
		got, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
		for _, r := range got {
			seen[string(r.Value)] = true
		}
		for i < first+n && seen[fmt.Sprintf("v%05d", i)] {
			i++
		}
	}
}
