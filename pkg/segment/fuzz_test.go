package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

// sentinels are the errors every failure must wrap.
var sentinels = []error{ErrCorrupt, ErrTruncated, ErrCRC, ErrUnknownCodec, ErrTooLarge,
	ErrVersion, ErrMagic, ErrNotContiguous, ErrNotFound, ErrOffsetOutOfRange}

func requireSentinel(t *testing.T, err error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps no sentinel", err)
}

func batchSeeds(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(mustEncode(f, []Record{{Timestamp: 1, Key: []byte("k"), Value: []byte("v"),
			Headers: []Header{{Key: "h", Value: nil}}}}, BatchOptions{Codec: c}))
		f.Add(mustEncode(f, makeRecords(uint64(c), 20, 50), BatchOptions{Codec: c, Idempotent: true, ProducerID: 9}))
	}
}

// FuzzDecodeBatch feeds arbitrary bytes to ParseBatchHeader and DecodeRecords.
// Neither may panic; errors must wrap a sentinel; a batch that decodes must have
// as many records as its header says, with dense offsets, and must survive a
// re-encode.
func FuzzDecodeBatch(f *testing.F) {
	batchSeeds(f)
	f.Add([]byte{})
	f.Add(make([]byte, BatchHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseBatchHeader(b)
		if errors.Is(err, ErrCRC) {
			// Most mutations break the CRC; fix it so they reach the codecs
			// and the record decoder.
			size, _ := batchSize(b)
			b = bytes.Clone(b[:size])
			restamp(b)
			h, err = ParseBatchHeader(b)
		}
		if err != nil {
			requireSentinel(t, err)
		}
		recs, derr := DecodeRecords(b)
		if derr != nil {
			requireSentinel(t, derr)
			return
		}
		if err != nil {
			t.Fatalf("DecodeRecords succeeded where ParseBatchHeader failed: %v", err)
		}
		if len(recs) != int(h.RecordCount) {
			t.Fatalf("%d records, header says %d", len(recs), h.RecordCount)
		}
		for i, r := range recs {
			if r.Offset != h.BaseOffset+int64(i) {
				t.Fatalf("record %d has offset %d, base %d", i, r.Offset, h.BaseOffset)
			}
		}
		again, err := EncodeBatch(recs, BatchOptions{Codec: h.Codec()})
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		SetBaseOffset(again, h.BaseOffset)
		recs2, err := DecodeRecords(again)
		if err != nil {
			t.Fatalf("decode re-encoded batch: %v", err)
		}
		if len(recs2) != len(recs) {
			t.Fatalf("re-encoded batch has %d records, want %d", len(recs2), len(recs))
		}
		for i := range recs {
			a, b := recs[i], recs2[i]
			if a.Offset != b.Offset || !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil) ||
				!bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil) || len(a.Headers) != len(b.Headers) {
				t.Fatalf("record %d changed in a re-encode", i)
			}
			if h.Attributes&AttrLogAppendTime == 0 && a.Timestamp != b.Timestamp {
				t.Fatalf("record %d timestamp %d became %d", i, a.Timestamp, b.Timestamp)
			}
		}
	})
}

// FuzzSplitBatches walks arbitrary bytes as a run of batches and stamps offsets
// into them. It may not panic, and the headers it returns must tile a prefix.
func FuzzSplitBatches(f *testing.F) {
	batchSeeds(f)
	a := mustEncode(f, makeRecords(1, 3, 10), BatchOptions{})
	b := mustEncode(f, makeRecords(2, 2, 10), BatchOptions{Codec: CodecLZ4})
	f.Add(append(bytes.Clone(a), b...))
	f.Add(append(bytes.Clone(a), b[:40]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		hs, err := SplitBatches(data)
		if err != nil {
			requireSentinel(t, err)
		}
		n := 0
		var records int64
		for _, h := range hs {
			n += h.Size()
			records += int64(h.RecordCount)
		}
		if n > len(data) || (err == nil && n != len(data)) {
			t.Fatalf("headers cover %d of %d bytes (err %v)", n, len(data), err)
		}
		next, aerr := AssignOffsets(data, 1000)
		if (aerr == nil) != (err == nil) {
			t.Fatalf("AssignOffsets error %v, SplitBatches error %v", aerr, err)
		}
		if aerr == nil && next != 1000+records {
			t.Fatalf("AssignOffsets = %d, want %d", next, 1000+records)
		}
	})
}

// FuzzParseFooter feeds arbitrary bytes as a whole segment object to
// ParseFooter, Open and ReadChunk. None may panic; a footer that parses must be
// self-consistent, and reading every chunk must either succeed with whole
// batches or fail with a sentinel error.
func FuzzParseFooter(f *testing.F) {
	ctx := context.Background()
	f.Add(exampleObject(f))
	f.Add(smallObject(f))
	w := NewWriter(WriterOptions{})
	empty, _, _ := w.Finish()
	f.Add(bytes.Clone(empty))
	f.Add([]byte("STRATSEG"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= TrailerSize {
			// Most mutations break the footer CRC; fix it so they reach the
			// footer decoder and ReadChunk.
			if flen := int(binary.BigEndian.Uint32(data[len(data)-TrailerSize:])); flen <= len(data)-TrailerSize {
				data = bytes.Clone(data)
				end := len(data) - TrailerSize
				binary.BigEndian.PutUint32(data[end+4:], crc32c(data[end-flen:end]))
			}
		}
		footer, err := ParseFooter(data)
		if err != nil {
			requireSentinel(t, err)
		} else {
			for _, c := range footer.Chunks {
				got, ok := footer.Find(c.TopicID, c.Partition)
				if !ok || got.Position != c.Position {
					t.Fatalf("Find(%s, %d) does not return its chunk", c.TopicID, c.Partition)
				}
				if pos, ok := got.Locate(c.FirstOffset); !ok || pos != 0 {
					t.Fatalf("Locate(first offset) = %d, %v", pos, ok)
				}
				if c.End() > footer.DataSize || c.LastOffset < c.FirstOffset {
					t.Fatalf("inconsistent chunk %+v", c)
				}
			}
		}
		r, err := Open(ctx, &memObject{data: data}, int64(len(data)))
		if err != nil {
			requireSentinel(t, err)
			return
		}
		for _, c := range r.Footer().Chunks {
			for _, off := range []int64{c.FirstOffset, c.LastOffset, (c.FirstOffset + c.LastOffset) / 2} {
				b, err := r.ReadChunk(ctx, c.TopicID, c.Partition, off, 1000)
				if err != nil {
					requireSentinel(t, err)
					continue
				}
				hs, err := SplitBatches(b)
				if err != nil || len(hs) == 0 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
					t.Fatalf("ReadChunk(%d) returned bad batches: %v", off, err)
				}
			}
		}
	})
}

// smallObject is a few hundred bytes of segment object with three partitions,
// mixed codecs and several index entries per chunk: a seed small enough for the
// fuzzer to mutate and minimize quickly.
func smallObject(t testing.TB) []byte {
	w := NewWriter(WriterOptions{IndexInterval: 100})
	for p := range 3 {
		next := int64(p * 10)
		for i := range 3 {
			b := mustEncode(t, makeRecords(uint64(p*3+i), 1+i, 8), BatchOptions{Codec: allCodecs[(p+i)%len(allCodecs)]})
			SetBaseOffset(b, next)
			next += int64(1 + i)
			if err := w.Add("t", int32(p), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(obj)
}

// FuzzParseMarker feeds arbitrary bytes to ParseMarker. It may not panic;
// errors must wrap a sentinel; a batch it accepts is a one-record control
// batch whose marker ControlBatch writes the same way.
func FuzzParseMarker(f *testing.F) {
	f.Add(ControlBatch(1, 0, true, 1))
	f.Add(ControlBatch(1<<62, 32766, false, -1))
	f.Add(mustEncode(f, []Record{{Timestamp: 1, Key: []byte{0, 0, 0, 1}, Value: make([]byte, 6)}}, BatchOptions{}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseBatchHeader(b); errors.Is(err, ErrCRC) {
			// Most mutations break the CRC; fix it so they reach the
			// marker checks.
			size, _ := batchSize(b)
			b = bytes.Clone(b[:size])
			restamp(b)
		}
		commit, err := ParseMarker(b)
		if err != nil {
			requireSentinel(t, err)
			return
		}
		h, err := ParseBatchHeader(b)
		if err != nil || h.RecordCount != 1 || h.Attributes&AttrControl == 0 || h.Size() != len(b) {
			t.Fatalf("ParseMarker accepted %+v (%v)", h, err)
		}
		again, err := ParseMarker(ControlBatch(h.ProducerID, h.ProducerEpoch, commit, h.FirstTimestamp))
		if err != nil || again != commit {
			t.Fatalf("ControlBatch round trip: %v, %v; want %v", again, err, commit)
		}
	})
}
