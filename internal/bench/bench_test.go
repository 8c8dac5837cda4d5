package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/client/clienttest"
	"github.com/strata-mq/strata/pkg/objstore"
)

func checkSummary(t *testing.T, s *Summary, kind string) {
	t.Helper()
	if s.Kind != kind || s.Ops == 0 || s.Bytes == 0 || s.Errors != 0 || s.PerSec <= 0 || s.MBPerSec <= 0 {
		t.Fatalf("%s summary: %+v", kind, s)
	}
	if s.Latency.P50 <= 0 || s.Latency.P50 > s.Latency.P99 || s.Latency.P99 > s.Latency.Max {
		t.Fatalf("%s latency not ordered: %+v", kind, s.Latency)
	}
	if len(s.Series) == 0 {
		t.Fatalf("%s: no series", kind)
	}
	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil || !strings.Contains(text.String(), "p99") {
		t.Fatalf("%s text: %q, %v", kind, text.String(), err)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
}

// TestProduceConsumeE2E runs each load against an in-memory proxy: the
// produce run creates the topic, consume reads back exactly what was
// acknowledged, and e2e measures the round trip.
func TestProduceConsumeE2E(t *testing.T) {
	f := clienttest.Start(t)
	ctx := context.Background()
	var progress bytes.Buffer
	cfg := ProduceConfig{Server: f.Addr(), Topic: "t", Partitions: 4, RecordBytes: 256, Producers: 2,
		Linger: time.Millisecond, Duration: 1500 * time.Millisecond, Rate: 4000}
	ps, err := Produce(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, ps, "produce")
	if lines := strings.Count(progress.String(), "records/s"); lines < 1 {
		t.Fatalf("progress lines: %q", progress.String())
	}
	// Rate-limited: about 4000/s for 1.5s, never wildly more.
	if ps.Ops > 8000 || ps.Bytes != ps.Ops*256 {
		t.Fatalf("produced %d records, %d bytes at rate 4000/s for 1.5s", ps.Ops, ps.Bytes)
	}

	cs, err := Consume(ctx, ConsumeConfig{Server: f.Addr(), Topic: "t", Duration: 30 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, cs, "consume")
	if cs.Ops != ps.Ops {
		t.Fatalf("consumed %d records, produced %d", cs.Ops, ps.Ops)
	}

	cfg.Inflight, cfg.Rate = 1, 0 // latency-tuned: one record in flight
	es, err := E2E(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, es, "e2e")
	if a := es.AckLatency; a == nil || a.P50 <= 0 || a.Max < a.P50 {
		t.Fatalf("e2e summary has no acknowledgement latency of its records: %+v", a)
	}
	if ps.AckLatency != nil {
		t.Fatal("produce summary has a separate acknowledgement latency")
	}

	// A topic with another partition count is refused.
	cfg.Partitions = 3
	if _, err := Produce(ctx, cfg, nil); err == nil || !strings.Contains(err.Error(), "4 partitions") {
		t.Fatalf("produce to a topic with other partitions: %v", err)
	}
}

// TestE2EConsumeServer reads through a second address of the proxy
// (ConsumeServer): every fetch goes there and every produce to Server.
func TestE2EConsumeServer(t *testing.T) {
	f := clienttest.Start(t)
	second := f.Serve(t, "127.0.0.1:0")
	cfg := ProduceConfig{Server: f.Addr(), ConsumeServer: second.Addr, Topic: "t", Partitions: 2, RecordBytes: 256,
		Producers: 1, Linger: time.Millisecond, Duration: time.Second, Rate: 2000}
	s, err := E2E(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, s, "e2e")
	if second.Fetches.Load() == 0 || second.Produces.Load() != 0 {
		t.Fatalf("second address got %d fetches and %d produces, want fetches only", second.Fetches.Load(), second.Produces.Load())
	}
}

func TestS3AndPlots(t *testing.T) {
	dir := t.TempDir()
	store, err := objstore.NewFS(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := S3(ctx, store, S3Config{ObjectBytes: 64 << 10, Concurrency: 2, Duration: 1200 * time.Millisecond, Prefix: DefaultS3Prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkSummary(t, s, "s3")
	if s.Bytes != s.Ops*64<<10 {
		t.Fatalf("bytes %d for %d objects", s.Bytes, s.Ops)
	}
	for info, err := range store.List(ctx, "") {
		t.Fatalf("object left behind: %v %v", info, err)
	}

	files, err := WritePlots(filepath.Join(dir, "img", "s3"), s)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(dir, "img", "compare.png"))
	if err := PlotCompare(files[2], "compare", MetricMBPerSec, []string{"a", "b"}, []*Summary{s, s}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(r)
		r.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Fatalf("%s: not a plot: %v", f, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := ProduceConfig{Server: "x:1", Topic: "t", RecordBytes: 1024, Producers: 1, Duration: time.Second}
	tests := []struct {
		name   string
		mutate func(*ProduceConfig)
	}{
		{"no server", func(c *ProduceConfig) { c.Server = "" }},
		{"tiny record", func(c *ProduceConfig) { c.RecordBytes = 4 }},
		{"no producers", func(c *ProduceConfig) { c.Producers = 0 }},
		{"bad codec", func(c *ProduceConfig) { c.Codec = "brotli" }},
		{"negative rate", func(c *ProduceConfig) { c.Rate = -1 }},
		{"no duration", func(c *ProduceConfig) { c.Duration = 0 }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		c := ok
		tt.mutate(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	bad := S3Config{ObjectBytes: 0, Concurrency: 1, Duration: time.Second, Prefix: "p/"}
	if bad.Validate() == nil {
		t.Error("S3 object size 0 accepted")
	}
}
