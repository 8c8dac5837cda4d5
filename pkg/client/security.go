package client

import (
	"github.com/strata-mq/strata/pkg/rpc"
)

// TLS connects to the proxy over TLS: the proxy's certificate is verified
// against t's CA bundle (the system roots without one), and t's
// certificate, if any, is presented as the client certificate, which the
// proxy may take as the client's identity. Load t with rpc.LoadTLS:
//
//	t, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: "ca.pem", CertFile: "me.pem", KeyFile: "me-key.pem"})
//
// Default: plaintext.
func TLS(t *rpc.TLS) Opt {
	return clientOpt(func(c *clientConfig) { c.dial = append(c.dial, rpc.WithTLS(t)) })
}

// Token authenticates the client with a bearer token that the proxy's token
// file knows (see `strata acl token`). Use it with TLS: over plaintext the
// token travels in the clear. Default: none.
func Token(token string) Opt {
	return clientOpt(func(c *clientConfig) { c.dial = append(c.dial, rpc.WithBearerToken(token)) })
}
