package kafka_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestSecurity runs the Kafka listener with TLS, client certificates,
// SASL/PLAIN tokens and ACLs, and checks that a Kafka client is
// authenticated and authorized exactly as a gRPC caller would be: the token
// or the certificate names the principal, ACLs decide per topic, listings
// hide what a principal may not describe, and a connection without valid
// credentials gets nothing but ApiVersions.
func TestSecurity(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("kafka-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	// One certificate for every server of the test cluster, carrying each
	// role's identity, so the proxy may call the coordinator and brokers.
	var ids []string
	for _, role := range auth.Roles {
		ids = append(ids, auth.ServerIdentity(auth.DefaultTrustDomain, role))
	}
	srv, err := ca.WriteSpec(dir, "server", tlsgen.Spec{CN: "strata-server", Hosts: []string{"127.0.0.1", "localhost"}, URIs: ids, Server: true, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := ca.WriteIssued(dir, "carol", "carol")
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	lines := auth.TokenLine("admin", "tok-admin") + "\n" + auth.TokenLine("alice", "tok-alice") + "\n"
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	stls, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: srv.Cert, KeyFile: srv.Key, CAFile: srv.CA, ClientAuth: rpc.ClientAuthRequest})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterOpts{tls: stls, proxy: func(pc *proxy.Config) {
		pc.Auth = auth.Config{TokenFile: tokens, ClientCerts: true, ACLs: true, SuperUsers: []string{"admin"}}
	}})
	clientTLS := func(cert *tlsgen.Files) *tls.Config {
		cfg := rpc.TLSConfig{CAFile: srv.CA}
		if cert != nil {
			cfg.CertFile, cfg.KeyFile = cert.Cert, cert.Key
		}
		tl, err := rpc.LoadTLS(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tl.ClientConfig()
	}
	as := func(user, pass string) *kgo.Client {
		return c.client(kgo.DialTLSConfig(clientTLS(nil)), kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()),
			kgo.RecordRetries(1), kgo.RetryTimeout(5*time.Second))
	}
	ctx := c.ctx
	admin := kadm.NewClient(as("admin", "tok-admin"))
	for _, topic := range []string{"open", "secret"} {
		if r, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("admin creates %s: %v %v", topic, err, r.Err)
		}
	}
	for _, a := range []meta.ACL{
		{Principal: "alice", ResourceType: meta.ResourceTopic, Name: "open", Operation: meta.OpProduce},
		{Principal: "alice", ResourceType: meta.ResourceTopic, Name: "open", Operation: meta.OpDescribe},
		{Principal: "carol", ResourceType: meta.ResourceTopic, Name: "open", Operation: meta.OpDescribe},
	} {
		if err := c.meta.AddACL(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	alice := as("alice", "tok-alice")
	t.Run("listing hides what alice may not describe", func(t *testing.T) {
		waitTopics(t, ctx, kadm.NewClient(alice), []string{"open"})
	})
	t.Run("alice produces where the ACLs allow it", func(t *testing.T) {
		if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("hi")}).FirstErr(); err != nil {
			t.Fatalf("alice produce to open: %v", err)
		}
		err := alice.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("hi")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("alice produce to secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	})
	t.Run("a wrong token is refused", func(t *testing.T) {
		if _, err := kadm.NewClient(as("alice", "tok-wrong")).ListTopics(ctx); err == nil {
			t.Fatal("wrong token accepted")
		}
	})
	t.Run("a token under another user name is refused", func(t *testing.T) {
		if _, err := kadm.NewClient(as("admin", "tok-alice")).ListTopics(ctx); err == nil {
			t.Fatal("alice's token accepted as admin")
		}
	})
	t.Run("a client certificate names the principal", func(t *testing.T) {
		cl := c.client(kgo.DialTLSConfig(clientTLS(&carol)), kgo.RecordRetries(1))
		waitTopics(t, ctx, kadm.NewClient(cl), []string{"open"})
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("hi")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("carol produce without a produce ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	})
	t.Run("without credentials only ApiVersions is answered", func(t *testing.T) {
		conn, err := tls.Dial("tcp", c.kafka.Addr(), clientTLS(nil))
		if err != nil {
			t.Fatal(err)
		}
		r := c.rawOn(conn)
		if resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions before authentication: error %d", resp.ErrorCode)
		}
		r.send(kmsg.NewPtrMetadataRequest())
		r.expectClosed()
	})
	t.Run("before authentication a frame over 512 KiB closes the connection", func(t *testing.T) {
		conn, err := tls.Dial("tcp", c.kafka.Addr(), clientTLS(nil))
		if err != nil {
			t.Fatal(err)
		}
		r := c.rawOn(conn)
		r.roundTrip(kmsg.NewPtrApiVersionsRequest())
		// Within the request limit (100 MiB), but a client that has proved
		// nothing may not claim that much of the proxy's request budget.
		r.write(binary.BigEndian.AppendUint32(nil, 1<<20))
		r.expectClosed()
		if n := c.rejections("unauthenticated_request_bytes"); n != 1 {
			t.Fatalf("%v frames refused as too large before authentication, want 1", n)
		}
	})
	t.Run("SaslHandshake v0 then a bare token", func(t *testing.T) {
		conn, err := tls.Dial("tcp", c.kafka.Addr(), clientTLS(nil))
		if err != nil {
			t.Fatal(err)
		}
		r := c.rawOn(conn)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, "PLAIN"
		if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("handshake: error %d", resp.ErrorCode)
		}
		token := []byte("\x00alice\x00tok-alice")
		r.write(append([]byte{0, 0, 0, byte(len(token))}, token...))
		if b, err := r.frame(); err != nil || len(b) != 0 {
			t.Fatalf("bare token answer %q, %v; want an empty frame", b, err)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 4
		if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Topics) != 1 || *resp.Topics[0].Topic != "open" {
			t.Fatalf("alice's metadata after a v0 handshake lists %d topics, want only open", len(resp.Topics))
		}
	})
	t.Run("SCRAM signs in with the token as password", func(t *testing.T) {
		for _, mech := range []sasl.Mechanism{
			scram.Auth{User: "alice", Pass: "tok-alice"}.AsSha256Mechanism(),
			scram.Auth{User: "alice", Pass: "tok-alice"}.AsSha512Mechanism(),
		} {
			cl := c.client(kgo.DialTLSConfig(clientTLS(nil)), kgo.SASL(mech), kgo.RecordRetries(1), kgo.RetryTimeout(5*time.Second))
			waitTopics(t, ctx, kadm.NewClient(cl), []string{"open"})
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("hi")}).FirstErr(); err != nil {
				t.Fatalf("%s: alice produce to open: %v", mech.Name(), err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("hi")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("%s: alice produce to secret: %v, want TOPIC_AUTHORIZATION_FAILED", mech.Name(), err)
			}
		}
		for _, a := range []scram.Auth{{User: "alice", Pass: "tok-wrong"}, {User: "admin", Pass: "tok-alice"}, {User: "mallory", Pass: "tok-alice"}} {
			cl := c.client(kgo.DialTLSConfig(clientTLS(nil)), kgo.SASL(a.AsSha512Mechanism()), kgo.RetryTimeout(2*time.Second))
			if _, err := kadm.NewClient(cl).ListTopics(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("SCRAM as %s with %s: %v, want SASL_AUTHENTICATION_FAILED", a.User, a.Pass, err)
			}
		}
	})
	t.Run("DescribeUserScramCredentials lists the token file's SCRAM users", func(t *testing.T) {
		described, err := admin.DescribeUserSCRAMs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(described) != 2 {
			t.Fatalf("described %d users, want admin and alice: %v", len(described), described)
		}
		for _, u := range []string{"admin", "alice"} {
			d := described[u]
			want := []kadm.CredInfo{{Mechanism: kadm.ScramSha256, Iterations: auth.SCRAMIterations}, {Mechanism: kadm.ScramSha512, Iterations: auth.SCRAMIterations}}
			if d.Err != nil || !slices.Equal(d.CredInfos, want) {
				t.Fatalf("%s: %+v, want %+v", u, d, want)
			}
		}
		described, err = admin.DescribeUserSCRAMs(ctx, "alice", "mallory")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(described["mallory"].Err, kerr.ResourceNotFound) || described["alice"].Err != nil {
			t.Fatalf("alice and mallory: %+v", described)
		}
		dup := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
		for range 2 {
			u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
			u.Name = "alice"
			dup.Users = append(dup.Users, u)
		}
		resp, err := dup.RequestWith(ctx, as("admin", "tok-admin"))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Results) != 1 || resp.Results[0].ErrorCode != kerr.DuplicateResource.Code {
			t.Fatalf("alice named twice: %+v, want one DUPLICATE_RESOURCE", resp.Results)
		}
		if _, err := kadm.NewClient(alice).DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("alice, without describe on the cluster: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
		}
	})
	t.Run("SaslHandshake v0 then bare SCRAM frames", func(t *testing.T) {
		conn, err := tls.Dial("tcp", c.kafka.Addr(), clientTLS(nil))
		if err != nil {
			t.Fatal(err)
		}
		r := c.rawOn(conn)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 0, auth.SCRAMSHA256
		resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != 0 || !slices.Equal(resp.SupportedMechanisms, []string{"PLAIN", auth.SCRAMSHA256, auth.SCRAMSHA512}) {
			t.Fatalf("handshake: error %d, mechanisms %v", resp.ErrorCode, resp.SupportedMechanisms)
		}
		cl, err := xscram.SHA256.NewClient("alice", "tok-alice", "")
		if err != nil {
			t.Fatal(err)
		}
		conv := cl.NewConversation()
		var in string
		for !conv.Done() {
			out, err := conv.Step(in)
			if err != nil {
				t.Fatalf("client step: %v", err)
			}
			if conv.Done() {
				break
			}
			r.write(binary.BigEndian.AppendUint32(nil, uint32(len(out))))
			r.write([]byte(out))
			b, err := r.frame()
			if err != nil {
				t.Fatalf("bare SCRAM answer: %v", err)
			}
			in = string(b)
		}
		if !conv.Valid() {
			t.Fatal("the server's signature is not valid")
		}
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 4
		if resp := r.roundTrip(md).(*kmsg.MetadataResponse); len(resp.Topics) != 1 || *resp.Topics[0].Topic != "open" {
			t.Fatalf("alice's metadata after a v0 SCRAM handshake lists %d topics, want only open", len(resp.Topics))
		}
	})
}

// TestSCRAMWithoutTokenFile: with no token file there are no SCRAM
// credentials, so the handshake offers PLAIN only and refuses SCRAM.
func TestSCRAMWithoutTokenFile(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = auth.SCRAMSHA512
	resp := c.raw().roundTrip(hs).(*kmsg.SASLHandshakeResponse)
	wantCode(t, "SCRAM handshake", resp.ErrorCode, kerr.UnsupportedSaslMechanism)
	if !slices.Equal(resp.SupportedMechanisms, []string{"PLAIN"}) {
		t.Fatalf("mechanisms offered %v, want PLAIN only", resp.SupportedMechanisms)
	}
}

// waitTopics waits until a client's topic listing is want (the proxy
// follows ACL changes through an etcd watch, within moments).
func waitTopics(t *testing.T, ctx context.Context, adm *kadm.Client, want []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		td, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := td.Names()
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topics listed: %v, want %v", got, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
