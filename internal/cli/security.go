package cli

import (
	"os"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Environment variables that secure the CLI's connection to the proxy.
const (
	// EnvTLSCA is a CA bundle; setting it (or EnvTLSCert) turns TLS on.
	EnvTLSCA = "STRATA_TLS_CA"
	// EnvTLSCert and EnvTLSKey are a client certificate and key (mutual
	// TLS: the certificate's subject is the principal).
	EnvTLSCert = "STRATA_TLS_CERT"
	EnvTLSKey  = "STRATA_TLS_KEY"
	// EnvTLSServerName overrides the name checked in the proxy's
	// certificate.
	EnvTLSServerName = "STRATA_TLS_SERVER_NAME"
	// EnvToken is a bearer token.
	EnvToken = "STRATA_TOKEN"
)

// newClient connects to the proxy with the TLS and token settings of the
// environment.
func (a *App) newClient() (*client.Client, error) {
	var opts []client.Opt
	tc := rpc.TLSConfig{
		CAFile: os.Getenv(EnvTLSCA), CertFile: os.Getenv(EnvTLSCert), KeyFile: os.Getenv(EnvTLSKey),
		ServerName: os.Getenv(EnvTLSServerName),
	}
	if tc.Enabled() {
		t, err := rpc.LoadTLS(tc)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.TLS(t))
	}
	if tok := os.Getenv(EnvToken); tok != "" {
		opts = append(opts, client.Token(tok))
	}
	return client.New(a.server, opts...)
}
