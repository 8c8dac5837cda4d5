package segment_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/strata-mq/strata/pkg/segment"
)

// object is an in-memory RangeReader.
type object []byte

func (o object) ReadRange(_ context.Context, off, length int64) ([]byte, error) {
	if off < 0 || length < 0 || off+length > int64(len(o)) {
		return nil, fmt.Errorf("range [%d, +%d) outside %d bytes", off, length, len(o))
	}
	return bytes.Clone(o[off : off+length]), nil
}

// Example shows the life of a batch: a producer encodes it, the broker stamps
// offsets and writes a segment object, and a reader fetches it back with ranged
// reads.
func Example() {
	// Producer: encode and compress.
	batch, err := segment.EncodeBatch([]segment.Record{
		{Timestamp: 1_700_000_000_000, Key: []byte("user-1"), Value: []byte("signed up")},
		{Timestamp: 1_700_000_000_250, Key: []byte("user-1"), Value: []byte("logged in")},
	}, segment.BatchOptions{Codec: segment.CodecZstd})
	if err != nil {
		panic(err)
	}

	// Broker: validate without decompressing, assign offsets, build the object.
	next, err := segment.AssignOffsets(batch, 42)
	if err != nil {
		panic(err)
	}
	w := segment.NewWriter(segment.WriterOptions{})
	if err := w.Add("orders", 0, batch); err != nil {
		panic(err)
	}
	obj, footer, err := w.Finish()
	if err != nil {
		panic(err)
	}
	c := footer.Chunks[0]
	fmt.Printf("next offset %d; chunk %s/%d offsets %d-%d\n", next, c.TopicID, c.Partition, c.FirstOffset, c.LastOffset)

	// Reader: open the object by its tail, fetch the batch holding offset 43.
	ctx := context.Background()
	r, err := segment.Open(ctx, object(obj), int64(len(obj)))
	if err != nil {
		panic(err)
	}
	batches, err := r.ReadChunk(ctx, "orders", 0, 43, 1<<20)
	if err != nil {
		panic(err)
	}
	records, err := segment.DecodeRecords(batches)
	if err != nil {
		panic(err)
	}
	for _, rec := range records {
		fmt.Printf("%d %s %s\n", rec.Offset, rec.Key, rec.Value)
	}
	// Output:
	// next offset 44; chunk orders/0 offsets 42-43
	// 42 user-1 signed up
	// 43 user-1 logged in
}
