package serverflags_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestSecurityApply: brokers and coordinators refuse the settings that
// would let clients in or lock servers out (a client CA, no client
// authentication), the proxy takes a client CA, and a bad trust domain
// is named.
func TestSecurityApply(t *testing.T) {
	ca, err := tlsgen.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ca.WriteIssued(t.TempDir(), "server", "server")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA}
	for _, tc := range []struct {
		name     string
		args     []string
		internal bool
		want     string // error text, "" for none
		check    func(*testing.T, *rpc.TLS)
	}{
		{"internal defaults to mutual TLS", base, true, "", func(t *testing.T, tl *rpc.TLS) {
			if c := tl.Config(); c.ClientAuth != rpc.ClientAuthRequire || c.TrustDomain != "strata" {
				t.Fatalf("client auth %q, trust domain %q", c.ClientAuth, c.TrustDomain)
			}
		}},
		{"internal with a client CA", append(base, "-tls-client-ca", f.CA), true, "--tls-client-ca is for proxies", nil},
		{"internal without client auth", append(base, "-tls-client-auth", "none"), true, "identify their callers by certificate", nil},
		{"proxy with a client CA", append(base, "-tls-client-ca", f.CA, "-tls-trust-domain", "prod.strata"), false, "", func(t *testing.T, tl *rpc.TLS) {
			if c := tl.Config(); c.ClientCAFile != f.CA || c.ClientAuth != rpc.ClientAuthRequest || c.TrustDomain != "prod.strata" {
				t.Fatalf("config %+v", c)
			}
		}},
		{"bad trust domain", append(base, "-tls-trust-domain", "Prod/1"), false, `--tls-trust-domain "Prod/1"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			s := serverflags.TLS(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			tl, err := s.Apply(&meta.Config{}, &objstore.Config{}, tc.internal)
			switch {
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Apply = %v, want an error with %q", err, tc.want)
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.check != nil:
				tc.check(t, tl)
			}
		})
	}
}
