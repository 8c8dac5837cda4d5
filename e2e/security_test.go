package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestSecureCluster runs real processes with TLS on every listener, mutual
// TLS between proxy, brokers and coordinator, client authentication by
// certificate and by token at the proxy, and ACLs on. An application
// principal is refused until an administrator grants it the topic, then
// produces and consumes through the whole chain; a token principal sees
// nothing it was not granted; plaintext and unauthenticated clients get
// nowhere.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("e2e-ca")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.WriteSpec(dir, "server", tlsgen.Spec{CN: "strata-server", Server: true, Client: true,
		URIs: auth.ServerIdentities(auth.DefaultTrustDomain, auth.Roles...)})
	if err != nil {
		t.Fatal(err)
	}
	certOf := func(cn string) *rpc.TLS {
		f, err := ca.WriteIssued(dir, cn, cn)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA})
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("auditor", "tok-auditor")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := StartCluster(t, ClusterOptions{
		Brokers:   2,
		TLS:       &server,
		ProxyArgs: []string{"-auth-token-file", tokens, "-auth-client-certs", "-acls", "-super-users", "admin"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	trust, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: server.CA})
	if err != nil {
		t.Fatal(err)
	}
	admin := c.Client(client.TLS(certOf("admin")))
	app := c.Client(client.TLS(certOf("app")))
	auditor := c.Client(client.TLS(trust), client.Token("tok-auditor"))
	nobody := c.Client(client.TLS(trust), client.AdminAttempts(1))
	plain := c.Client(client.AdminAttempts(1), client.RequestTimeout(5*time.Second))

	const topic = "payments"
	if _, err := admin.CreateTopic(ctx, topic, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := nobody.ListTopics(ctx); !errors.Is(err, apierr.ErrUnauthenticated) {
		t.Fatalf("client without credentials: %v, want UNAUTHENTICATED", err)
	}
	if _, err := plain.ListTopics(ctx); err == nil {
		t.Fatal("a plaintext client was served")
	}
	if _, err := app.DescribeTopic(ctx, topic); !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Fatalf("ungranted describe: %v, want PERMISSION_DENIED", err)
	}
	p, err := app.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	err = p.ProduceSync(ctx, &client.Record{Topic: topic, Partition: -1, Value: []byte("x")})
	if !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Fatalf("ungranted produce: %v, want PERMISSION_DENIED", err)
	}
	p.Close(ctx)

	for _, op := range []string{"produce", "consume"} {
		if err := admin.AddACL(ctx, client.ACL{Principal: "app", ResourceType: "topic", ResourceName: topic, Operation: op}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 2000
	p, err = app.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*client.Record
	for i := range n {
		recs = append(recs, &client.Record{Topic: topic, Partition: -1, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "payment-%05d", i)})
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		t.Fatalf("granted produce through proxy → brokers over mTLS: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := app.NewConsumer(client.ConsumeStart(client.StartEarliest))
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

	// The auditor authenticates by token but holds no grant: it sees no
	// topic and cannot read.
	if ts, err := auditor.ListTopics(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("auditor's topics = %v, %v; want none", ts, err)
	}
	if _, err := auditor.ListOffsets(ctx, topic, 0, -1); !errors.Is(err, apierr.ErrPermissionDenied) {
		t.Fatalf("auditor list offsets: %v, want PERMISSION_DENIED", err)
	}
}
