package segment

import (
	"context"
	"testing"
)

// benchRecords are 1000 records with 1 KiB semi-compressible values.
func benchRecords() []Record { return makeRecords(42, 1000, 1024) }

// rawSize is the uncompressed size of recs as a batch; MB/s figures are of
// uncompressed bytes so that codecs compare.
func rawSize(b *testing.B, recs []Record) int64 {
	return int64(len(mustEncode(b, recs, BatchOptions{})))
}

func BenchmarkEncodeBatch(b *testing.B) {
	recs := benchRecords()
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(rawSize(b, recs))
			bb := NewBatchBuilder(BatchOptions{Codec: c})
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				bb.Reset(BatchOptions{Codec: c})
				for _, r := range recs {
					if err := bb.Append(r); err != nil {
						b.Fatal(err)
					}
				}
				var err error
				if out, err = bb.Build(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)), "batch-bytes")
		})
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	recs := benchRecords()
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			batch := mustEncode(b, recs, BatchOptions{Codec: c})
			b.SetBytes(rawSize(b, recs))
			var d BatchDecoder
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Decode(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseBatchHeader is what a broker does per produced batch: validate
// the header and CRC without decompressing.
func BenchmarkParseBatchHeader(b *testing.B) {
	batch := mustEncode(b, benchRecords(), BatchOptions{Codec: CodecZstd})
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := ParseBatchHeader(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriter builds 4 MiB objects from 64 partitions of 64 KiB batches.
func BenchmarkWriter(b *testing.B) {
	recs := makeRecords(1, 64, 1024)
	batch := mustEncode(b, recs, BatchOptions{Codec: CodecLZ4})
	w := NewWriter(WriterOptions{})
	const parts = 64
	perPart := (4 << 20) / parts / len(batch)
	b.SetBytes(int64(parts * perPart * len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		for p := range parts {
			next := int64(0)
			for range perPart {
				SetBaseOffset(batch, next)
				next += int64(len(recs))
				if err := w.Add("bench-topic", int32(p), batch); err != nil {
					b.Fatal(err)
				}
			}
		}
		if _, _, err := w.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseFooter parses the footer of an object with 1000 chunks.
func BenchmarkParseFooter(b *testing.B) {
	batch := mustEncode(b, makeRecords(1, 10, 100), BatchOptions{})
	w := NewWriter(WriterOptions{IndexInterval: 1})
	for p := range 1000 {
		next := int64(0)
		for range 4 {
			SetBaseOffset(batch, next)
			next += 10
			if err := w.Add("topic-"+string(rune('a'+p%26)), int32(p), batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	obj, f, err := w.Finish()
	if err != nil {
		b.Fatal(err)
	}
	tail := obj[f.DataSize:]
	b.SetBytes(int64(len(tail)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFooter(tail); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadChunk reads 1 MiB from the middle of a chunk of an in-memory
// object.
func BenchmarkReadChunk(b *testing.B) {
	ctx := context.Background()
	obj, f, _ := buildObject(b, 1, 3, 300, WriterOptions{})
	r, err := Open(ctx, &memObject{data: obj}, int64(len(obj)))
	if err != nil {
		b.Fatal(err)
	}
	c := f.Chunks[1]
	mid := (c.FirstOffset + c.LastOffset) / 2
	for b.Loop() {
		out, err := r.ReadChunk(ctx, c.TopicID, c.Partition, mid, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}
