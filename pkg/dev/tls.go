package dev

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"slices"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TLSFiles are the PEM files GenerateTLS writes.
type TLSFiles struct {
	// CA is the throw-away CA's certificate: what clients trust.
	CA string
	// ServerCert and ServerKey are the servers' certificate (subject
	// "strata-server", valid for localhost and 127.0.0.1). It carries the
	// identities of all three roles (auth.ServerIdentities), since one
	// process plays them all; only it opens brokers and coordinators.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client certificate whose principal is
	// ClientPrincipal, for trying mutual TLS from clients. It names no
	// server identity and is valid only for client authentication: the
	// proxy accepts it, brokers and coordinators refuse it.
	ClientCert, ClientKey string
}

// ClientPrincipal is the subject common name of the client certificate
// GenerateTLS writes.
const ClientPrincipal = "dev-client"

// GenerateTLS makes a throw-away CA in dir, with a server certificate and a
// client certificate, reusing the files if dir has them already (so that
// clients configured against an earlier run keep working) and the server
// certificate carries the server identities (files written before
// servers had identities get new certificates).
func GenerateTLS(dir string) (TLSFiles, error) {
	f := TLSFiles{
		CA:         dir + "/ca.pem",
		ServerCert: dir + "/server.pem", ServerKey: dir + "/server-key.pem",
		ClientCert: dir + "/client.pem", ClientKey: dir + "/client-key.pem",
	}
	have := true
	for _, p := range []string{f.CA, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey} {
		if _, err := os.Stat(p); err != nil {
			have = false
		}
	}
	if have && hasServerIdentity(f.ServerCert) {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("dev: tls: %w", err)
	}
	ca, err := tlsgen.NewCA("strata-dev-ca")
	if err != nil {
		return TLSFiles{}, err
	}
	server := tlsgen.Spec{CN: "strata-server", URIs: auth.ServerIdentities(auth.DefaultTrustDomain, auth.Roles...), Server: true, Client: true}
	if _, err := ca.WriteSpec(dir, "server", server); err != nil {
		return TLSFiles{}, err
	}
	if _, err := ca.WriteSpec(dir, "client", tlsgen.Spec{CN: ClientPrincipal, Client: true}); err != nil {
		return TLSFiles{}, err
	}
	return f, nil
}

// hasServerIdentity reports whether the certificate in path names a
// server role of the default trust domain.
func hasServerIdentity(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return false
	}
	want := auth.ServerIdentity(auth.DefaultTrustDomain, auth.RoleBroker)
	return slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == want })
}

// ServerTLS is the TLSConfig of the servers for files f.
func (f TLSFiles) ServerTLS() rpc.TLSConfig {
	return rpc.TLSConfig{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CA}
}

// loadTLS loads the proxy's public TLS (client certificates verified when
// given) and the internal one (required: mutual TLS between servers). Both
// nil without Config.TLS.
func (c *Cluster) loadTLS() (public, internal *rpc.TLS, err error) {
	if c.cfg.TLS == nil {
		return nil, nil, nil
	}
	pc, ic := *c.cfg.TLS, *c.cfg.TLS
	pc.Logger, ic.Logger = c.log, c.log
	if pc.ClientAuth == "" {
		pc.ClientAuth = rpc.ClientAuthRequest
	}
	ic.ClientAuth = rpc.ClientAuthRequire
	if public, err = rpc.LoadTLS(pc); err != nil {
		return nil, nil, err
	}
	if internal, err = rpc.LoadTLS(ic); err != nil {
		return nil, nil, err
	}
	return public, internal, nil
}

// Meta returns the cluster's metadata store (nil before Start), for tests
// and tools that work beside the servers.
func (c *Cluster) Meta() *meta.Store { return c.meta }
