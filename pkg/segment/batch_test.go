package segment

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

func TestCodecNames(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(strings.ToUpper(c.String()))
		if err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
		text, err := c.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Codec
		if err := back.UnmarshalText(text); err != nil || back != c {
			t.Errorf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
	_, err := ParseCodec("brotli")
	wantErr(t, err, ErrUnknownCodec, "ParseCodec(brotli)")
	_, err = Codec(5).MarshalText()
	wantErr(t, err, ErrUnknownCodec, "Codec(5).MarshalText")
	if s := Codec(7).String(); s != "Codec(7)" {
		t.Errorf("Codec(7).String() = %q", s)
	}
}

func TestBatchRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		recs []Record
		opts BatchOptions
	}{
		{name: "nil key and value", recs: []Record{{Timestamp: 5}}},
		{name: "empty key and value", recs: []Record{{Timestamp: 5, Key: []byte{}, Value: []byte{}}}},
		{name: "nil and empty mixed", recs: []Record{
			{Timestamp: 1, Key: nil, Value: []byte{}},
			{Timestamp: 2, Key: []byte{}, Value: nil},
			{Timestamp: 3, Key: []byte("k"), Value: []byte("v")},
		}},
		{name: "headers", recs: []Record{{
			Timestamp: 10, Key: []byte("k"), Value: []byte("v"),
			Headers: []Header{
				{Key: "a", Value: []byte("1")},
				{Key: "", Value: nil},
				{Key: "a", Value: []byte{}},
				{Key: "ünïcode", Value: bytes.Repeat([]byte{0xff}, 300)},
			},
		}}},
		{name: "timestamps go backwards and far", recs: []Record{
			{Timestamp: 1_000, Value: []byte("a")},
			{Timestamp: 999, Value: []byte("b")},
			{Timestamp: -1, Value: []byte("c")},
			{Timestamp: math.MaxInt64, Value: []byte("d")},
			{Timestamp: math.MinInt64, Value: []byte("e")},
		}},
		{name: "idempotent", recs: makeRecords(1, 3, 10),
			opts: BatchOptions{Idempotent: true, ProducerID: 42, ProducerEpoch: 3, BaseSequence: 1000}},
		{name: "many records", recs: makeRecords(2, 5000, 20)},
		{name: "large values", recs: makeRecords(3, 4, 1<<20)},
	}
	for _, tc := range cases {
		for _, codec := range allCodecs {
			t.Run(tc.name+"/"+codec.String(), func(t *testing.T) {
				opts := tc.opts
				opts.Codec = codec
				b := mustEncode(t, tc.recs, opts)
				h, err := ParseBatchHeader(b)
				if err != nil {
					t.Fatalf("ParseBatchHeader: %v", err)
				}
				wantHeader(t, h, tc.recs, opts, len(b))

				got, err := DecodeRecords(b)
				if err != nil {
					t.Fatalf("DecodeRecords: %v", err)
				}
				if want := withOffsets(tc.recs, 0); !reflect.DeepEqual(got, want) {
					t.Fatalf("DecodeRecords mismatch\n got %.300v\nwant %.300v", got, want)
				}

				// A reused builder and decoder give the same bytes and records.
				bb := NewBatchBuilder(BatchOptions{Codec: CodecGzip})
				_ = bb.Append(Record{Value: []byte("discarded")})
				bb.Reset(opts)
				for _, r := range tc.recs {
					if err := bb.Append(r); err != nil {
						t.Fatal(err)
					}
				}
				if bb.Len() != len(tc.recs) {
					t.Fatalf("Len = %d", bb.Len())
				}
				b2, err := bb.Build()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, b2) {
					t.Fatal("BatchBuilder and EncodeBatch differ")
				}
				var d BatchDecoder
				for range 2 {
					got, err := d.Decode(b2)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, withOffsets(tc.recs, 0)) {
						t.Fatal("BatchDecoder mismatch")
					}
				}
			})
		}
	}
}

func wantHeader(t *testing.T, h BatchHeader, recs []Record, opts BatchOptions, size int) {
	t.Helper()
	maxTS := recs[0].Timestamp
	for _, r := range recs {
		maxTS = max(maxTS, r.Timestamp)
	}
	want := BatchHeader{
		BaseOffset:           0,
		Length:               int32(size - 12),
		PartitionLeaderEpoch: NoPartitionLeaderEpoch,
		Magic:                2,
		CRC:                  h.CRC,
		Attributes:           int16(opts.Codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       recs[0].Timestamp,
		MaxTimestamp:         maxTS,
		ProducerID:           NoProducerID,
		ProducerEpoch:        NoProducerEpoch,
		BaseSequence:         NoSequence,
		RecordCount:          int32(len(recs)),
	}
	if opts.Idempotent {
		want.ProducerID, want.ProducerEpoch, want.BaseSequence = opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.Size() != size || h.Codec() != opts.Codec || h.LastOffset() != int64(len(recs)-1) {
		t.Fatalf("Size %d Codec %v LastOffset %d", h.Size(), h.Codec(), h.LastOffset())
	}
}

// TestKafkaLayout pins the byte layout against a hand-built Kafka v2 batch, so
// that a Kafka front end can pass batches through.
func TestKafkaLayout(t *testing.T) {
	b := mustEncode(t, []Record{{Timestamp: 1000, Key: []byte("k"), Value: []byte("v")}}, BatchOptions{})
	want := []byte{
		0, 0, 0, 0, 0, 0, 0, 0, // baseOffset
		0, 0, 0, 0x3a, // batchLength 58
		0xff, 0xff, 0xff, 0xff, // partitionLeaderEpoch -1
		2,          // magic
		0, 0, 0, 0, // crc, patched below
		0, 0, // attributes
		0, 0, 0, 0, // lastOffsetDelta
		0, 0, 0, 0, 0, 0, 0x03, 0xe8, // firstTimestamp 1000
		0, 0, 0, 0, 0, 0, 0x03, 0xe8, // maxTimestamp 1000
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
		0xff, 0xff, // producerEpoch -1
		0xff, 0xff, 0xff, 0xff, // baseSequence -1
		0, 0, 0, 1, // recordCount
		// record: length 8, attributes, tsDelta 0, offsetDelta 0, key len 1 "k",
		// value len 1 "v", 0 headers (zigzag varints)
		0x10, 0, 0, 0, 0x02, 'k', 0x02, 'v', 0,
	}
	binary.BigEndian.PutUint32(want[posCRC:], crc32c(want[posAttributes:]))
	if !bytes.Equal(b, want) {
		t.Fatalf("batch bytes\n got %x\nwant %x", b, want)
	}
}

func TestSetBaseOffsetKeepsCRC(t *testing.T) {
	for _, codec := range allCodecs {
		b := mustEncode(t, makeRecords(4, 10, 100), BatchOptions{Codec: codec})
		payload := bytes.Clone(b[posCRC:])
		SetBaseOffset(b, 1<<40)
		SetPartitionLeaderEpoch(b, 7)
		if !bytes.Equal(payload, b[posCRC:]) {
			t.Fatalf("%v: stamping changed bytes after the CRC field", codec)
		}
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 7 || h.LastOffset() != 1<<40+9 {
			t.Fatalf("%v: header %+v", codec, h)
		}
		recs, err := DecodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		if recs[0].Offset != 1<<40 || recs[9].Offset != 1<<40+9 {
			t.Fatalf("%v: offsets %d..%d", codec, recs[0].Offset, recs[9].Offset)
		}
	}
}

func TestAssignOffsets(t *testing.T) {
	var run []byte
	for i, n := range []int{3, 1, 5} {
		run = append(run, mustEncode(t, makeRecords(uint64(i), n, 10), BatchOptions{Codec: allCodecs[i]})...)
	}
	next, err := AssignOffsets(run, 100)
	if err != nil || next != 109 {
		t.Fatalf("AssignOffsets = %d, %v; want 109", next, err)
	}
	hs, err := SplitBatches(run)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{100, 103, 104} {
		if hs[i].BaseOffset != want {
			t.Errorf("batch %d base %d, want %d", i, hs[i].BaseOffset, want)
		}
	}

	// An invalid batch at the end changes nothing.
	bad := append(bytes.Clone(run), run[:70]...)
	if _, err := AssignOffsets(bad, 500); !errorsIs(err, ErrTruncated) {
		t.Fatalf("AssignOffsets on truncated run: %v", err)
	}
	if !bytes.Equal(bad[:len(run)], run) {
		t.Fatal("AssignOffsets changed bytes before failing")
	}
	_, err = AssignOffsets(run, -1)
	wantErr(t, err, ErrInvalid, "negative base")
}

func TestSplitBatches(t *testing.T) {
	a := mustEncode(t, makeRecords(1, 3, 10), BatchOptions{})
	b := mustEncode(t, makeRecords(2, 4, 10), BatchOptions{Codec: CodecZstd})
	run := append(bytes.Clone(a), b...)
	hs, err := SplitBatches(run)
	if err != nil || len(hs) != 2 || hs[0].RecordCount != 3 || hs[1].RecordCount != 4 {
		t.Fatalf("SplitBatches = %+v, %v", hs, err)
	}
	if hs, err := SplitBatches(nil); err != nil || len(hs) != 0 {
		t.Fatalf("SplitBatches(nil) = %v, %v", hs, err)
	}
	for cut := len(a) + 1; cut < len(run); cut++ {
		hs, err := SplitBatches(run[:cut])
		wantErr(t, err, ErrTruncated, "partial trailing batch")
		if len(hs) != 1 {
			t.Fatalf("cut %d: %d headers before the partial batch", cut, len(hs))
		}
	}

	// SplitVerifiedBatches skips only the CRC: a flipped payload byte
	// passes, a truncated or malformed batch still fails.
	flipped := bytes.Clone(run)
	flipped[len(run)-1] ^= 0xff
	if _, err := SplitBatches(flipped); !errors.Is(err, ErrCRC) {
		t.Fatalf("SplitBatches of a flipped byte: %v, want ErrCRC", err)
	}
	if hs, err := SplitVerifiedBatches(flipped); err != nil || len(hs) != 2 || hs[1].RecordCount != 4 {
		t.Fatalf("SplitVerifiedBatches = %+v, %v", hs, err)
	}
	_, err = SplitVerifiedBatches(run[:len(run)-1])
	wantErr(t, err, ErrTruncated, "partial trailing batch, verified")
	bad := bytes.Clone(run)
	bad[posMagic] = 1
	_, err = SplitVerifiedBatches(bad)
	wantErr(t, err, ErrVersion, "wrong magic, verified")
}

func TestParseBatchHeaderCorruption(t *testing.T) {
	good := mustEncode(t, makeRecords(9, 3, 20), BatchOptions{Codec: CodecSnappy})

	t.Run("truncated at every position", func(t *testing.T) {
		for n := range len(good) {
			_, err := ParseBatchHeader(good[:n])
			wantErr(t, err, ErrTruncated, "truncated batch")
			_, err = DecodeRecords(good[:n])
			wantErr(t, err, ErrTruncated, "truncated batch")
		}
	})
	t.Run("byte flipped in CRC region", func(t *testing.T) {
		for i := posAttributes; i < len(good); i++ {
			b := bytes.Clone(good)
			b[i] ^= 0x40
			_, err := ParseBatchHeader(b)
			wantErr(t, err, ErrCRC, "flipped byte")
		}
	})
	t.Run("CRC field flipped", func(t *testing.T) {
		for i := posCRC; i < posAttributes; i++ {
			b := bytes.Clone(good)
			b[i] ^= 1
			_, err := ParseBatchHeader(b)
			wantErr(t, err, ErrCRC, "flipped CRC")
		}
	})

	mutate := func(f func(b []byte), crc bool) []byte {
		b := bytes.Clone(good)
		f(b)
		if crc {
			restamp(b)
		}
		return b
	}
	be := binary.BigEndian
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"magic 1", mutate(func(b []byte) { b[posMagic] = 1 }, false), ErrVersion},
		{"magic 3", mutate(func(b []byte) { b[posMagic] = 3 }, false), ErrVersion},
		{"length below header", mutate(func(b []byte) { be.PutUint32(b[posBatchLength:], 48) }, false), ErrCorrupt},
		{"negative length", mutate(func(b []byte) { be.PutUint32(b[posBatchLength:], 0xffffffff) }, false), ErrCorrupt},
		{"length too large", mutate(func(b []byte) { be.PutUint32(b[posBatchLength:], MaxBatchBytes) }, false), ErrTooLarge},
		{"length past end", mutate(func(b []byte) { be.PutUint32(b[posBatchLength:], uint32(len(good))) }, false), ErrTruncated},
		{"unknown codec", mutate(func(b []byte) { b[posAttributes+1] = 5 }, true), ErrUnknownCodec},
		{"zero records", mutate(func(b []byte) {
			be.PutUint32(b[posRecordCount:], 0)
			be.PutUint32(b[posLastOffsetDelta:], 0xffffffff)
		}, true), ErrCorrupt},
		{"negative records", mutate(func(b []byte) { be.PutUint32(b[posRecordCount:], 0xfffffff0) }, true), ErrCorrupt},
		{"last offset delta mismatch", mutate(func(b []byte) { be.PutUint32(b[posLastOffsetDelta:], 5) }, true), ErrCorrupt},
		{"negative base offset", mutate(func(b []byte) { be.PutUint64(b[posBaseOffset:], math.MaxUint64) }, false), ErrCorrupt},
		{"last offset overflows", mutate(func(b []byte) { be.PutUint64(b[posBaseOffset:], math.MaxInt64-1) }, false), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBatchHeader(tc.b)
			wantErr(t, err, tc.want, tc.name)
			_, err = DecodeRecords(tc.b)
			wantErr(t, err, tc.want, tc.name+" (DecodeRecords)")
		})
	}
}

func TestDecodeRecordsCorruption(t *testing.T) {
	record := func(fields ...[]byte) []byte {
		body := bytes.Join(fields, nil)
		return append(binary.AppendVarint(nil, int64(len(body))), body...)
	}
	v := func(x int64) []byte { return binary.AppendVarint(nil, x) }
	attr := []byte{0}
	good := record(attr, v(0), v(0), v(1), []byte("k"), v(1), []byte("v"), v(0))
	if _, err := DecodeRecords(rawBatch(CodecNone, 1, good)); err != nil {
		t.Fatalf("hand-built record: %v", err)
	}
	for _, tc := range []struct {
		name    string
		count   int32
		records []byte
	}{
		{"no records bytes", 1, nil},
		{"count above bytes", 3, good},
		{"trailing bytes", 1, append(bytes.Clone(good), 0)},
		{"record length negative", 1, append(v(-3), good[1:]...)},
		{"record length past end", 1, append(v(100), good[1:]...)},
		{"record length too short", 2, append(bytes.Clone(good), v(2)...)},
		{"bad varint", 1, bytes.Repeat([]byte{0xff}, 12)},
		{"offset delta wrong", 1, record(attr, v(0), v(1), v(-1), v(-1), v(0))},
		{"offset delta beyond int32", 1, record(attr, v(0), v(1<<40), v(-1), v(-1), v(0))},
		{"key length past end", 1, record(attr, v(0), v(0), v(9), []byte("k"), v(-1), v(0))},
		{"key length below -1", 1, record(attr, v(0), v(0), v(-2), v(-1), v(0))},
		{"negative header count", 1, record(attr, v(0), v(0), v(-1), v(-1), v(-1))},
		{"header count past end", 1, record(attr, v(0), v(0), v(-1), v(-1), v(1000))},
		{"nil header key", 1, record(attr, v(0), v(0), v(-1), v(-1), v(1), v(-1), v(-1))},
		{"header value past end", 1, record(attr, v(0), v(0), v(-1), v(-1), v(1), v(0), v(5), []byte("x"))},
		{"bytes after fields", 1, record(attr, v(0), v(0), v(-1), v(-1), v(0), []byte("junk"))},
		{"second record offset delta", 2, append(bytes.Clone(good), good...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecords(rawBatch(CodecNone, tc.count, tc.records))
			wantErr(t, err, ErrCorrupt, tc.name)
		})
	}

	t.Run("garbage for every codec", func(t *testing.T) {
		for _, c := range allCodecs[1:] {
			_, err := DecodeRecords(rawBatch(c, 1, []byte("definitely not compressed data")))
			wantErr(t, err, ErrCorrupt, c.String())
		}
	})
}

// TestDecompressionBomb checks that a small batch that expands past the limit
// fails with ErrTooLarge before a large allocation.
func TestDecompressionBomb(t *testing.T) {
	zeros := make([]byte, MaxBatchBytes+1)
	for _, c := range allCodecs[1:] {
		payload, err := compress(nil, c, zeros)
		if err != nil {
			t.Fatal(err)
		}
		if len(payload) > MaxBatchBytes/8 {
			t.Fatalf("%v: bomb payload of %d bytes", c, len(payload))
		}
		_, err = DecodeRecords(rawBatch(c, 1, payload))
		wantErr(t, err, ErrTooLarge, c.String())
	}
	// A lower per-decoder limit applies too.
	b := mustEncode(t, makeRecords(1, 10, 1000), BatchOptions{Codec: CodecZstd})
	d := BatchDecoder{MaxBytes: 5000}
	_, err := d.Decode(b)
	wantErr(t, err, ErrTooLarge, "MaxBytes 5000")
	d.MaxBytes = 1 << 20
	if _, err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestBatchLimits(t *testing.T) {
	var bb BatchBuilder
	if _, err := bb.Build(); !errorsIs(err, ErrInvalid) {
		t.Fatalf("Build with no records: %v", err)
	}
	if err := bb.Append(Record{Value: make([]byte, MaxBatchBytes)}); !errorsIs(err, ErrTooLarge) {
		t.Fatalf("Append of an oversized record: %v", err)
	}
	if err := bb.Append(Record{Value: make([]byte, MaxBatchBytes/2)}); err != nil {
		t.Fatal(err)
	}
	size := bb.Size()
	if err := bb.Append(Record{Value: make([]byte, MaxBatchBytes/2)}); !errorsIs(err, ErrTooLarge) {
		t.Fatalf("Append past the batch limit: %v", err)
	}
	if bb.Size() != size || bb.Len() != 1 {
		t.Fatal("a failed Append changed the batch")
	}
	if _, err := EncodeBatch(nil, BatchOptions{}); !errorsIs(err, ErrInvalid) {
		t.Fatalf("EncodeBatch(nil): %v", err)
	}
	if _, err := EncodeBatch(makeRecords(1, 1, 1), BatchOptions{Codec: 6}); !errorsIs(err, ErrUnknownCodec) {
		t.Fatalf("EncodeBatch with codec 6: %v", err)
	}
}

// TestSnappyInterop decodes the Snappy variants other Kafka clients write: raw
// blocks, and the xerial framing of Kafka's Java client.
func TestSnappyInterop(t *testing.T) {
	recs := makeRecords(5, 50, 300)
	plain := mustEncode(t, recs, BatchOptions{})
	raw := plain[BatchHeaderSize:]

	xerial := []byte("\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01")
	for chunk := range slicesChunk(raw, 4096) {
		block := s2.EncodeSnappy(nil, chunk)
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(block)))
		xerial = append(xerial, block...)
	}
	got, err := DecodeRecords(rewrap(plain, CodecSnappy, xerial))
	if err != nil {
		t.Fatalf("xerial: %v", err)
	}
	if !reflect.DeepEqual(got, withOffsets(recs, 0)) {
		t.Fatal("xerial: records differ")
	}
	for _, bad := range [][]byte{xerial[:10], xerial[:18], append(bytes.Clone(xerial), 0, 0, 1, 0)} {
		_, err := DecodeRecords(rewrap(plain, CodecSnappy, bad))
		wantErr(t, err, ErrCorrupt, "bad xerial")
	}
}

// TestForeignCompressors decodes payloads written by other implementations of
// the codecs: the standard library's gzip and a stand-alone zstd encoder.
func TestForeignCompressors(t *testing.T) {
	recs := makeRecords(6, 20, 200)
	plain := mustEncode(t, recs, BatchOptions{})
	raw := plain[BatchHeaderSize:]

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderCRC(false))
	for _, tc := range []struct {
		c       Codec
		payload []byte
	}{
		{CodecGzip, gz.Bytes()},
		{CodecZstd, enc.EncodeAll(raw, nil)},
	} {
		got, err := DecodeRecords(rewrap(plain, tc.c, tc.payload))
		if err != nil || !reflect.DeepEqual(got, withOffsets(recs, 0)) {
			t.Fatalf("%v: %v", tc.c, err)
		}
	}
}

func slicesChunk(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}
