package bench

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/objstore"
)

// TestProfileInProcess runs the produce benchmark, then the consume
// benchmark, against a whole cluster in this process — `strata dev`: an
// embedded etcd, a coordinator, a broker and a proxy — storing on a real
// MinIO, so that `go test -cpuprofile` profiles every Strata role and the
// client at once (docs/benchmarks.md). It runs only when
// STRATA_BENCH_PROFILE holds the produce duration:
//
//	STRATA_BENCH_PROFILE=15s go test ./internal/bench -run ProfileInProcess -v -cpuprofile cpu.out
func TestProfileInProcess(t *testing.T) {
	env := os.Getenv("STRATA_BENCH_PROFILE")
	if env == "" {
		t.Skip("set STRATA_BENCH_PROFILE=<duration> to run")
	}
	d, err := time.ParseDuration(env)
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.StartMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	if err := m.CreateBucket(ctx, "profile"); err != nil {
		t.Fatal(err)
	}
	c, err := dev.New(dev.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		S3: objstore.S3Config{Endpoint: m.Endpoint, Region: testenv.MinIORegion, Bucket: "profile", PathStyle: true,
			AccessKeyID: testenv.MinIOAccessKey, SecretAccessKey: testenv.MinIOSecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-c.Ready()
	ps, err := Produce(ctx, ProduceConfig{Server: c.Addr(), Topic: "profile", Partitions: DefaultPartitions,
		RecordBytes: DefaultRecordBytes, Producers: 1, Linger: 5 * time.Millisecond, Duration: d}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ps.WriteText(os.Stderr)
	cs, err := Consume(ctx, ConsumeConfig{Server: c.Addr(), Topic: "profile", Duration: 2 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = cs.WriteText(os.Stderr)
}
