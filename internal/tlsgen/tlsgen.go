// Package tlsgen makes throw-away certificate authorities and certificates
// for `strata dev --tls` and for tests. Keys are ECDSA P-256; nothing here
// is meant for production PKI.
package tlsgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long generated certificates are valid.
const Validity = 30 * 24 * time.Hour

// CA is a certificate authority that issues certificates.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded.
	PEM []byte
}

// NewCA returns a self-signed CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"strata"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tlsgen: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Issue returns a certificate and key (PEM) with subject common name cn,
// usable both as a server certificate for hosts (DNS names or IP
// addresses; "localhost" and 127.0.0.1 are always included) and as a
// client certificate. It names no server identity: to Strata it is a
// client's certificate (see IssueServer).
func (ca *CA) Issue(cn string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	return ca.issue(Spec{CN: cn, Hosts: hosts, Server: true, Client: true})
}

// Spec describes a certificate to issue.
type Spec struct {
	// CN is the subject common name (a client's principal).
	CN string
	// Hosts are the DNS names and IP addresses a server certificate is
	// valid for, besides "localhost", 127.0.0.1 and ::1.
	Hosts []string
	// URIs are URI subject alternative names: a Strata server's identity
	// ("spiffe://strata/broker", auth.ServerIdentity).
	URIs []string
	// Server and Client set the extended key usages: TLS server
	// authentication, client authentication.
	Server, Client bool
}

// IssueSpec returns a certificate and key (PEM) described by s.
func (ca *CA) IssueSpec(s Spec) (certPEM, keyPEM []byte, err error) { return ca.issue(s) }

func (ca *CA) issue(s Spec) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.CN, Organization: []string{"strata"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if s.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	if s.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range s.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, u := range s.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsgen: uri %q: %w", u, err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsgen: %w", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Files are the paths of one certificate's PEM files.
type Files struct {
	CA, Cert, Key string
}

// WriteCA writes the CA certificate to dir/ca.pem and returns its path.
func (ca *CA) WriteCA(dir string) (string, error) {
	p := filepath.Join(dir, "ca.pem")
	return p, os.WriteFile(p, ca.PEM, 0o644)
}

// WriteIssued issues a certificate for cn (see Issue) and writes it to
// dir/<name>.pem and dir/<name>-key.pem, beside dir/ca.pem.
func (ca *CA) WriteIssued(dir, name, cn string, hosts ...string) (Files, error) {
	return ca.WriteSpec(dir, name, Spec{CN: cn, Hosts: hosts, Server: true, Client: true})
}

// WriteSpec issues a certificate described by s and writes it to
// dir/<name>.pem and dir/<name>-key.pem, beside dir/ca.pem.
func (ca *CA) WriteSpec(dir, name string, s Spec) (Files, error) {
	caPath, err := ca.WriteCA(dir)
	if err != nil {
		return Files{}, err
	}
	c, k, err := ca.issue(s)
	if err != nil {
		return Files{}, err
	}
	f := Files{CA: caPath, Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := os.WriteFile(f.Cert, c, 0o644); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(f.Key, k, 0o600); err != nil {
		return Files{}, err
	}
	return f, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}
