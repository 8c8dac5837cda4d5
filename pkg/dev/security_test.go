package dev_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/broker"
	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestSecureDevCluster runs the whole system with TLS between everything,
// mutual TLS between the servers, client certificates and tokens at the
// proxy and ACLs on. It checks that listing hides ungranted topics, and
// that a broker whose certificate comes from another CA gets no data: the
// proxy refuses the handshake, so the produce fails rather than reach it.
func TestSecureDevCluster(t *testing.T) {
	dir := t.TempDir()
	files, err := dev.GenerateTLS(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("reader", "tok-reader")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := files.ServerTLS()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := dev.New(dev.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: quiet, TLS: &tc,
		Auth: auth.Config{TokenFile: tokens, ClientCerts: true, ACLs: true, SuperUsers: []string{dev.ClientPrincipal}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	load := func(c rpc.TLSConfig) *rpc.TLS {
		tl, err := rpc.LoadTLS(c)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	dial := func(opts ...rpc.DialOption) stratav1.StrataClient {
		conn, err := rpc.Dial(c.Addr(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return stratav1.NewStrataClient(conn)
	}
	admin := dial(rpc.WithTLS(load(rpc.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})))
	reader := dial(rpc.WithTLS(load(rpc.TLSConfig{CAFile: files.CA})), rpc.WithBearerToken("tok-reader"))

	for _, name := range []string{"open", "secret"} {
		if _, err := admin.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: name, Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.AddAcl(ctx, &stratav1.AddAclRequest{Acl: &stratav1.Acl{Principal: "reader", ResourceType: "topic", ResourceName: "open", Operation: "consume"}}); err != nil {
		t.Fatal(err)
	}
	b, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Value: []byte("hi")}}, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Produce goes proxy → broker over mutual TLS.
	if _, err := admin.Produce(ctx, &stratav1.ProduceRequest{Topic: "open", Batches: b}); err != nil {
		t.Fatalf("produce over mTLS: %v", err)
	}
	r, err := reader.ListTopics(ctx, &stratav1.ListTopicsRequest{})
	if err != nil || len(r.Topics) != 1 || r.Topics[0].Name != "open" {
		t.Fatalf("reader's topic list = %v, %v; want only open", r, err)
	}
	// The proxy's view of the commit may trail the produce's ack by a
	// watch event: a long-poll at offset 0 waits for it.
	if f, err := reader.Fetch(ctx, &stratav1.FetchRequest{Topic: "open", MaxBytes: 1 << 20, MaxWaitMs: 10_000}); err != nil || f.HighWatermark != 1 {
		t.Fatalf("reader fetch = %v, %v", f, err)
	}
	_, err = reader.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "secret"})
	if !errors.Is(apierr.FromStatus(err), apierr.ErrPermissionDenied) {
		t.Fatalf("describe secret: %v", err)
	}

	// A rogue broker with a certificate from another CA registers in etcd
	// and is given "secret"'s partition. The proxy's handshake with it
	// fails, so no produce reaches it.
	other, err := tlsgen.NewCA("rogue-ca")
	if err != nil {
		t.Fatal(err)
	}
	rf, err := other.WriteIssued(t.TempDir(), "rogue", "strata-server")
	if err != nil {
		t.Fatal(err)
	}
	ms := c.Meta()
	store, err := objstore.NewFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	rogueReg := prometheus.NewRegistry()
	rogue, err := broker.New(broker.Config{ID: "rogue", ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Logger: quiet, Registry: rogueReg,
		TLS: load(rpc.TLSConfig{CertFile: rf.Cert, KeyFile: rf.Key, CAFile: rf.CA, ClientAuth: rpc.ClientAuthRequire})})
	if err != nil {
		t.Fatal(err)
	}
	if err := rogue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	top, err := ms.GetTopic(ctx, "secret")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster may still be changing the partition's state (its
	// broker committing, the coordinator placing it): read it again
	// until the assignment applies.
	for attempt := 0; ; attempt++ {
		st, err := ms.GetPartition(ctx, top.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ms.AssignPartition(ctx, st, "rogue")
		if err == nil {
			break
		}
		if !errors.Is(err, meta.ErrConflict) || attempt == 20 {
			t.Fatal(err)
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = admin.Produce(pctx, &stratav1.ProduceRequest{Topic: "secret", Batches: b})
	pcancel()
	if err == nil {
		t.Fatal("a produce reached the broker with a certificate from another CA")
	}
	if got := gatheredSum(t, rogueReg, "strata_broker_produce_requests_total"); got != 0 {
		t.Fatalf("rogue broker served %v produce requests", got)
	}
}

// gatheredSum sums every series of a counter.
func gatheredSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
