package serverflags

import (
	"flag"
	"fmt"
	"net/url"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Security holds the TLS flags every server shares: its own certificate
// and CA (listeners and connections to other Strata servers) and the CA
// bundles and client certificates of its etcd and S3 connections.
type Security struct {
	server, etcd, s3 rpc.TLSConfig
	clientAuth       string
	trustDomain      string
}

// endpointHosts returns the hosts of etcd endpoint URLs: the names an
// etcd certificate may be verified against when it is dialled by IP.
func endpointHosts(eps []string) []string {
	var out []string
	for _, ep := range eps {
		if u, err := url.Parse(ep); err == nil && u.Hostname() != "" {
			out = append(out, u.Hostname())
		}
	}
	return out
}

// TLS registers the TLS flags. internal says the server is one that only
// Strata's own processes call (broker, coordinator): with a CA it then
// requires client certificates (mutual TLS) unless --tls-client-auth says
// otherwise; the proxy only verifies them when given.
func TLS(fs *flag.FlagSet) *Security {
	s := &Security{}
	fs.StringVar(&s.server.CertFile, "tls-cert", "", "PEM certificate of this server's listeners, also its client certificate towards other servers (empty: plaintext)")
	fs.StringVar(&s.server.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.server.CAFile, "tls-ca", "", "PEM CA bundle that verifies the other servers (and client certificates unless --tls-client-ca is set)")
	fs.StringVar(&s.server.ServerName, "tls-server-name", "", "name to verify in the certificates of other servers this one dials (default: the dialled host); lets pods that advertise IPs share one certificate")
	fs.StringVar(&s.server.ClientCAFile, "tls-client-ca", "", "proxies: PEM CA bundle that verifies client certificates instead of --tls-ca, so clients can hold certificates of their own CA (brokers and coordinators accept only servers and refuse this flag)")
	fs.StringVar(&s.trustDomain, "tls-trust-domain", auth.DefaultTrustDomain, "trust domain of the servers' identities: each server certificate carries the URI spiffe://DOMAIN/ROLE (ROLE proxy, broker or coordinator), and brokers and coordinators serve only callers whose certificate names a role")
	fs.StringVar(&s.clientAuth, "tls-client-auth", "", "client certificates: none, request (verify if given) or require (mutual TLS); default require for brokers and coordinators and request for proxies when --tls-ca is set")
	fs.StringVar(&s.etcd.CAFile, "etcd-ca", "", "PEM CA bundle of etcd's certificate (https endpoints)")
	fs.StringVar(&s.etcd.CertFile, "etcd-cert", "", "PEM client certificate for etcd")
	fs.StringVar(&s.etcd.KeyFile, "etcd-key", "", "PEM key of --etcd-cert")
	fs.StringVar(&s.s3.CAFile, "s3-ca", "", "PEM CA bundle of the S3 endpoint's certificate")
	fs.StringVar(&s.s3.CertFile, "s3-cert", "", "PEM client certificate for the S3 endpoint")
	fs.StringVar(&s.s3.KeyFile, "s3-key", "", "PEM key of --s3-cert")
	return s
}

// Apply loads the files named by the flags: it sets the etcd and S3 TLS
// of mc and sc and returns the server's own TLS (nil for plaintext).
// internal selects the default client authentication (see TLS).
func (s *Security) Apply(mc *meta.Config, sc *objstore.Config, internal bool) (*rpc.TLS, error) {
	for _, x := range []struct {
		name string
		c    rpc.TLSConfig
		set  func(*rpc.TLS)
	}{
		{"etcd", s.etcd, func(t *rpc.TLS) { mc.TLS = t.ReloadingClientConfig(endpointHosts(mc.Endpoints)) }},
		{"s3", s.s3, func(t *rpc.TLS) { sc.S3.TLS = t.ClientConfig() }},
	} {
		if !x.c.Enabled() {
			continue
		}
		t, err := rpc.LoadTLS(x.c)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.name, err)
		}
		x.set(t)
	}
	if !auth.ValidTrustDomain(s.trustDomain) {
		return nil, fmt.Errorf("--tls-trust-domain %q: want lower-case letters, digits, '.', '-' or '_'", s.trustDomain)
	}
	c := s.server
	c.ClientAuth = rpc.ClientAuth(s.clientAuth)
	c.TrustDomain = s.trustDomain
	if internal && c.Enabled() {
		switch {
		case c.ClientCAFile != "":
			return nil, fmt.Errorf("--tls-client-ca is for proxies: brokers and coordinators accept only servers, whose certificates --tls-ca verifies")
		case c.ClientAuth == rpc.ClientAuthNone:
			return nil, fmt.Errorf("--tls-client-auth none: brokers and coordinators identify their callers by certificate; use require (or request, which lets only health checks in without one)")
		}
	}
	if c.ClientAuth == "" && c.CAFile != "" {
		c.ClientAuth = rpc.ClientAuthRequest
		if internal {
			c.ClientAuth = rpc.ClientAuthRequire
		}
	}
	if c.Enabled() && c.CertFile == "" {
		return nil, fmt.Errorf("--tls-ca without --tls-cert: a server needs a certificate to serve TLS")
	}
	return rpc.LoadTLS(c)
}
