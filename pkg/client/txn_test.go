package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestConsumerSkipsMarkers: Kafka transaction markers (control batches)
// in a partition are never returned as records, and the consumer's
// position moves past them, also past one that ends a fetch.
func TestConsumerSkipsMarkers(t *testing.T) {
	_, c := setup(t, 1)
	base := time.UnixMilli(1_700_000_000_000)
	marker := func(want int64) {
		t.Helper()
		resp, err := c.api.Produce(context.Background(), &stratav1.ProduceRequest{Topic: "t", Partition: 0,
			Batches: segment.ControlBatch(7, 0, true, base.UnixMilli())})
		if err != nil || resp.GetBaseOffset() != want {
			t.Fatalf("marker at %d, %v; want offset %d", resp.GetBaseOffset(), err, want)
		}
	}
	produceBatch(t, c, base, "0", "1")
	marker(2)
	produceBatch(t, c, base, "3")
	marker(4)
	cons := newConsumer(t, c)
	if err := cons.Seek("t", 0, 0); err != nil {
		t.Fatal(err)
	}
	got := pollN(t, cons, 3)
	produceBatch(t, c, base, "5") // after the trailing marker
	got = append(got, pollN(t, cons, 1)...)
	if len(got) != 4 {
		t.Fatalf("got %d records, want 4", len(got))
	}
	for i, want := range []int64{0, 1, 3, 5} {
		if got[i].Offset != want || string(got[i].Value) != fmt.Sprint(want) {
			t.Fatalf("record %d at offset %d (%q), want offset %d", i, got[i].Offset, got[i].Value, want)
		}
	}
	if pos, ok := cons.Position("t", 0); !ok || pos != 6 {
		t.Fatalf("position %d %v, want 6", pos, ok)
	}
}

func TestDecodeFromSkipsControl(t *testing.T) {
	var b []byte
	next := int64(0)
	add := func(batch []byte) {
		h, err := segment.ParseBatchHeader(batch)
		if err != nil {
			t.Fatal(err)
		}
		segment.SetBaseOffset(batch, next)
		next += int64(h.RecordCount)
		b = append(b, batch...)
	}
	plain, err := segment.EncodeBatch([]segment.Record{{Value: []byte("a")}, {Value: []byte("b")}}, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	add(plain)                                // 0..1
	add(segment.ControlBatch(7, 0, false, 1)) // 2
	add(append([]byte(nil), plain...))        // 3..4
	add(segment.ControlBatch(7, 0, true, 1))  // 5
	tp := topicPartition{"t", 0}
	for _, tt := range []struct {
		from, next int64
		offsets    []int64
	}{{0, 6, []int64{0, 1, 3, 4}}, {1, 6, []int64{1, 3, 4}}, {2, 6, []int64{3, 4}}, {5, 6, nil}, {6, 6, nil}} {
		recs, got, err := decodeFrom(tp, b, tt.from)
		if err != nil || got != tt.next || len(recs) != len(tt.offsets) {
			t.Fatalf("decodeFrom(%d) = %d records, next %d, %v; want %v, next %d", tt.from, len(recs), got, err, tt.offsets, tt.next)
		}
		for i, r := range recs {
			if r.Offset != tt.offsets[i] {
				t.Fatalf("decodeFrom(%d) record %d at %d, want %d", tt.from, i, r.Offset, tt.offsets[i])
			}
		}
	}
}
