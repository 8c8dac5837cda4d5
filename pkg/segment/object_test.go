package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// partitionData is the batches written for one partition in a test object.
type partitionData struct {
	topic     string
	partition int32
	batches   [][]byte
	headers   []BatchHeader
	records   []Record
}

// buildObject writes nParts partitions over three topics, each with batches of
// random sizes and codecs, interleaving Add calls across partitions.
func buildObject(t testing.TB, seed uint64, nParts, batchesPer int, opts WriterOptions) ([]byte, *Footer, []*partitionData) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	parts := make([]*partitionData, nParts)
	for i := range parts {
		p := &partitionData{topic: fmt.Sprintf("topic-%c", 'a'+i%3), partition: int32(i / 3)}
		next := int64(rng.IntN(1000))
		ts := int64(1_700_000_000_000 + rng.IntN(1000))
		for range batchesPer {
			recs := makeRecords(rng.Uint64(), 1+rng.IntN(20), rng.IntN(2000))
			for k := range recs {
				recs[k].Timestamp = ts + int64(rng.IntN(50))
			}
			ts += 10
			b := mustEncode(t, recs, BatchOptions{Codec: allCodecs[rng.IntN(len(allCodecs))]})
			SetBaseOffset(b, next)
			h, err := ParseBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			p.batches = append(p.batches, b)
			p.headers = append(p.headers, h)
			p.records = append(p.records, withOffsets(recs, next)...)
			next = h.LastOffset() + 1
		}
		parts[i] = p
	}
	w := NewWriter(opts)
	// Add in round-robin order, one or two batches per call.
	for round := 0; ; round++ {
		added := false
		for _, p := range parts {
			lo, hi := 2*round, min(2*round+2, len(p.batches))
			if lo >= hi {
				continue
			}
			if err := w.Add(p.topic, p.partition, p.batches[lo:hi]...); err != nil {
				t.Fatal(err)
			}
			added = true
		}
		if !added {
			break
		}
	}
	obj, f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(obj), f, parts
}

func TestWriterReaderRoundTrip(t *testing.T) {
	ctx := context.Background()
	obj, f, parts := buildObject(t, 1, 24, 40, WriterOptions{IndexInterval: 16 << 10})
	if len(obj) < 4<<20 {
		t.Fatalf("object of %d bytes; the test wants a multi-MB object", len(obj))
	}
	src := &memObject{data: obj}
	r, err := Open(ctx, src, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Footer(), f) {
		t.Fatal("footer read back differs from the one Finish returned")
	}
	// Open reads only the speculative tail: one request, no more than
	// TailReadSize bytes, at the end of the object.
	reads := src.takeReads()
	if len(reads) != 1 || reads[0].length != TailReadSize || reads[0].off+reads[0].length != int64(len(obj)) {
		t.Errorf("Open read %v from an object of %d bytes", reads, len(obj))
	}

	for _, p := range parts {
		c, ok := f.Find(p.topic, p.partition)
		if !ok {
			t.Fatalf("no chunk for %s/%d", p.topic, p.partition)
		}
		want := chunkInfoFor(p)
		if c.FirstOffset != want.FirstOffset || c.LastOffset != want.LastOffset ||
			c.RecordCount != want.RecordCount || c.MinTimestamp != want.MinTimestamp ||
			c.MaxTimestamp != want.MaxTimestamp || c.Length != want.Length {
			t.Fatalf("%s/%d: chunk %+v, want %+v", p.topic, p.partition, c, want)
		}
		if got := obj[c.Position:c.End()]; !bytes.Equal(got, bytes.Join(p.batches, nil)) {
			t.Fatalf("%s/%d: chunk bytes differ", p.topic, p.partition)
		}

		// Consume the whole partition with small fetches.
		var got []Record
		for off := c.FirstOffset; off <= c.LastOffset; {
			maxBytes := int64(1 + rand.IntN(20_000))
			b, err := r.ReadChunk(ctx, p.topic, p.partition, off, maxBytes)
			if err != nil {
				t.Fatalf("ReadChunk(%d): %v", off, err)
			}
			for _, rr := range src.takeReads() {
				if rr.off < c.Position || rr.off+rr.length > c.End() {
					t.Fatalf("ReadChunk read [%d, +%d) outside chunk [%d, %d)", rr.off, rr.length, c.Position, c.End())
				}
			}
			hs, err := SplitBatches(b)
			if err != nil {
				t.Fatal(err)
			}
			if hs[0].BaseOffset > off || hs[0].LastOffset() < off {
				t.Fatalf("first batch [%d, %d] does not hold %d", hs[0].BaseOffset, hs[0].LastOffset(), off)
			}
			if len(hs) > 1 && int64(len(b)) > maxBytes {
				t.Fatalf("%d batches, %d bytes, over maxBytes %d", len(hs), len(b), maxBytes)
			}
			for _, h := range hs {
				recs, err := DecodeRecords(b[:h.Size()])
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					if rec.Offset >= off {
						got = append(got, rec)
					}
				}
				b = b[h.Size():]
			}
			off = hs[len(hs)-1].LastOffset() + 1
		}
		if !reflect.DeepEqual(got, p.records) {
			t.Fatalf("%s/%d: consumed records differ", p.topic, p.partition)
		}
	}

	_, err = r.ReadChunk(ctx, "topic-z", 0, 0, 100)
	wantErr(t, err, ErrNotFound, "unknown partition")
	c := f.Chunks[0]
	_, err = r.ReadChunk(ctx, c.TopicID, c.Partition, c.LastOffset+1, 100)
	wantErr(t, err, ErrOffsetOutOfRange, "offset after chunk")
	_, err = r.ReadChunk(ctx, c.TopicID, c.Partition, c.FirstOffset-1, 100)
	wantErr(t, err, ErrOffsetOutOfRange, "offset before chunk")
}

// chunkInfoFor computes the expected summary of a partition's chunk.
func chunkInfoFor(p *partitionData) ChunkInfo {
	c := ChunkInfo{
		FirstOffset:  p.headers[0].BaseOffset,
		LastOffset:   p.headers[len(p.headers)-1].LastOffset(),
		MinTimestamp: p.headers[0].FirstTimestamp,
		MaxTimestamp: p.headers[0].MaxTimestamp,
	}
	for _, h := range p.headers {
		c.RecordCount += int64(h.RecordCount)
		c.Length += int64(h.Size())
		c.MinTimestamp = min(c.MinTimestamp, h.FirstTimestamp, h.MaxTimestamp)
		c.MaxTimestamp = max(c.MaxTimestamp, h.MaxTimestamp)
	}
	return c
}

// TestReadChunkLargeBatch checks that a batch larger than maxBytes and than the
// index interval is returned whole, with a second read for its rest.
func TestReadChunkLargeBatch(t *testing.T) {
	ctx := context.Background()
	small := mustEncode(t, makeRecords(1, 2, 100), BatchOptions{})
	big := mustEncode(t, makeRecords(2, 3, 200_000), BatchOptions{})
	SetBaseOffset(big, 2)
	tail := mustEncode(t, makeRecords(3, 2, 100), BatchOptions{})
	SetBaseOffset(tail, 5)
	w := NewWriter(WriterOptions{IndexInterval: 1})
	if err := w.Add("t", 0, small, big, tail); err != nil {
		t.Fatal(err)
	}
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, &memObject{data: obj}, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, maxBytes int64
		want           [][]byte
	}{
		{0, 0, [][]byte{small}},
		{1, 1, [][]byte{small}},
		{2, 10, [][]byte{big}},
		{3, int64(len(big)), [][]byte{big}},
		{4, int64(len(big) + len(tail)), [][]byte{big, tail}},
		{0, 1 << 40, [][]byte{small, big, tail}},
		{6, -1, [][]byte{tail}},
	} {
		got, err := r.ReadChunk(ctx, "t", 0, tc.from, tc.maxBytes)
		if err != nil {
			t.Fatalf("ReadChunk(%d, %d): %v", tc.from, tc.maxBytes, err)
		}
		if !bytes.Equal(got, bytes.Join(tc.want, nil)) {
			t.Fatalf("ReadChunk(%d, %d): %d bytes, want %d batches", tc.from, tc.maxBytes, len(got), len(tc.want))
		}
	}
}

func TestOpenLargeFooter(t *testing.T) {
	ctx := context.Background()
	w := NewWriter(WriterOptions{})
	b := mustEncode(t, makeRecords(1, 1, 10), BatchOptions{})
	for i := range 3000 {
		if err := w.Add(fmt.Sprintf("a-rather-long-topic-identifier-%04d", i), int32(i%7), b); err != nil {
			t.Fatal(err)
		}
	}
	obj, f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	src := &memObject{data: obj}
	r, err := Open(ctx, src, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Footer(), f) {
		t.Fatal("footer differs")
	}
	reads := src.takeReads()
	if len(reads) != 2 {
		t.Fatalf("Open made %d reads, want 2 for a footer over %d bytes", len(reads), TailReadSize)
	}
	if footerStart := f.DataSize; reads[1].off != footerStart {
		t.Fatalf("second read starts at %d, footer at %d", reads[1].off, footerStart)
	}
}

func TestLocate(t *testing.T) {
	_, f, parts := buildObject(t, 7, 3, 60, WriterOptions{IndexInterval: 4000})
	for _, p := range parts {
		c, _ := f.Find(p.topic, p.partition)
		if len(c.Index) < 5 {
			t.Fatalf("only %d index entries", len(c.Index))
		}
		// Batch positions, for checking index entries and scan results.
		pos := make([]int64, len(p.headers))
		for i := 1; i < len(pos); i++ {
			pos[i] = pos[i-1] + int64(p.headers[i-1].Size())
		}
		posOf := map[int64]int{}
		for i, x := range pos {
			posOf[x] = i
		}
		// scan finds, from a position, the first batch matching match.
		scan := func(from int64, match func(BatchHeader) bool) int {
			for i := posOf[from]; i < len(pos); i++ {
				if match(p.headers[i]) {
					return i
				}
			}
			return -1
		}
		for off := c.FirstOffset - 1; off <= c.LastOffset+1; off++ {
			at, ok := c.Locate(off)
			if ok != (off >= c.FirstOffset && off <= c.LastOffset) {
				t.Fatalf("Locate(%d) ok = %v", off, ok)
			}
			if !ok {
				continue
			}
			if _, isBatch := posOf[at]; !isBatch {
				t.Fatalf("Locate(%d) = %d, not a batch start", off, at)
			}
			i := scan(at, func(h BatchHeader) bool { return h.LastOffset() >= off })
			if i < 0 || p.headers[i].BaseOffset > off {
				t.Fatalf("Locate(%d) = %d: scan does not find the batch", off, at)
			}
			if at > pos[i] || at+int64(4000)+int64(p.headers[i].Size()) < pos[i] {
				t.Fatalf("Locate(%d) = %d, batch at %d", off, at, pos[i])
			}
		}
		for ts := c.MinTimestamp - 5; ts <= c.MaxTimestamp+5; ts++ {
			want := -1
			for i, h := range p.headers {
				if h.MaxTimestamp >= ts {
					want = i
					break
				}
			}
			at, ok := c.LocateTime(ts)
			if ok != (want >= 0) {
				t.Fatalf("LocateTime(%d) ok = %v", ts, ok)
			}
			if !ok {
				continue
			}
			if got := scan(at, func(h BatchHeader) bool { return h.MaxTimestamp >= ts }); got != want {
				t.Fatalf("LocateTime(%d) = %d: scan finds batch %d, want %d", ts, at, got, want)
			}
		}
	}
}

func TestWriterContiguity(t *testing.T) {
	batch := func(base int64, n int) []byte {
		b := mustEncode(t, makeRecords(uint64(base), n, 10), BatchOptions{})
		SetBaseOffset(b, base)
		return b
	}
	for _, tc := range []struct {
		name  string
		calls [][][]byte
		want  error
	}{
		{"contiguous in one call", [][][]byte{{batch(10, 3), batch(13, 2)}}, nil},
		{"contiguous across calls", [][][]byte{{batch(10, 3)}, {batch(13, 2)}}, nil},
		{"run in one argument", [][][]byte{{append(batch(0, 1), batch(1, 1)...)}}, nil},
		{"gap", [][][]byte{{batch(10, 3), batch(14, 2)}}, ErrNotContiguous},
		{"overlap", [][][]byte{{batch(10, 3), batch(12, 2)}}, ErrNotContiguous},
		{"repeat", [][][]byte{{batch(10, 3)}, {batch(10, 3)}}, ErrNotContiguous},
		{"gap across calls", [][][]byte{{batch(10, 3)}, {batch(20, 2)}}, ErrNotContiguous},
		{"backwards in one argument", [][][]byte{{append(batch(5, 1), batch(4, 1)...)}}, ErrNotContiguous},
		{"partial batch", [][][]byte{{batch(0, 2)[:70]}}, ErrTruncated},
		{"corrupt batch", [][][]byte{{append(batch(0, 2)[:70:70], make([]byte, 100)...)}}, ErrCRC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(WriterOptions{})
			var err error
			for _, call := range tc.calls {
				if err = w.Add("t", 1, call...); err != nil {
					break
				}
			}
			wantErr(t, err, tc.want, tc.name)
		})
	}
}

func TestWriterAtomicAdd(t *testing.T) {
	a := mustEncode(t, makeRecords(1, 3, 10), BatchOptions{})
	b := mustEncode(t, makeRecords(2, 3, 10), BatchOptions{})
	SetBaseOffset(b, 3)
	w := NewWriter(WriterOptions{})
	if err := w.Add("t", 0, a); err != nil {
		t.Fatal(err)
	}
	// b is fine but a again is not contiguous: nothing from this call is added.
	if err := w.Add("t", 0, b, a); !errorsIs(err, ErrNotContiguous) {
		t.Fatalf("Add: %v", err)
	}
	if err := w.Add("t", 0, b); err != nil {
		t.Fatalf("Add after a failed Add: %v", err)
	}
	if w.Size() != len(a)+len(b) {
		t.Fatalf("Size = %d", w.Size())
	}
}

func TestWriterMisuse(t *testing.T) {
	b := mustEncode(t, makeRecords(1, 1, 10), BatchOptions{})
	w := NewWriter(WriterOptions{})
	wantErr(t, w.Add("", 0, b), ErrInvalid, "empty topic id")
	wantErr(t, w.Add(string(make([]byte, MaxTopicIDLen+1)), 0, b), ErrInvalid, "long topic id")
	wantErr(t, w.Add("t", -1, b), ErrInvalid, "negative partition")
	if err := w.Add("t", 0); err != nil {
		t.Fatalf("Add with no batches: %v", err)
	}
	if err := w.Add("t", 0, nil, []byte{}); err != nil {
		t.Fatalf("Add with empty batches: %v", err)
	}
	obj, f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Chunks) != 0 {
		t.Fatalf("empty Adds made %d chunks", len(f.Chunks))
	}
	if _, err := ParseFooter(obj); err != nil {
		t.Fatalf("empty object: %v", err)
	}
	wantErr(t, w.Add("t", 0, b), ErrInvalid, "Add after Finish")
	_, _, err = w.Finish()
	wantErr(t, err, ErrInvalid, "Finish twice")
}

// TestWriterReset checks that a reused Writer produces the same object as a new
// one, whatever the earlier object held.
func TestWriterReset(t *testing.T) {
	want, _, parts := buildObject(t, 3, 5, 4, WriterOptions{})
	w := NewWriter(WriterOptions{})
	other := mustEncode(t, makeRecords(9, 50, 100), BatchOptions{})
	for i := range 10 {
		if err := w.Add("zzz", int32(i), other); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	w.Reset()
	for _, p := range parts {
		if err := w.Add(p.topic, p.partition, p.batches...); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("object from a reset Writer differs")
	}
}

func TestFooterCorruption(t *testing.T) {
	obj, f, _ := buildObject(t, 5, 4, 3, WriterOptions{IndexInterval: 100})
	footerStart := int(f.DataSize)
	trailerStart := len(obj) - TrailerSize

	t.Run("suffix too short", func(t *testing.T) {
		for k := footerStart + 1; k < len(obj); k++ {
			_, err := ParseFooter(obj[k:])
			wantErr(t, err, ErrTruncated, fmt.Sprintf("tail from %d", k))
		}
	})
	t.Run("object truncated", func(t *testing.T) {
		for n := range len(obj) {
			if n < footerStart && n%97 != 0 {
				continue
			}
			if _, err := ParseFooter(obj[:n]); err == nil {
				t.Fatalf("ParseFooter of the first %d bytes succeeded", n)
			}
			if _, err := Open(context.Background(), &memObject{data: obj[:n]}, int64(n)); err == nil {
				t.Fatalf("Open of the first %d bytes succeeded", n)
			}
		}
	})
	t.Run("footer byte flipped", func(t *testing.T) {
		for i := footerStart; i < trailerStart; i++ {
			b := bytes.Clone(obj)
			b[i] ^= 0x08
			_, err := ParseFooter(b)
			wantErr(t, err, ErrCRC, "flipped footer byte")
		}
	})
	t.Run("trailer byte flipped", func(t *testing.T) {
		for i := trailerStart; i < len(obj); i++ {
			b := bytes.Clone(obj)
			b[i] ^= 0x01
			_, err := ParseFooter(b)
			var want error
			switch off := i - trailerStart; {
			case off < 4:
				want = nil // any error: the footer moves
			case off < 8:
				want = ErrCRC
			case off < 10:
				want = ErrVersion
			case off < 12:
				want = ErrCorrupt
			default:
				want = ErrMagic
			}
			if err == nil || want != nil && !errorsIs(err, want) {
				t.Fatalf("trailer byte %d flipped: %v, want %v", i-trailerStart, err, want)
			}
		}
	})
	t.Run("bad magic and version", func(t *testing.T) {
		b := bytes.Clone(obj)
		copy(b[len(b)-8:], "KAFKASEG")
		_, err := ParseFooter(b)
		wantErr(t, err, ErrMagic, "magic")
		b = bytes.Clone(obj)
		binary.BigEndian.PutUint16(b[trailerStart+8:], 2)
		_, err = ParseFooter(b)
		wantErr(t, err, ErrVersion, "version 2")
		b = bytes.Clone(obj)
		binary.BigEndian.PutUint32(b[trailerStart:], MaxFooterBytes+1)
		_, err = ParseFooter(b)
		wantErr(t, err, ErrTooLarge, "huge footer length")
	})
	t.Run("data size mismatch", func(t *testing.T) {
		padded := append(make([]byte, 10), obj...)
		_, err := Open(context.Background(), &memObject{data: padded}, int64(len(padded)))
		wantErr(t, err, ErrCorrupt, "object with extra leading bytes")
	})

	// Footers with a valid CRC but inconsistent contents.
	reencode := func(mut func(f *Footer)) []byte {
		g := cloneFooter(f)
		mut(g)
		fb := appendFooter(nil, g)
		return appendTrailer(fb, Trailer{FooterLength: uint32(len(fb)), FooterCRC: crc32c(fb), Version: FormatVersion})
	}
	if _, err := ParseFooter(reencode(func(*Footer) {})); err != nil {
		t.Fatalf("re-encoded footer: %v", err)
	}
	for _, tc := range []struct {
		name string
		mut  func(f *Footer)
	}{
		{"chunks out of order", func(f *Footer) { f.Chunks[0], f.Chunks[1] = f.Chunks[1], f.Chunks[0] }},
		{"duplicate chunk", func(f *Footer) {
			f.Chunks[1].TopicID, f.Chunks[1].Partition = f.Chunks[0].TopicID, f.Chunks[0].Partition
		}},
		{"overlapping chunks", func(f *Footer) { f.Chunks[1].Position-- }},
		{"chunk past data", func(f *Footer) { f.Chunks[len(f.Chunks)-1].Length++ }},
		{"empty topic", func(f *Footer) { f.Chunks[0].TopicID = "" }},
		{"zero records", func(f *Footer) { f.Chunks[0].RecordCount = 0 }},
		{"too many records", func(f *Footer) { f.Chunks[0].RecordCount = f.Chunks[0].LastOffset - f.Chunks[0].FirstOffset + 2 }},
		{"no index", func(f *Footer) { f.Chunks[0].Index = nil }},
		{"first entry not first batch", func(f *Footer) { f.Chunks[0].Index[0].Position = 1 }},
		{"index entry does not advance", func(f *Footer) {
			f.Chunks[0].Index[1].Position = f.Chunks[0].Index[0].Position
		}},
		{"index offset past chunk", func(f *Footer) {
			c := &f.Chunks[0]
			c.Index[len(c.Index)-1].Offset = c.LastOffset + 1
		}},
		{"index position past chunk", func(f *Footer) {
			c := &f.Chunks[0]
			c.Index[len(c.Index)-1].Position = c.Length
		}},
		{"max timestamp mismatch", func(f *Footer) { f.Chunks[0].MaxTimestamp++ }},
		{"chunk too short", func(f *Footer) { f.Chunks[0].Length = 60 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFooter(reencode(tc.mut))
			wantErr(t, err, ErrCorrupt, tc.name)
		})
	}
}

func cloneFooter(f *Footer) *Footer {
	g := &Footer{DataSize: f.DataSize, Chunks: bytesCloneChunks(f.Chunks)}
	return g
}

func bytesCloneChunks(cs []ChunkInfo) []ChunkInfo {
	out := make([]ChunkInfo, len(cs))
	for i, c := range cs {
		c.Index = append([]IndexEntry(nil), c.Index...)
		out[i] = c
	}
	return out
}

// TestReadChunkCorruptData checks that ReadChunk reports a damaged chunk or a
// footer whose index points at the wrong place.
// TestReadChunkTo: a read bounded at a batch boundary inside the chunk
// (the end of a segment entry that is part of it) returns and reads
// nothing past it, however large the budget.
func TestReadChunkTo(t *testing.T) {
	ctx := context.Background()
	var batches [][]byte
	for i := range 6 {
		b := mustEncode(t, makeRecords(uint64(i), 2, 100), BatchOptions{})
		SetBaseOffset(b, int64(2*i))
		batches = append(batches, b)
	}
	w := NewWriter(WriterOptions{IndexInterval: 1})
	if err := w.Add("t", 0, batches...); err != nil {
		t.Fatal(err)
	}
	obj, f, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	c := f.Chunks[0]
	until := int64(len(batches[0]) + len(batches[1]) + len(batches[2])) // offsets 0..5
	src := &memObject{data: obj}
	r, err := Open(ctx, src, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	for from := range int64(6) {
		src.reads = nil
		got, err := r.ReadChunkTo(ctx, "t", 0, from, 1<<20, until)
		if err != nil {
			t.Fatalf("ReadChunkTo(%d): %v", from, err)
		}
		if want := bytes.Join(batches[from/2:3], nil); !bytes.Equal(got, want) {
			t.Fatalf("ReadChunkTo(%d): %d bytes, want the %d bytes of batches %d..2", from, len(got), len(want), from/2)
		}
		for _, rd := range src.reads {
			if rd.off+rd.length > c.Position+until {
				t.Fatalf("ReadChunkTo(%d) read bytes %d..%d, past the bound at %d", from, rd.off, rd.off+rd.length, c.Position+until)
			}
		}
	}
	if _, err := r.ReadChunkTo(ctx, "t", 0, 6, 1<<20, until); err == nil {
		t.Fatal("ReadChunkTo past the bound: no error")
	}
}

func TestReadChunkCorruptData(t *testing.T) {
	ctx := context.Background()
	obj, f, _ := buildObject(t, 11, 2, 5, WriterOptions{IndexInterval: 1})
	c := f.Chunks[0]

	b := bytes.Clone(obj)
	b[c.Position+30] ^= 0xff // inside the first batch's CRC region
	r, err := Open(ctx, &memObject{data: b}, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadChunk(ctx, c.TopicID, c.Partition, c.FirstOffset, 1<<20)
	wantErr(t, err, ErrCRC, "damaged batch")

	// An index entry that points at the wrong batch.
	g := cloneFooter(f)
	g.Chunks[0].Index[1].Offset++
	fb := appendFooter(bytes.Clone(obj[:f.DataSize]), g)
	fb = appendTrailer(fb, Trailer{FooterLength: uint32(len(fb)) - uint32(f.DataSize), FooterCRC: crc32c(fb[f.DataSize:]), Version: FormatVersion})
	r, err = Open(ctx, &memObject{data: fb}, int64(len(fb)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadChunk(ctx, c.TopicID, c.Partition, g.Chunks[0].Index[1].Offset, 1<<20)
	wantErr(t, err, ErrCorrupt, "index entry off by one")
}

// TestGoldenObject pins the format: a small fixed object must encode to the
// bytes in testdata/example-v1.seg, which docs/segment-format.md walks through.
// Run with -update to rewrite it after an intended format change.
func TestGoldenObject(t *testing.T) {
	obj := exampleObject(t)
	path := filepath.Join("testdata", "example-v1.seg")
	if *update {
		if err := os.WriteFile(path, obj, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj, want) {
		t.Fatalf("example object changed:\n got %x\nwant %x", obj, want)
	}
	f, err := ParseFooter(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Chunks) != 2 || f.Chunks[0].TopicID != "orders" || f.Chunks[1].Partition != 3 {
		t.Fatalf("footer %+v", f)
	}
}

// exampleObject builds the object that docs/segment-format.md describes: topic
// "orders" partition 0 with two uncompressed batches (offsets 100-101 and 102),
// and partition 3 with one batch at offset 7, with an index entry per batch.
func exampleObject(t testing.TB) []byte {
	const ts = 1_700_000_000_000
	b1 := mustEncode(t, []Record{
		{Timestamp: ts, Key: []byte("k1"), Value: []byte("v1")},
		{Timestamp: ts + 5, Key: nil, Value: []byte("v2"), Headers: []Header{{Key: "h", Value: []byte("x")}}},
	}, BatchOptions{})
	SetBaseOffset(b1, 100)
	b2 := mustEncode(t, []Record{{Timestamp: ts + 9, Value: []byte("v3")}}, BatchOptions{})
	SetBaseOffset(b2, 102)
	b3 := mustEncode(t, []Record{{Timestamp: ts + 2, Key: []byte("a"), Value: nil}},
		BatchOptions{Idempotent: true, ProducerID: 1, ProducerEpoch: 0, BaseSequence: 0})
	SetBaseOffset(b3, 7)
	w := NewWriter(WriterOptions{IndexInterval: 1})
	for _, err := range []error{w.Add("orders", 3, b3), w.Add("orders", 0, b1, b2)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestConcurrentUse runs encoders, decoders and readers from many goroutines, so
// that the race detector checks the shared codec pools and the Reader.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	obj, f, _ := buildObject(t, 13, 4, 10, WriterOptions{IndexInterval: 2000})
	r, err := Open(ctx, &memObject{data: obj}, int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	recs := makeRecords(14, 30, 300)
	want := withOffsets(recs, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			var d BatchDecoder
			for i := range 20 {
				c := allCodecs[(g+i)%len(allCodecs)]
				b, err := EncodeBatch(recs, BatchOptions{Codec: c})
				if err != nil {
					errs <- err
					return
				}
				got, err := d.Decode(b)
				if err != nil || !reflect.DeepEqual(got, want) {
					errs <- fmt.Errorf("%v: decode: %v", c, err)
					return
				}
				ch := f.Chunks[(g+i)%len(f.Chunks)]
				if _, err := r.ReadChunk(ctx, ch.TopicID, ch.Partition, ch.LastOffset, 5000); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWriterAddVerified checks that AddVerified builds the same object as Add
// in the Buffer given, still refuses what is not a contiguous run of whole
// batches, and that Add keeps a copy where AddVerified keeps references.
func TestWriterAddVerified(t *testing.T) {
	want, _, parts := buildObject(t, 4, 6, 5, WriterOptions{})
	buf := make([]byte, len(want)+100)
	w := NewWriter(WriterOptions{Buffer: buf})
	for _, p := range parts {
		if err := w.AddVerified(p.topic, p.partition, p.batches...); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("object from AddVerified differs from Add's")
	}
	if &got[0] != &buf[0] {
		t.Fatal("Finish did not build the object in WriterOptions.Buffer")
	}

	a := mustEncode(t, makeRecords(1, 3, 10), BatchOptions{})
	w = NewWriter(WriterOptions{})
	wantErr(t, w.AddVerified("t", 0, a[:70]), ErrTruncated, "partial batch")
	if err := w.AddVerified("t", 0, a); err != nil {
		t.Fatal(err)
	}
	wantErr(t, w.AddVerified("t", 0, a), ErrNotContiguous, "repeated offsets")

	// Add copies: changing its argument afterwards does not reach the object.
	b := mustEncode(t, makeRecords(2, 3, 10), BatchOptions{})
	orig := bytes.Clone(b)
	w = NewWriter(WriterOptions{})
	if err := w.Add("t", 0, b); err != nil {
		t.Fatal(err)
	}
	clear(b)
	obj, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj[:len(orig)], orig) {
		t.Fatal("Add kept a reference to its argument")
	}
}
