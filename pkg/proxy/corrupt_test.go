package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/rpc"
)

// TestCorruptSegmentIsReportedAndContained flips bytes inside one stored
// segment chunk. A fresh proxy (so that no cache holds the good bytes)
// must report the corruption clearly — naming the object, the partition
// and the offset — while the partition's other segments and the other
// partition stay readable, and nothing already stored changes.
func TestCorruptSegmentIsReportedAndContained(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("ledger", 2)
	e.startBroker("b1")
	e.assign(top.ID, 0, "b1")
	e.assign(top.ID, 1, "b1")
	for i := range 3 { // three segments of partition 0: offsets 0-4, 5-9, 10-14
		e.produce("ledger", 0, batch(t, 5, int64(1000*i)))
	}
	e.produce("ledger", 1, batch(t, 4, 1))

	// Corrupt the middle of the second segment's chunk.
	entry, err := e.meta.FindSegment(e.ctx, top.ID, 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.store.Get(e.ctx, entry.ObjectKey, 0, entry.ObjectSize)
	if err != nil {
		t.Fatal(err)
	}
	mid := entry.Pos + entry.Len - 8
	for i := range int64(4) {
		obj[mid+i] ^= 0xA5
	}
	if err := e.store.Put(e.ctx, entry.ObjectKey, obj); err != nil {
		t.Fatal(err)
	}

	srv, err := New(Config{ListenAddr: "127.0.0.1:0", Meta: e.meta, Store: e.store, Registry: prometheus.NewRegistry(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	<-srv.Ready()
	conn, err := rpc.Dial(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := stratav1.NewStrataClient(conn)
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()

	_, err = api.Fetch(ctx, &stratav1.FetchRequest{Topic: "ledger", Partition: 0, Offset: 5, MaxBytes: 1 << 20})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.Internal || !strings.Contains(msg, "corrupt stored data") || !strings.Contains(msg, entry.ObjectKey) {
		t.Fatalf("fetch of the corrupt segment: %v; want Internal naming the corruption and object %s", err, entry.ObjectKey)
	}
	t.Logf("reported: %s", msg)

	tests := []struct {
		name      string
		partition int32
		offset    int64
		wantFirst int64
	}{
		{"earlier segment", 0, 0, 0},
		{"later segment", 0, 10, 10},
		{"other partition", 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := api.Fetch(ctx, &stratav1.FetchRequest{Topic: "ledger", Partition: tc.partition, Offset: tc.offset, MaxBytes: 300})
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if offs := baseOffsets(t, r.Batches); len(offs) == 0 || offs[0] != tc.wantFirst {
				t.Fatalf("batches at %v, want first %d", offs, tc.wantFirst)
			}
		})
	}
	// The corruption did not spread: the bytes are what we wrote.
	again, err := e.store.Get(e.ctx, entry.ObjectKey, 0, entry.ObjectSize)
	if err != nil || string(again) != string(obj) {
		t.Fatalf("stored object changed: %v", err)
	}
}
