package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// ClientAuth says whether a TLS listener asks its clients for certificates.
type ClientAuth string

// Client authentication modes of TLSConfig.ClientAuth.
const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuth = "none"
	// ClientAuthRequest verifies a client certificate against CAFile when
	// the client presents one, and lets clients without one in (they must
	// then authenticate otherwise, e.g. with a bearer token).
	ClientAuthRequest ClientAuth = "request"
	// ClientAuthRequire refuses the handshake of clients without a
	// certificate that CAFile verifies: mutual TLS.
	ClientAuthRequire ClientAuth = "require"
)

// DefaultTLSReloadInterval is how often TLS files are checked for change.
const DefaultTLSReloadInterval = time.Second

// TLSConfig names the PEM files of a process's TLS identity and trust. One
// TLSConfig serves both directions: the certificate is what the process's
// listeners serve and what it presents as a client certificate when it
// dials its peers; the CA bundle verifies the servers it dials and the
// client certificates it accepts. The zero value means plaintext.
type TLSConfig struct {
	// CertFile and KeyFile are the PEM certificate chain and private key.
	// Required to serve TLS; optional for a client (then it presents no
	// certificate).
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// CAFile is a PEM bundle of the CAs that sign peers' certificates.
	// Empty: dialling trusts the system roots, and listeners verify no
	// client certificates.
	CAFile string `json:"caFile,omitempty"`
	// ClientCAFile, if set, verifies client certificates on listeners
	// instead of CAFile: a proxy's clients may hold certificates of a CA
	// of their own, which then cannot even complete a handshake with a
	// broker or coordinator (those verify callers with CAFile only).
	ClientCAFile string `json:"clientCAFile,omitempty"`
	// ClientAuth is what listeners ask of clients. Default ClientAuthNone,
	// or ClientAuthRequest when CAFile or ClientCAFile is set.
	ClientAuth ClientAuth `json:"clientAuth,omitempty"`
	// TrustDomain is the domain of the server identities this process
	// trusts in certificates (URIs spiffe://<domain>/<role>; see
	// auth.ServerGuard, which enforces them). Empty: "strata". TLS itself
	// does not check it.
	TrustDomain string `json:"trustDomain,omitempty"`
	// ServerName overrides the host name checked in the server
	// certificates of dialled peers. Empty: the dialled host.
	ServerName string `json:"serverName,omitempty"`
	// ReloadInterval is how often the files are checked for change (by
	// size and modification time, on use). Default
	// DefaultTLSReloadInterval.
	ReloadInterval time.Duration `json:"reloadInterval,omitempty"`
	// Logger receives reload events and failures. Default slog.Default().
	Logger *slog.Logger `json:"-"`
}

// Enabled reports whether the configuration asks for TLS at all.
func (c TLSConfig) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || c.ClientCAFile != ""
}

// clientCAFile is the bundle that verifies client certificates.
func (c TLSConfig) clientCAFile() string {
	if c.ClientCAFile != "" {
		return c.ClientCAFile
	}
	return c.CAFile
}

// Validate reports a configuration that cannot work.
func (c TLSConfig) Validate() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("rpc: tls: set both a certificate and a key file, or neither")
	case c.ReloadInterval < 0:
		return errors.New("rpc: tls: reload interval must be positive")
	}
	switch c.ClientAuth {
	case "", ClientAuthNone, ClientAuthRequest:
	case ClientAuthRequire:
		if c.clientCAFile() == "" {
			return errors.New("rpc: tls: client auth \"require\" needs a CA file to verify client certificates")
		}
	default:
		return fmt.Errorf("rpc: tls: client auth %q, want none, request or require", c.ClientAuth)
	}
	return nil
}

// TLS is a loaded TLSConfig whose files are reloaded when they change:
// new handshakes use the new certificate and CA bundle, established
// connections keep theirs. One TLS may be shared by every server and
// client of a process. A nil *TLS means plaintext everywhere it is
// accepted.
type TLS struct {
	cfg TLSConfig
	log *slog.Logger

	mu         sync.Mutex // guards every field below
	cert       *tls.Certificate
	pool       *x509.CertPool
	clientPool *x509.CertPool // verifies client certificates: pool, or ClientCAFile's
	stamps     []fileStamp    // of files(), in that order
	checkedAt  time.Time
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// LoadTLS loads the files of c. It returns nil (plaintext) when c names no
// files.
func LoadTLS(c TLSConfig) (*TLS, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, nil
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = DefaultTLSReloadInterval
	}
	if c.ClientAuth == "" {
		c.ClientAuth = ClientAuthNone
		if c.clientCAFile() != "" {
			c.ClientAuth = ClientAuthRequest
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	t := &TLS{cfg: c, log: c.Logger}
	if err := t.load(); err != nil {
		return nil, err
	}
	t.checkedAt = time.Now()
	return t, nil
}

// Config returns the configuration t was loaded from.
func (t *TLS) Config() TLSConfig { return t.cfg }

// HasCertificate reports whether t carries a certificate (can serve).
func (t *TLS) HasCertificate() bool { return t != nil && t.cfg.CertFile != "" }

func (t *TLS) files() []string {
	return []string{t.cfg.CertFile, t.cfg.KeyFile, t.cfg.CAFile, t.cfg.ClientCAFile}
}

func stamps(files []string) ([]fileStamp, error) {
	out := make([]fileStamp, len(files))
	for i, f := range files {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("rpc: tls: %w", err)
		}
		out[i] = fileStamp{size: st.Size(), mod: st.ModTime()}
	}
	return out, nil
}

// load reads every file. t.mu must be held, or t not yet shared.
func (t *TLS) load() error {
	st, err := stamps(t.files())
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if t.cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(t.cfg.CertFile, t.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("rpc: tls: load %s: %w", t.cfg.CertFile, err)
		}
		cert = &c
	}
	var pool *x509.CertPool
	if t.cfg.CAFile != "" {
		if pool, err = LoadCAFile(t.cfg.CAFile); err != nil {
			return err
		}
	}
	clientPool := pool
	if t.cfg.ClientCAFile != "" {
		if clientPool, err = LoadCAFile(t.cfg.ClientCAFile); err != nil {
			return err
		}
	}
	t.cert, t.pool, t.clientPool, t.stamps = cert, pool, clientPool, st
	return nil
}

// LoadCAFile reads a PEM bundle of CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rpc: tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("rpc: tls: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// current returns the certificate and CA pool to use now, reloading them
// first if ReloadInterval has passed and a file changed. A failed reload
// keeps the previous material and is logged.
func (t *TLS) current() (*tls.Certificate, *x509.CertPool) {
	cert, pool, _ := t.currentAll()
	return cert, pool
}

// currentAll is current with the pool that verifies client certificates.
func (t *TLS) currentAll() (*tls.Certificate, *x509.CertPool, *x509.CertPool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.checkedAt) >= t.cfg.ReloadInterval {
		t.checkedAt = time.Now()
		st, err := stamps(t.files())
		switch {
		case err != nil:
			t.log.Warn("tls files unreadable; keeping the loaded ones", "err", err)
		case !equalStamps(st, t.stamps):
			if err := t.load(); err != nil {
				t.log.Warn("tls reload failed; keeping the loaded files", "err", err)
			} else {
				t.log.Info("tls files reloaded", "cert", t.cfg.CertFile, "ca", t.cfg.CAFile, "client_ca", t.cfg.ClientCAFile)
			}
		}
	}
	return t.cert, t.pool, t.clientPool
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].size != b[i].size || !a[i].mod.Equal(b[i].mod) {
			return false
		}
	}
	return true
}

// ServerConfig returns the tls.Config of a gRPC listener: it serves the
// current certificate and verifies client certificates per ClientAuth
// against the current client CA bundle (ClientCAFile, else CAFile), both
// reloaded on change.
func (t *TLS) ServerConfig() *tls.Config {
	return t.serverConfig(t.cfg.ClientAuth, []string{"h2"})
}

// ListenerConfig is ServerConfig for a listener of another protocol
// (ALPN protos, none for a protocol without ALPN such as Kafka's): the
// same certificate, client authentication and client CA bundle.
func (t *TLS) ListenerConfig(protos ...string) *tls.Config {
	return t.serverConfig(t.cfg.ClientAuth, protos)
}

func (t *TLS) serverConfig(auth ClientAuth, protos []string) *tls.Config {
	mode := tls.NoClientCert
	switch auth {
	case ClientAuthRequest:
		mode = tls.VerifyClientCertIfGiven
	case ClientAuthRequire:
		mode = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, _, pool := t.currentAll()
			if cert == nil {
				return nil, errors.New("rpc: tls: no server certificate configured")
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   protos,
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   mode,
			}, nil
		},
	}
}

// ClientConfig returns the tls.Config for dialling a peer: it verifies the
// server against the CA bundle (the system roots without one) and presents
// the current certificate, if any, as the client certificate. The CA bundle
// is the one current when ClientConfig is called; the client certificate
// is reloaded on change for every handshake.
func (t *TLS) ClientConfig() *tls.Config {
	_, pool := t.current()
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		ServerName: t.cfg.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := t.current()
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		},
	}
}

// ReloadingClientConfig is ClientConfig for a connection made once and
// kept for the life of the process (etcd's): the CA bundle too is the
// current one at every handshake, so a CA rotated in the file is trusted
// by the next reconnect without a restart. The server's certificate must
// be valid for the name dialled (the SNI name or ServerName) or, when the
// peer is dialled by IP address (no SNI), for one of hosts (the hosts of
// the configured endpoints). Without CAFile it is ClientConfig: the
// system roots do not change under a process.
func (t *TLS) ReloadingClientConfig(hosts []string) *tls.Config {
	c := t.ClientConfig()
	if t.cfg.CAFile == "" {
		return c
	}
	c.RootCAs = nil
	// Verification moves to VerifyConnection, which sees the bundle of
	// the moment; InsecureSkipVerify only turns off the built-in check.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		_, pool := t.current()
		return verifyServer(cs, pool, t.cfg.ServerName, hosts)
	}
	return c
}

// verifyServer verifies a server's chain against pool and its name: name
// (else the SNI name) or, with neither, any of hosts.
func verifyServer(cs tls.ConnectionState, pool *x509.CertPool, name string, hosts []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("rpc: tls: server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	if name == "" {
		name = cs.ServerName
	}
	if name != "" {
		return leaf.VerifyHostname(name)
	}
	var err error = errors.New("rpc: tls: no host name to verify the server's certificate against")
	for _, h := range hosts {
		if err = leaf.VerifyHostname(h); err == nil {
			return nil
		}
	}
	return err
}

// ListenMetrics opens the listener of a metrics (HTTP) endpoint: plain TCP
// when t is nil, otherwise TLS with t's certificate that verifies client
// certificates only when given (scrapers need none).
func ListenMetrics(addr string, t *TLS) (net.Listener, error) {
	l, err := Listen(addr)
	if err != nil || t == nil {
		return l, err
	}
	if !t.HasCertificate() {
		l.Close()
		return nil, errors.New("rpc: tls: a metrics listener needs a certificate")
	}
	mode := ClientAuthNone
	if t.cfg.clientCAFile() != "" {
		mode = ClientAuthRequest
	}
	return tls.NewListener(l, t.serverConfig(mode, []string{"http/1.1"})), nil
}

// bearer is a gRPC per-RPC credential carrying a bearer token.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }
