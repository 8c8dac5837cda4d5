package rpc_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/rpc"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pki is a CA with certificates issued into a temporary directory.
func pki(t *testing.T, caName string, names ...string) map[string]tlsgen.Files {
	t.Helper()
	ca, err := tlsgen.NewCA(caName)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := map[string]tlsgen.Files{}
	for _, n := range names {
		f, err := ca.WriteIssued(dir, n, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = f
	}
	return out
}

func load(t *testing.T, f tlsgen.Files, auth rpc.ClientAuth) *rpc.TLS {
	t.Helper()
	tl, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: f.Cert, KeyFile: f.Key, CAFile: f.CA, ClientAuth: auth, ReloadInterval: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// serve starts a health-only gRPC server with the given TLS.
func serve(t *testing.T, tl *rpc.TLS) string {
	t.Helper()
	l, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(quiet(), rpc.WithServerTLS(tl))
	srv.SetServing(true)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

func check(t *testing.T, addr string, opts ...rpc.DialOption) error {
	t.Helper()
	conn, err := rpc.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLS(t *testing.T) {
	good := pki(t, "cluster-ca", "server", "client")
	other := pki(t, "other-ca", "intruder")
	addr := serve(t, load(t, good["server"], rpc.ClientAuthRequire))

	caOnly, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: good["client"].CA})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []rpc.DialOption
		ok   bool
	}{
		{"cert from the cluster CA", []rpc.DialOption{rpc.WithTLS(load(t, good["client"], ""))}, true},
		{"cert from another CA", []rpc.DialOption{rpc.WithTLS(load(t, other["intruder"], ""))}, false},
		{"no client cert", []rpc.DialOption{rpc.WithTLS(caOnly)}, false},
		{"plaintext", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, addr, tc.opts...)
			if (err == nil) != tc.ok {
				t.Fatalf("health check err = %v, want ok=%v", err, tc.ok)
			}
		})
	}

	// A client trusting another CA refuses the server.
	intruderTrust := load(t, other["intruder"], "")
	if err := check(t, addr, rpc.WithTLS(intruderTrust)); err == nil {
		t.Fatal("client accepted a server certificate from a CA it does not trust")
	}
}

func TestTLSReload(t *testing.T) {
	first := pki(t, "ca-1", "server")
	tl := load(t, first["server"], rpc.ClientAuthNone)
	addr := serve(t, tl)

	trust1, _ := rpc.LoadTLS(rpc.TLSConfig{CAFile: first["server"].CA})
	if err := check(t, addr, rpc.WithTLS(trust1)); err != nil {
		t.Fatal(err)
	}
	// Replace the server's files with a certificate of a new CA; new
	// handshakes must present it without a restart.
	second := pki(t, "ca-2", "server")
	for _, p := range [][2]string{{second["server"].Cert, first["server"].Cert}, {second["server"].Key, first["server"].Key}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trust2, _ := rpc.LoadTLS(rpc.TLSConfig{CAFile: second["server"].CA})
	deadline := time.Now().Add(10 * time.Second)
	for check(t, addr, rpc.WithTLS(trust2)) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the reloaded certificate was never served")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestMetricsTLS(t *testing.T) {
	f := pki(t, "ca", "server")["server"]
	tl := load(t, f, rpc.ClientAuthRequire)
	l, err := rpc.ListenMetrics("127.0.0.1:0", tl)
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.MetricsServer(prometheus.NewRegistry())
	go srv.Serve(l)
	defer srv.Close()
	trust, _ := rpc.LoadTLS(rpc.TLSConfig{CAFile: f.CA})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: trust.ClientConfig()}, Timeout: 5 * time.Second}
	resp, err := c.Get("https://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get("https://" + l.Addr().String() + "/healthz"); err == nil {
		t.Fatal("an untrusting client accepted the metrics certificate")
	}
}

func TestLimitConnsPerHost(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan string, 4)
	l := rpc.LimitConnsPerHost(raw, 2, func(h string) { rejected <- h })
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	<-accepted
	second := <-accepted
	if h := <-rejected; h != "127.0.0.1" {
		t.Fatalf("rejected host %q", h)
	}
	// Closing one frees a slot.
	second.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot was not reused")
	}
	_ = conns
}

// TestClientCAFile: a listener with ClientCAFile verifies client
// certificates against it, so clients can hold certificates of their own
// CA; a listener with only CAFile (a broker's) refuses those at the
// handshake.
func TestClientCAFile(t *testing.T) {
	servers := pki(t, "servers-ca", "proxy", "broker")
	clients := pki(t, "clients-ca", "app")
	proxy, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: servers["proxy"].Cert, KeyFile: servers["proxy"].Key, CAFile: servers["proxy"].CA,
		ClientCAFile: clients["app"].CA, ClientAuth: rpc.ClientAuthRequire, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := serve(t, proxy)
	brokerAddr := serve(t, load(t, servers["broker"], rpc.ClientAuthRequire))
	app, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: clients["app"].Cert, KeyFile: clients["app"].Key, CAFile: servers["proxy"].CA, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := check(t, proxyAddr, rpc.WithTLS(app)); err != nil {
		t.Fatalf("client certificate of the client CA at the proxy: %v", err)
	}
	if err := check(t, brokerAddr, rpc.WithTLS(app)); err == nil {
		t.Fatal("a broker accepted a certificate of the client CA")
	}
	if err := check(t, brokerAddr, rpc.WithTLS(proxy)); err != nil {
		t.Fatalf("the proxy's server certificate at the broker: %v", err)
	}
}

// TestReloadingClientConfig: a long-lived client (etcd's) trusts a CA
// rotated in its CA file without a restart, and verifies the server's
// name against the endpoint hosts when it dials an IP address.
func TestReloadingClientConfig(t *testing.T) {
	first := pki(t, "ca-1", "server")
	srv := load(t, first["server"], rpc.ClientAuthNone)
	addr := serve(t, srv)
	caFile := t.TempDir() + "/ca.pem"
	copyFile(t, first["server"].CA, caFile)
	client, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: caFile, ReloadInterval: time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	reloading := client.ReloadingClientConfig([]string{"127.0.0.1"})
	captured := client.ClientConfig()
	handshake := func(c *tls.Config) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := handshake(reloading); err != nil {
		t.Fatal(err)
	}
	if err := handshake(client.ReloadingClientConfig([]string{"10.9.9.9"})); err == nil {
		t.Fatal("a certificate not valid for the endpoint hosts was accepted")
	}
	// Rotate: the server gets a certificate of a new CA, the client's CA
	// file the new CA.
	second := pki(t, "ca-2", "server")
	copyFile(t, second["server"].Cert, first["server"].Cert)
	copyFile(t, second["server"].Key, first["server"].Key)
	copyFile(t, second["server"].CA, caFile)
	deadline := time.Now().Add(10 * time.Second)
	for handshake(reloading) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the rotated CA was never trusted")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if err := handshake(captured); err == nil {
		t.Fatal("a config made before the rotation trusted the new CA (the test proves nothing)")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
