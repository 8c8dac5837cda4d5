package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MinIO credentials used by every test server.
const (
	MinIOAccessKey = "strata-test"
	MinIOSecretKey = "strata-test-secret"
	MinIORegion    = "us-east-1"
)

// MinIO is a real MinIO server process on loopback.
type MinIO struct {
	*Process
	// Endpoint is the S3 URL, "http://127.0.0.1:PORT".
	Endpoint string
	// DataDir holds the objects; it survives Stop and Kill.
	DataDir string
}

// NewMinIO starts a MinIO server whose data and log live under dir.
func NewMinIO(dir string) (*MinIO, error) {
	bin, err := Tool("minio")
	if err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	console, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "minio-data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	m := &MinIO{Endpoint: "http://" + addr, DataDir: data}
	ready := m.Endpoint + "/minio/health/ready"
	p, err := StartProcess(ProcessSpec{
		Name:   "minio",
		Path:   bin,
		LogDir: dir,
		Args:   []string{"server", "--quiet", "--address", addr, "--console-address", console, data},
		Env: []string{
			"MINIO_ROOT_USER=" + MinIOAccessKey,
			"MINIO_ROOT_PASSWORD=" + MinIOSecretKey,
			"MINIO_BROWSER=off",
			"MINIO_UPDATE=off",
			"MINIO_CI_CD=1",
			"HOME=" + dir,
		},
		Ready: func(ctx context.Context) error { return httpReady(ctx, ready, "") },
	})
	if err != nil {
		return nil, err
	}
	m.Process = p
	return m, nil
}

// StartMinIO starts a MinIO server for the test and stops it when the test
// ends. It fails the test if MinIO cannot start.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m, err := NewMinIO(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	return m
}

// Client returns an S3 client for the server.
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(m.Endpoint),
		Region:       MinIORegion,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(MinIOAccessKey, MinIOSecretKey, ""),
	})
}

// CreateBucket creates a bucket; one that exists already is fine.
func (m *MinIO) CreateBucket(ctx context.Context, name string) error {
	_, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("testenv: create bucket %s: %w", name, err)
	}
	return nil
}
