package dev_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestDevClientCertStaysOutside: `strata dev --tls` hands out a client
// certificate that the proxy accepts (here as a super user) but that the
// coordinator and the broker refuse, even though the same CA signed it.
func TestDevClientCertStaysOutside(t *testing.T) {
	dir := t.TempDir()
	files, err := dev.GenerateTLS(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	tc := files.ServerTLS()
	c, err := dev.New(dev.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TLS: &tc,
		Auth: auth.Config{ClientCerts: true, ACLs: true, SuperUsers: []string{dev.ClientPrincipal}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	clientTLS, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rpc.Dial(c.Addr(), rpc.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The coordinator's view may not show the broker yet: wait for it.
	var st *stratav1.ClusterStatusResponse
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st, err = stratav1.NewStrataClient(conn).ClusterStatus(ctx, &stratav1.ClusterStatusRequest{}); err != nil {
			t.Fatalf("the client certificate at the proxy: %v", err)
		}
		if st.GetCoordinatorAddr() != "" && len(st.GetBrokers()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status %v: no coordinator address or broker", st)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	coord, err := rpc.Dial(st.GetCoordinatorAddr(), rpc.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	_, err = stratav1.NewCoordinatorClient(coord).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "sneaky", Partitions: 1})
	if s := status.Convert(err); s.Code() != codes.PermissionDenied || !strings.Contains(s.Message(), "is not a Strata server's") {
		t.Fatalf("client certificate at the coordinator: %v, want PermissionDenied", err)
	}
	br, err := rpc.Dial(st.GetBrokers()[0].GetAddr(), rpc.WithTLS(clientTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	_, err = stratav1.NewBrokerClient(br).ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{Drain: true})
	if s := status.Convert(err); s.Code() != codes.PermissionDenied {
		t.Fatalf("client certificate at the broker: %v, want PermissionDenied", err)
	}
	if _, err := c.Meta().GetTopic(ctx, "sneaky"); err == nil {
		t.Fatal("the refused CreateTopic created the topic")
	}
}

// TestGenerateTLSUpgradesOldFiles: files written before servers carried
// identities are replaced, so an old data directory keeps working; files
// with identities are reused.
func TestGenerateTLSUpgradesOldFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("old")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"server", "client"} {
		if _, err := ca.WriteIssued(dir, n, n); err != nil {
			t.Fatal(err)
		}
	}
	f, err := dev.GenerateTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	server := parseCert(t, f.ServerCert)
	want := auth.ServerIdentities(auth.DefaultTrustDomain, auth.Roles...)
	var got []string
	for _, u := range server.URIs {
		got = append(got, u.String())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("server identities %v, want %v", got, want)
	}
	client := parseCert(t, f.ClientCert)
	if len(client.URIs) != 0 || !slices.Equal(client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("client certificate: uris %v, key usages %v; want none and client auth only", client.URIs, client.ExtKeyUsage)
	}
	before, _ := os.ReadFile(f.ServerCert)
	if _, err := dev.GenerateTLS(dir); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(f.ServerCert); string(after) != string(before) {
		t.Fatal("current files were regenerated")
	}
}

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
