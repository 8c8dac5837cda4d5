package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestParseTokens(t *testing.T) {
	h := HashToken("secret")
	tests := []struct {
		name, file string
		ok         bool
	}{
		{"valid", "# comment\n\nalice " + h + "\n", true},
		{"plain token", "alice secret\n", false},
		{"short hash", "alice sha256:abcd\n", false},
		{"reserved", "ANONYMOUS " + h + "\n", false},
		{"duplicate", "a " + h + "\nb " + h + "\n", false},
		{"three fields", "a b " + h + "\n", false},
		{"with SCRAM credentials", TokenLine("alice", "secret") + "\n", true},
		{"unknown SCRAM mechanism", "alice " + h + " scram-sha-1:4096:c2FsdA==:a2V5:a2V5\n", false},
		{"SCRAM field cut short", "alice " + h + " scram-sha-256:4096:c2FsdA==\n", false},
		{"SCRAM below 4096 iterations", strings.Replace(TokenLine("alice", "secret"), "scram-sha-256:4096:", "scram-sha-256:1000:", 1) + "\n", false},
		{"SCRAM key not base64", "alice " + h + " scram-sha-256:4096:c2FsdA==:!!:a2V5\n", false},
		{"SCRAM key of the wrong size", "alice " + h + " scram-sha-256:4096:c2FsdA==:a2V5:a2V5\n", false},
		{"SCRAM mechanism twice", TokenLine("alice", "secret") + " " + strings.Fields(TokenLine("alice", "secret"))[2] + "\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseTokens([]byte(tc.file))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && m.byHash[h] != "alice" {
				t.Fatalf("tokens %v", m.byHash)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(TokenLine("alice", tok)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{Subject: pkix.Name{CommonName: "svc-orders"}}}}}
	unverified := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{Subject: pkix.Name{CommonName: "svc-orders"}}}}
	tests := []struct {
		name string
		cfg  Config
		cred Credentials
		want string // principal, "" for unauthenticated
	}{
		{"auth off", Config{}, Credentials{}, Anonymous},
		{"token", Config{TokenFile: path}, Credentials{Token: tok}, "alice"},
		{"wrong token", Config{TokenFile: path, AllowAnonymous: true}, Credentials{Token: "x"}, ""},
		{"no credentials", Config{TokenFile: path}, Credentials{}, ""},
		{"anonymous allowed", Config{TokenFile: path, AllowAnonymous: true}, Credentials{}, Anonymous},
		{"client cert", Config{ClientCerts: true}, Credentials{TLS: cert}, "svc-orders"},
		{"unverified cert", Config{ClientCerts: true}, Credentials{TLS: unverified}, ""},
		{"cert ignored when certs are off", Config{TokenFile: path}, Credentials{TLS: cert}, ""},
		// SASL/PLAIN: the password is the token, the user must be its principal.
		{"plain user and token", Config{TokenFile: path}, Credentials{User: "alice", Token: tok}, "alice"},
		{"plain token of another user", Config{TokenFile: path}, Credentials{User: "bob", Token: tok}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := g.Authenticate(tc.cred)
			if tc.want == "" {
				if !errors.Is(err, apierr.ErrUnauthenticated) {
					t.Fatalf("got %v, %v; want unauthenticated", p, err)
				}
				return
			}
			if err != nil || p.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", p, err, tc.want)
			}
		})
	}
}

func TestTokenFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(TokenLine("alice", "one")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{TokenFile: path, ReloadInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := g.Authenticate(Credentials{Token: "one"}); err != nil || p.Name != "alice" {
		t.Fatalf("%v %v", p, err)
	}
	if err := os.WriteFile(path, []byte(TokenLine("bob", "two")+"\n# rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := g.Authenticate(Credentials{Token: "two"}); err != nil || p.Name != "bob" {
		t.Fatalf("after reload: %v %v", p, err)
	}
	if _, err := g.Authenticate(Credentials{Token: "one"}); err == nil {
		t.Fatal("a removed token still works")
	}
}

func TestACLMatching(t *testing.T) {
	a := &acls{list: []meta.ACL{
		{Principal: "alice", ResourceType: "topic", Name: "orders-*", Operation: "produce"},
		{Principal: "bob", ResourceType: "group", Name: "g1", Operation: "consume"},
		{Principal: "*", ResourceType: "topic", Name: "public", Operation: "consume"},
		{Principal: "ops", ResourceType: "cluster", Name: "cluster", Operation: "admin"},
		{Principal: "carol", ResourceType: "topic", Name: "*", Operation: "all"},
	}}
	tests := []struct {
		principal, op string
		r             Resource
		want          bool
	}{
		{"alice", "produce", Topic("orders-eu"), true},
		{"alice", "describe", Topic("orders-eu"), true}, // implied
		{"alice", "consume", Topic("orders-eu"), false},
		{"alice", "produce", Topic("orders"), false},
		{"alice", "produce", Group("orders-eu"), false},
		{"bob", "consume", Group("g1"), true},
		{"bob", "consume", Topic("g1"), false},
		{"anyone", "consume", Topic("public"), true},
		{"anyone", "produce", Topic("public"), false},
		{"ops", "delete", Topic("x"), true},
		{"ops", "admin", Cluster(), true},
		{"carol", "delete", Topic("x"), true},
		{"carol", "admin", Cluster(), false},
	}
	for _, tc := range tests {
		if got := a.allowed(tc.principal, tc.op, tc.r); got != tc.want {
			t.Errorf("%s %s %s = %v, want %v", tc.principal, tc.op, tc.r, got, tc.want)
		}
	}
}

// TestQuotaRate checks the bucket arithmetic with a fake clock: a client
// that sends as fast as its delays allow converges to its rate.
func TestQuotaRate(t *testing.T) {
	now := time.Unix(0, 0)
	q := newQuotas(QuotaConfig{Default: Rates{ProduceBytesPerSec: 1000}, Overrides: map[string]Rates{"vip": {}}, Burst: 100 * time.Millisecond})
	q.now = func() time.Time { return now }
	if d := q.charge("a", KindProduce, 100); d != 0 {
		t.Fatalf("within burst delayed %v", d)
	}
	sent := 0
	start := now
	for range 100 {
		d := q.charge("a", KindProduce, 250)
		sent += 250
		now = now.Add(d)
	}
	rate := float64(sent) / now.Sub(start).Seconds()
	if rate < 990 || rate > 1010 {
		t.Fatalf("rate %.1f, want 1000", rate)
	}
	if d := q.charge("vip", KindProduce, 1<<30); d != 0 {
		t.Fatalf("unlimited override delayed %v", d)
	}
	if d := q.charge("a", KindFetch, 1<<30); d != 0 {
		t.Fatalf("no fetch quota, delayed %v", d)
	}
	if d := q.charge("a", KindProduce, 1<<40); d != DefaultMaxThrottle {
		t.Fatalf("delay %v, want the cap", d)
	}
}

func TestChecksDefaultToAdmin(t *testing.T) {
	type unknown struct{}
	c := Checks(&unknown{})
	if len(c) != 1 || c[0].op != meta.OpAdmin || c[0].r != Cluster() {
		t.Fatalf("unknown request needs %v, want cluster admin", c)
	}
}

// TestGroupDeleteChecks: deleting a group needs delete on it; deleting
// its offsets also needs consume on each topic, as Kafka's OffsetDelete
// needs READ.
func TestGroupDeleteChecks(t *testing.T) {
	if c := Checks(&stratav1.DeleteGroupRequest{Group: "g"}); len(c) != 1 || c[0] != (check{meta.OpDelete, Group("g")}) {
		t.Fatalf("DeleteGroup needs %v", c)
	}
	c := Checks(&stratav1.DeleteOffsetsRequest{Group: "g", Topics: []*stratav1.TopicPartitions{{Topic: "a"}, {Topic: "b"}}})
	want := []check{{meta.OpDelete, Group("g")}, {meta.OpConsume, Topic("a")}, {meta.OpConsume, Topic("b")}}
	if !slices.Equal(c, want) {
		t.Fatalf("DeleteOffsets needs %v, want %v", c, want)
	}
}
