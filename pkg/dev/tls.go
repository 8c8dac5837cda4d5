package dev

import (
	"fmt"
	"os"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TLSFiles are the PEM files GenerateTLS writes.
type TLSFiles struct {
	// CA is the throw-away CA's certificate: what clients trust.
	CA string
	// ServerCert and ServerKey are the servers' certificate (subject
	// "strata-server", valid for localhost and 127.0.0.1).
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client certificate whose principal is
	// ClientPrincipal, for trying mutual TLS from clients.
	ClientCert, ClientKey string
}

// ClientPrincipal is the subject common name of the client certificate
// GenerateTLS writes.
const ClientPrincipal = "dev-client"

// GenerateTLS makes a throw-away CA in dir, with a server certificate and a
// client certificate, reusing the files if dir has them already (so that
// clients configured against an earlier run keep working).
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
	if have {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSFiles{}, fmt.Errorf("dev: tls: %w", err)
	}
	ca, err := tlsgen.NewCA("strata-dev-ca")
	if err != nil {
		return TLSFiles{}, err
	}
	if _, err := ca.WriteIssued(dir, "server", "strata-server"); err != nil {
		return TLSFiles{}, err
	}
	if _, err := ca.WriteIssued(dir, "client", ClientPrincipal); err != nil {
		return TLSFiles{}, err
	}
	return f, nil
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
