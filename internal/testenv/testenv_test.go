package testenv_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/strata-mq/strata/internal/testenv"
)

// healthy reports whether url answers 200 within a second.
func healthy(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestEtcdLifecycle checks the process controls the fault tests rely on:
// a paused etcd stops answering, a resumed one answers again, and a killed
// one restarts on the same port.
func TestEtcdLifecycle(t *testing.T) {
	e := testenv.StartEtcd(t)
	health := e.Endpoint + "/health"
	if !healthy(health) {
		t.Fatal("etcd not healthy after start")
	}
	if err := e.Pause(); err != nil {
		t.Fatal(err)
	}
	if healthy(health) {
		t.Fatal("paused etcd still answers")
	}
	if err := e.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := e.WaitReady(); err != nil {
		t.Fatal(err)
	}
	e.Kill()
	if e.Running() {
		t.Fatal("running after kill")
	}
	if healthy(health) {
		t.Fatal("killed etcd still answers")
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if !healthy(health) {
		t.Fatal("restarted etcd not healthy")
	}
}

// TestMinIOKeepsObjectsAcrossRestart stores an object, stops MinIO with
// SIGTERM, starts it again and reads the object back.
func TestMinIOKeepsObjectsAcrossRestart(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	if err := m.CreateBucket(ctx, "strata"); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateBucket(ctx, "strata"); err != nil { // idempotent
		t.Fatal(err)
	}
	put := &s3.PutObjectInput{Bucket: aws.String("strata"), Key: aws.String("k"), Body: strings.NewReader("v")}
	if _, err := m.Client().PutObject(ctx, put); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if m.Running() {
		t.Fatal("running after stop")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := m.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("strata"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(out.ContentLength) != 1 {
		t.Fatalf("object size %d after restart, want 1", aws.ToInt64(out.ContentLength))
	}
}
