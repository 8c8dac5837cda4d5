package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-mq/strata/internal/tlsgen"
)

// Etcd is a real single-member etcd server on loopback.
type Etcd struct {
	*Process
	// Endpoint is the client URL, "http://127.0.0.1:PORT", or
	// "https://127.0.0.1:PORT" for an etcd started by NewEtcdTLS.
	Endpoint string
	// DataDir holds the member's data; it survives Stop and Kill, so a
	// restart keeps every key.
	DataDir string
	// ClientTLS, for an etcd started by NewEtcdTLS, is a client
	// certificate (and the CA bundle) that etcd accepts; nil otherwise.
	ClientTLS *tlsgen.Files
}

// Endpoints returns the client URLs, as etcd's client wants them.
func (e *Etcd) Endpoints() []string { return []string{e.Endpoint} }

// NewEtcd starts an etcd server whose data and log live under dir.
func NewEtcd(dir string) (*Etcd, error) { return newEtcd(dir, nil) }

// newEtcd starts etcd, plaintext when sec is nil, otherwise serving TLS
// to clients and requiring their certificates (see NewEtcdTLS).
func newEtcd(dir string, sec *etcdSecurity) (*Etcd, error) {
	bin, err := Tool("etcd")
	if err != nil {
		return nil, err
	}
	client, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	peer, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "etcd-data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	scheme, hc := "http", http.DefaultClient
	var secArgs []string
	if sec != nil {
		scheme, hc = "https", sec.health
		secArgs = sec.args
	}
	e := &Etcd{Endpoint: scheme + "://" + client, DataDir: data}
	health := e.Endpoint + "/health"
	p, err := StartProcess(ProcessSpec{
		Name:   "etcd",
		Path:   bin,
		LogDir: dir,
		Args: append([]string{
			"--name", "strata-test",
			"--data-dir", data,
			"--listen-client-urls", e.Endpoint,
			"--advertise-client-urls", e.Endpoint,
			"--listen-peer-urls", "http://" + peer,
			"--initial-advertise-peer-urls", "http://" + peer,
			"--initial-cluster", "strata-test=http://" + peer,
			"--log-level", "warn",
		}, secArgs...),
		Ready: func(ctx context.Context) error { return httpClientReady(ctx, hc, health, `"health":"true"`) },
	})
	if err != nil {
		return nil, err
	}
	e.Process = p
	return e, nil
}

// StartEtcd starts an etcd server for the test and stops it when the test
// ends. It fails the test if etcd cannot start.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e, err := NewEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Kill)
	return e
}

// httpReady GETs url and reports nil when it answers 200 and, if want is not
// empty, its body contains want.
func httpReady(ctx context.Context, url, want string) error {
	return httpClientReady(ctx, http.DefaultClient, url, want)
}

// httpClientReady is httpReady with the HTTP client hc.
func httpClientReady(ctx context.Context, hc *http.Client, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %s", errNotReady, url, resp.Status)
	}
	if want != "" && !strings.Contains(string(body), want) {
		return fmt.Errorf("%w: %s answered %q", errNotReady, url, body)
	}
	return nil
}
