package testenv_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestEtcdTLSRequiresClientCertificate starts etcd with client-certificate
// authentication and reaches it through meta.Store: a certificate of its
// CA writes; a certificate of another CA, no certificate, and plaintext
// are all refused by etcd's handshake.
func TestEtcdTLSRequiresClientCertificate(t *testing.T) {
	ca, err := tlsgen.NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.StartEtcdTLS(t, ca)
	if !strings.HasPrefix(e.Endpoint, "https://") || e.ClientTLS == nil {
		t.Fatalf("endpoint %q, client TLS %v", e.Endpoint, e.ClientTLS)
	}
	other, err := tlsgen.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := other.WriteIssued(t.TempDir(), "rogue", "rogue")
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
	good, err := e.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	// Every refused client trusts etcd's CA, so only its own certificate
	// (or the lack of one) is at stake. etcd's log says why it refused.
	cases := []struct {
		name      string
		endpoints []string
		tls       *rpc.TLS
		refusal   string // empty: accepted
	}{
		{"certificate of etcd's CA", e.Endpoints(), nil, ""},
		{"certificate of another CA", e.Endpoints(), load(rpc.TLSConfig{CertFile: rogue.Cert, KeyFile: rogue.Key, CAFile: e.ClientTLS.CA}), "certificate signed by unknown authority"},
		{"no certificate", e.Endpoints(), load(rpc.TLSConfig{CAFile: e.ClientTLS.CA}), "client didn't provide a certificate"},
		{"plaintext", []string{"http://" + strings.TrimPrefix(e.Endpoint, "https://")}, nil, "first record does not look like a TLS handshake"},
	}
	refusals := func(reason string) int {
		b, err := os.ReadFile(e.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), reason)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := meta.Config{Endpoints: c.endpoints, Prefix: "/t-etcdtls", DialTimeout: 2 * time.Second}
			switch {
			case c.tls != nil:
				cfg.TLS = c.tls.ClientConfig()
			case c.refusal == "":
				cfg.TLS = good
			}
			before := refusals(c.refusal)
			m, err := meta.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			// A refused client fails once its deadline passes; an accepted
			// one gets a generous deadline so a busy machine cannot fail it.
			timeout := 30 * time.Second
			if c.refusal != "" {
				timeout = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err = m.Client().Put(ctx, "/t-etcdtls/probe", "x")
			switch {
			case c.refusal == "" && err != nil:
				t.Fatalf("put with a certificate of etcd's CA: %v", err)
			case c.refusal != "" && err == nil:
				t.Fatal("etcd accepted the put")
			case c.refusal != "":
				// etcd writes its log line on its own schedule: wait for it.
				deadline := time.Now().Add(10 * time.Second)
				for refusals(c.refusal) == before {
					if time.Now().After(deadline) {
						t.Fatalf("put failed (%v) but etcd logged no %q", err, c.refusal)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}
