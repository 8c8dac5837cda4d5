package dev_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/dev"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// start runs a dev cluster on a free port over dir until the test ends.
func start(t *testing.T, dir string) *dev.Cluster {
	t.Helper()
	c, err := dev.New(dev.Config{Addr: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDevClusterKeepsDataAcrossRestart runs the whole system in one
// process: create a topic, produce, fetch it back; then stop the cluster,
// start it again on the same data directory and read the same records.
func TestDevClusterKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := start(t, dir)
	conn, err := rpc.Dial(c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	api := stratav1.NewStrataClient(conn)
	if _, err := api.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "greetings", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	var recs []segment.Record
	for i := range 10 {
		recs = append(recs, segment.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "hello %d", i)})
	}
	batch, err := segment.EncodeBatch(recs, segment.BatchOptions{Codec: segment.CodecZstd})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.Produce(ctx, &stratav1.ProduceRequest{Topic: "greetings", Partition: 1, Batches: batch})
	if err != nil {
		t.Fatal(err)
	}
	if resp.BaseOffset != 0 || resp.LastOffset != 9 {
		t.Fatalf("produce got offsets %d..%d, want 0..9", resp.BaseOffset, resp.LastOffset)
	}
	conn.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c = start(t, dir)
	defer c.Close()
	conn, err = rpc.Dial(c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api = stratav1.NewStrataClient(conn)
	f, err := api.Fetch(ctx, &stratav1.FetchRequest{Topic: "greetings", Partition: 1, Offset: 0})
	if err != nil {
		t.Fatal(err)
	}
	got, err := segment.DecodeRecords(f.Batches)
	if err != nil {
		t.Fatal(err)
	}
	if f.HighWatermark != 10 || len(got) != 10 {
		t.Fatalf("after restart: high watermark %d, %d records; want 10 and 10", f.HighWatermark, len(got))
	}
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != fmt.Sprintf("hello %d", i) {
			t.Fatalf("record %d = offset %d %q", i, r.Offset, r.Value)
		}
	}
	// The restarted cluster takes new writes after the old ones.
	resp, err = api.Produce(ctx, &stratav1.ProduceRequest{Topic: "greetings", Partition: 1, Batches: batch})
	if err != nil {
		t.Fatal(err)
	}
	if resp.BaseOffset != 10 {
		t.Fatalf("produce after restart got base offset %d, want 10", resp.BaseOffset)
	}
}
