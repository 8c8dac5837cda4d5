package testenv

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/rpc"
)

// etcdSecurity is what newEtcd adds for a TLS etcd: its flags and the
// HTTP client of its readiness check.
type etcdSecurity struct {
	args   []string
	health *http.Client
}

// NewEtcdTLS starts an etcd server like NewEtcd whose client port serves
// TLS only (https://127.0.0.1:PORT) and requires a client certificate
// that ca issued (--client-cert-auth --trusted-ca-file). Its server
// certificate, issued by ca for 127.0.0.1 and localhost, and a client
// certificate for the readiness check are written under dir/etcd-tls;
// ClientTLS names a client certificate of ca for tests and servers to
// use. Peer traffic stays plaintext (one member, on loopback).
func NewEtcdTLS(dir string, ca *tlsgen.CA) (*Etcd, error) {
	if ca == nil {
		return nil, fmt.Errorf("testenv: NewEtcdTLS needs a CA")
	}
	certs := filepath.Join(dir, "etcd-tls")
	if err := os.MkdirAll(certs, 0o755); err != nil {
		return nil, err
	}
	server, err := ca.WriteIssued(certs, "server", "etcd")
	if err != nil {
		return nil, err
	}
	client, err := ca.WriteIssued(certs, "client", "etcd-client")
	if err != nil {
		return nil, err
	}
	t, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: client.Cert, KeyFile: client.Key, CAFile: client.CA})
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = t.ClientConfig()
	e, err := newEtcd(dir, &etcdSecurity{
		args: []string{
			"--cert-file", server.Cert,
			"--key-file", server.Key,
			"--trusted-ca-file", server.CA,
			"--client-cert-auth",
		},
		health: &http.Client{Transport: tr},
	})
	if err != nil {
		return nil, err
	}
	e.ClientTLS = &client
	return e, nil
}

// StartEtcdTLS is NewEtcdTLS for one test: etcd is killed when the test
// ends, and the test fails if etcd cannot start.
func StartEtcdTLS(t testing.TB, ca *tlsgen.CA) *Etcd {
	t.Helper()
	e, err := NewEtcdTLS(t.TempDir(), ca)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	return e
}

// ClientConfig returns the tls.Config of a client of e presenting
// ClientTLS, for meta.Config.TLS; nil for a plaintext etcd.
func (e *Etcd) ClientConfig() (*tls.Config, error) {
	if e.ClientTLS == nil {
		return nil, nil
	}
	t, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: e.ClientTLS.Cert, KeyFile: e.ClientTLS.Key, CAFile: e.ClientTLS.CA})
	if err != nil {
		return nil, err
	}
	return t.ClientConfig(), nil
}
