package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"net"
	"strings"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Environment variables that secure the CLI's connection to the proxy;
// each is the environment form of the global flag of the same name.
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

// connFlags are the global flags that secure the connection to the proxy.
type connFlags struct {
	token string
	tls   rpc.TLSConfig
}

// globalFlags registers the flags every command accepts, before or after
// its name: the proxy address and how to reach it securely.
func (a *App) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.server, "server", a.server, serverUsage)
	fs.StringVar(&a.conn.token, "token", a.conn.token, "bearer token to present to the proxy")
	fs.StringVar(&a.conn.tls.CAFile, "tls-ca", a.conn.tls.CAFile, "CA bundle of the proxy's certificate; turns TLS on")
	fs.StringVar(&a.conn.tls.CertFile, "tls-cert", a.conn.tls.CertFile, "client certificate for mutual TLS (its subject is the principal); turns TLS on")
	fs.StringVar(&a.conn.tls.KeyFile, "tls-key", a.conn.tls.KeyFile, "the client certificate's key")
	fs.StringVar(&a.conn.tls.ServerName, "tls-server-name", a.conn.tls.ServerName, "name to verify in the proxy's certificate (default: the --server host)")
}

// newClient connects to the proxy with the TLS and token settings of the
// flags (or their STRATA_* variables).
func (a *App) newClient() (*client.Client, error) {
	var opts []client.Opt
	if a.conn.tls.Enabled() {
		t, err := rpc.LoadTLS(a.conn.tls)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.TLS(t))
	}
	if a.conn.token != "" {
		opts = append(opts, client.Token(a.conn.token))
	}
	return client.New(withDefaultPort(a.server), opts...)
}

// DefaultPort is the proxy port assumed when --server names only a host.
const DefaultPort = "7070"

// withDefaultPort adds DefaultPort to each comma-separated address of
// server that has none ("broker-1" → "broker-1:7070", "::1" → "[::1]:7070").
func withDefaultPort(server string) string {
	addrs := strings.Split(server, ",")
	for i, addr := range addrs {
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil && addr != "" {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), DefaultPort)
		}
		addrs[i] = addr
	}
	return strings.Join(addrs, ",")
}

// tlsMismatchTimeout bounds the probe that explains an unreachable proxy.
const tlsMismatchTimeout = 2 * time.Second

// tlsMismatch probes the proxy once the connection failed: a plaintext
// client against a TLS proxy (or the reverse) sees only a closed
// connection, so say which side speaks TLS. It returns "" when the probe
// shows no mismatch.
func (a *App) tlsMismatch() string {
	ctx, cancel := context.WithTimeout(context.Background(), tlsMismatchTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", withDefaultPort(a.server))
	if err != nil {
		return ""
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(tlsMismatchTimeout))
	// Only the handshake's first answer matters, not who the server is.
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	err = conn.HandshakeContext(ctx)
	var rec tls.RecordHeaderError
	switch {
	case err == nil && !a.conn.tls.Enabled():
		return "the proxy serves TLS: pass --tls-ca FILE (or STRATA_TLS_CA) with the CA that signed its certificate"
	case errors.As(err, &rec) && a.conn.tls.Enabled():
		return "the proxy does not serve TLS: drop --tls-ca/--tls-cert (and STRATA_TLS_*)"
	}
	return ""
}
