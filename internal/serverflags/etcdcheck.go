package serverflags

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// etcdCheckTimeout bounds CheckEtcd's request to one endpoint.
const etcdCheckTimeout = 5 * time.Second

// CheckEtcd finds out at start-up whether etcd refuses this server's TLS
// identity, which would otherwise only show as etcd requests timing out
// forever. It asks each https endpoint of c for /health with c.TLS and
// returns an error when a TLS handshake fails on a certificate: etcd
// refused the client certificate (another CA, none, expired) or etcd's
// own certificate does not verify. It returns nil as soon as one endpoint
// completes the handshake, and also when no endpoint answers at all (etcd
// may still be starting; the server then retries as usual). Plaintext
// configurations are not checked.
func CheckEtcd(c *meta.Config) error {
	if c.TLS == nil {
		return nil
	}
	tr := &http.Transport{TLSClientConfig: c.TLS.Clone(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: etcdCheckTimeout}
	var refused error
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), etcdCheckTimeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, (&url.URL{Scheme: "https", Host: u.Host, Path: "/health"}).String(), nil)
		if err != nil {
			cancel()
			continue
		}
		resp, err := hc.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			return nil // the handshake passed; what etcd answered is not our concern here
		}
		if certificateError(err) {
			refused = errors.Join(refused, fmt.Errorf("etcd %s: TLS handshake failed: %w", ep, err))
		}
	}
	if refused != nil {
		return fmt.Errorf("etcd refuses this server's TLS identity (check --etcd-cert, --etcd-key, --etcd-ca): %w", refused)
	}
	return nil
}

// certificateError reports whether err is a TLS failure over a
// certificate: an alert from the peer (it refused ours) or our refusal of
// the peer's. With TLS 1.3 the peer's alert arrives on the first read,
// where net/http keeps only its text.
func certificateError(err error) bool {
	if strings.Contains(err.Error(), "remote error: tls: ") {
		return true
	}
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	return errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &unknown) ||
		errors.As(err, &invalid) || errors.As(err, &host)
}
