package serverflags_test

import (
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/serverflags"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestCheckEtcd runs CheckEtcd against an etcd that requires client
// certificates of its CA: a certificate of that CA passes, one of another
// CA and none fail with the reason, and an etcd that is down is not an
// error (a server waits for it as usual).
func TestCheckEtcd(t *testing.T) {
	ca, err := tlsgen.NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	e := testenv.StartEtcdTLS(t, ca)
	other, err := tlsgen.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := other.WriteIssued(t.TempDir(), "rogue", "rogue")
	if err != nil {
		t.Fatal(err)
	}
	config := func(c rpc.TLSConfig) *meta.Config {
		tl, err := rpc.LoadTLS(c)
		if err != nil {
			t.Fatal(err)
		}
		return &meta.Config{Endpoints: e.Endpoints(), TLS: tl.ClientConfig()}
	}
	good := config(rpc.TLSConfig{CertFile: e.ClientTLS.Cert, KeyFile: e.ClientTLS.Key, CAFile: e.ClientTLS.CA})
	for _, c := range []struct {
		name string
		cfg  *meta.Config
		want string // empty: no error
	}{
		{"certificate of etcd's CA", good, ""},
		{"certificate of another CA", config(rpc.TLSConfig{CertFile: rogue.Cert, KeyFile: rogue.Key, CAFile: e.ClientTLS.CA}), "unknown certificate authority"},
		{"no certificate", config(rpc.TLSConfig{CAFile: e.ClientTLS.CA}), "certificate required"},
		{"etcd's certificate unverified", config(rpc.TLSConfig{CertFile: rogue.Cert, KeyFile: rogue.Key, CAFile: rogue.CA}), "unknown authority"},
		{"plaintext", &meta.Config{Endpoints: e.Endpoints()}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := serverflags.CheckEtcd(c.cfg)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("CheckEtcd = %v, want an error with %q", err, c.want)
			}
		})
	}
	e.Kill()
	if err := serverflags.CheckEtcd(good); err != nil {
		t.Fatalf("etcd down: %v, want nil (wait for it)", err)
	}
}
