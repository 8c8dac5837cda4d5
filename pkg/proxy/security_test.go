package proxy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// dial returns a client of the env's proxy with the given options.
func (e *env) dial(opts ...rpc.DialOption) stratav1.StrataClient {
	e.t.Helper()
	conn, err := rpc.Dial(e.srv.Addr(), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return stratav1.NewStrataClient(conn)
}

// tokenFile writes a token file giving each principal the token
// "tok-<principal>".
func tokenFile(t *testing.T, principals ...string) string {
	t.Helper()
	var b []byte
	for _, p := range principals {
		b = append(b, auth.TokenLine(p, "tok-"+p)+"\n"...)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantReason(t *testing.T, what string, err error, sentinel error) {
	t.Helper()
	if got := apierr.FromStatus(err); !errors.Is(got, sentinel) {
		t.Fatalf("%s: err = %v, want %v", what, err, sentinel)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTokenAuthAndACLs: a caller without a valid token is refused; a
// principal without an ACL cannot produce to, consume from or describe a
// topic; once granted, it can.
func TestTokenAuthAndACLs(t *testing.T) {
	tokens := tokenFile(t, "admin", "alice")
	e := newEnv(t, func(c *Config) {
		c.Auth = auth.Config{TokenFile: tokens, ACLs: true, SuperUsers: []string{"admin"}}
	})
	top := e.createTopic("orders", 1)
	e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	ctx := ctxT(t)

	anon, bad := e.dial(), e.dial(rpc.WithBearerToken("tok-mallory"))
	alice, admin := e.dial(rpc.WithBearerToken("tok-alice")), e.dial(rpc.WithBearerToken("tok-admin"))

	for name, c := range map[string]stratav1.StrataClient{"no token": anon, "unknown token": bad} {
		_, err := c.Fetch(ctx, &stratav1.FetchRequest{Topic: "orders"})
		wantReason(t, name+": fetch", err, apierr.ErrUnauthenticated)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%s: code %v", name, status.Code(err))
		}
		_, err = c.Produce(ctx, &stratav1.ProduceRequest{Topic: "orders", Batches: batch(t, 1, 1)})
		wantReason(t, name+": produce", err, apierr.ErrUnauthenticated)
	}

	// alice has no ACL: no produce, no consume, no describe, not listed.
	_, err := alice.Produce(ctx, &stratav1.ProduceRequest{Topic: "orders", Batches: batch(t, 1, 1)})
	wantReason(t, "ungranted produce", err, apierr.ErrPermissionDenied)
	_, err = alice.Fetch(ctx, &stratav1.FetchRequest{Topic: "orders"})
	wantReason(t, "ungranted fetch", err, apierr.ErrPermissionDenied)
	_, err = alice.ListOffsets(ctx, &stratav1.ListOffsetsRequest{Topic: "orders", TimestampMs: -1})
	wantReason(t, "ungranted list offsets", err, apierr.ErrPermissionDenied)
	// (ListTopics filtering needs a coordinator: pkg/dev's test covers it.)
	_, err = alice.AddAcl(ctx, &stratav1.AddAclRequest{Acl: &stratav1.Acl{Principal: "alice", ResourceType: "cluster", ResourceName: "cluster", Operation: "admin"}})
	wantReason(t, "alice granting herself admin", err, apierr.ErrPermissionDenied)
	if got := testenv.Gathered(t, e.srv.reg, "strata_auth_denied_total", "operation", "produce"); got != 1 {
		t.Fatalf("denied produce counter = %v, want 1", got)
	}

	// The super user grants alice produce and consume on orders-*.
	for _, op := range []string{"produce", "consume"} {
		if _, err := admin.AddAcl(ctx, &stratav1.AddAclRequest{Acl: &stratav1.Acl{Principal: "alice", ResourceType: "topic", ResourceName: "orders*", Operation: op}}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := admin.ListAcls(ctx, &stratav1.ListAclsRequest{Principal: "alice"}); err != nil || len(r.Acls) != 2 {
		t.Fatalf("ListAcls = %v, %v", r, err)
	}
	if _, err := alice.Produce(ctx, &stratav1.ProduceRequest{Topic: "orders", Batches: batch(t, 2, 1)}); err != nil {
		t.Fatalf("granted produce: %v", err)
	}
	if r, err := alice.Fetch(ctx, &stratav1.FetchRequest{Topic: "orders", MaxBytes: 1 << 20, MaxWaitMs: 10000, MinBytes: 1}); err != nil || r.HighWatermark != 2 || len(r.Batches) == 0 {
		t.Fatalf("granted fetch = %v, %v", r, err)
	}
	// Grants are per topic: another topic stays closed.
	e.createTopic("payroll", 1)
	e.waitView("payroll", func(v *meta.View) bool { return len(v.Topics()) == 2 })
	_, err = alice.Fetch(ctx, &stratav1.FetchRequest{Topic: "payroll"})
	wantReason(t, "fetch of another topic", err, apierr.ErrPermissionDenied)

	// Removing the grant closes the topic again.
	if r, err := admin.RemoveAcl(ctx, &stratav1.RemoveAclRequest{Acl: &stratav1.Acl{Principal: "alice", ResourceType: "topic", ResourceName: "orders*", Operation: "produce"}}); err != nil || !r.Removed {
		t.Fatalf("RemoveAcl = %v, %v", r, err)
	}
	_, err = alice.Produce(ctx, &stratav1.ProduceRequest{Topic: "orders", Batches: batch(t, 1, 1)})
	wantReason(t, "produce after revoke", err, apierr.ErrPermissionDenied)
}

// TestClientCertAuth: over TLS, a client certificate of the cluster's CA
// authenticates its subject; a client without one, or with one from
// another CA, gets nowhere.
func TestClientCertAuth(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("cluster-ca")
	if err != nil {
		t.Fatal(err)
	}
	server, _ := ca.WriteIssued(dir, "server", "proxy")
	bob, _ := ca.WriteIssued(dir, "bob", "bob")
	other, _ := tlsgen.NewCA("other-ca")
	odir := t.TempDir()
	eve, _ := other.WriteIssued(odir, "eve", "bob") // claims to be bob
	load := func(c rpc.TLSConfig) *rpc.TLS {
		tl, err := rpc.LoadTLS(c)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	e := newEnv(t, func(c *Config) {
		c.TLS = load(rpc.TLSConfig{CertFile: server.Cert, KeyFile: server.Key, CAFile: server.CA, ClientAuth: rpc.ClientAuthRequest})
		c.Auth = auth.Config{ClientCerts: true, ACLs: true}
	})
	e.createTopic("events", 1)
	e.waitView("events", func(v *meta.View) bool { return len(v.Topics()) == 1 })
	if err := e.meta.AddACL(e.ctx, aclOf("bob", "topic", "events", "consume")); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	trustOnly := load(rpc.TLSConfig{CAFile: server.CA})
	asBob := e.dial(rpc.WithTLS(load(rpc.TLSConfig{CertFile: bob.Cert, KeyFile: bob.Key, CAFile: bob.CA})))
	asEve := e.dial(rpc.WithTLS(load(rpc.TLSConfig{CertFile: eve.Cert, KeyFile: eve.Key, CAFile: server.CA})))
	noCert := e.dial(rpc.WithTLS(trustOnly))

	_, err = noCert.Fetch(ctx, &stratav1.FetchRequest{Topic: "events"})
	wantReason(t, "no client cert", err, apierr.ErrUnauthenticated)
	if _, err := asEve.Fetch(ctx, &stratav1.FetchRequest{Topic: "events"}); err == nil || status.Code(err) != codes.Unavailable {
		t.Fatalf("certificate of another CA: err = %v, want a failed handshake", err)
	}
	// bob's grant reaches the proxy through the etcd watch.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := asBob.Fetch(ctx, &stratav1.FetchRequest{Topic: "events", MaxBytes: 1024})
		if err == nil {
			break
		}
		wantReason(t, "bob before the watch", err, apierr.ErrPermissionDenied)
		if time.Now().After(deadline) {
			t.Fatal("bob's grant never took effect")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	_, err = asBob.Produce(ctx, &stratav1.ProduceRequest{Topic: "events", Batches: batch(t, 1, 1)})
	wantReason(t, "bob producing with only consume", err, apierr.ErrPermissionDenied)
}

// TestProduceQuotaThrottles: a principal producing as fast as it can is
// slowed to its byte quota (within 20%) over a measured interval.
func TestProduceQuotaThrottles(t *testing.T) {
	const quota = 256 << 10 // bytes per second
	e := newEnv(t, func(c *Config) {
		c.Auth = auth.Config{Quota: auth.QuotaConfig{Default: auth.Rates{ProduceBytesPerSec: quota}, Burst: 50 * time.Millisecond}}
	})
	top := e.createTopic("fast", 1)
	e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	recs := make([]byte, 0)
	for len(recs) < 24<<10 {
		recs = append(recs, batch(t, 50, int64(len(recs)))...)
	}
	ctx := ctxT(t)
	// Use up the burst first, then measure four producers of the same
	// principal going flat out (so that the client's own latency is not
	// what limits it), from the start until the last answer.
	e.produce("fast", 0, recs)
	start := time.Now()
	var (
		mu   sync.Mutex // guards sent and last
		sent int
		last time.Time
	)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for time.Since(start) < 3*time.Second {
				if _, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "fast", Batches: recs}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent, last = sent+len(recs), time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := last.Sub(start)
	rate := float64(sent) / elapsed.Seconds()
	t.Logf("quota %d B/s, measured %.0f B/s over %v (%d bytes)", quota, rate, elapsed.Round(time.Millisecond), sent)
	if rate < 0.8*quota || rate > 1.2*quota {
		t.Fatalf("measured %.0f B/s, want within 20%% of %d", rate, quota)
	}
	if testenv.Gathered(t, e.srv.reg, "strata_quota_throttled_total", "kind", auth.KindProduce) == 0 {
		t.Fatal("throttle metric not counted")
	}
}

func TestLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits = Limits{MaxBatchesPerRequest: 2, MaxHeadersPerRecord: 1, MaxPartitionsPerTopic: 8, MaxTopicsPerRequest: 2, MaxRequestBytes: 64 << 10, MaxBatchBytes: 16 << 10}
	})
	ctx := ctxT(t)
	one := batch(t, 1, 1)
	big := batch(t, 2000, 1)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"too many batches", func() error {
			_, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "x", Batches: concat([][]byte{one, one, one})})
			return err
		}, apierr.ErrInvalidRequest},
		{"garbage batch", func() error {
			_, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "x", Batches: []byte("not a batch at all, not at all")})
			return err
		}, apierr.ErrCorruptBatch},
		{"batch too large", func() error {
			_, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "x", Batches: big})
			return err
		}, apierr.ErrRecordTooLarge},
		{"too many partitions", func() error {
			_, err := e.client.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "x", Partitions: 9})
			return err
		}, apierr.ErrInvalidRequest},
		{"too many partitions added", func() error {
			_, err := e.client.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "x", Partitions: 9})
			return err
		}, apierr.ErrInvalidRequest},
		{"too many topics in a request", func() error {
			_, err := e.client.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "g", Topics: []string{"a", "b", "c"}})
			return err
		}, apierr.ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantReason(t, tc.name, tc.call(), tc.want) })
	}
	// Headers beyond the limit.
	hb := headerBatch(t, 3)
	_, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "x", Batches: hb})
	wantReason(t, "too many headers", err, apierr.ErrInvalidRequest)
	// A request above MaxRequestBytes never reaches a handler.
	_, err = e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: "x", Batches: make([]byte, 100<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v, want ResourceExhausted", err)
	}
}

func aclOf(principal, typ, name, op string) meta.ACL {
	return meta.ACL{Principal: principal, ResourceType: typ, Name: name, Operation: op}
}

// headerBatch is a batch of one record with n headers.
func headerBatch(t *testing.T, n int) []byte {
	t.Helper()
	r := segment.Record{Timestamp: 1, Value: []byte("v")}
	for i := range n {
		r.Headers = append(r.Headers, segment.Header{Key: string(rune('a' + i)), Value: []byte("h")})
	}
	b, err := segment.EncodeBatch([]segment.Record{r}, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
