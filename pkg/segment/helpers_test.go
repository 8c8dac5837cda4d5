package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// memObject is an in-memory RangeReader that records every range read.
type memObject struct {
	data []byte

	mu    sync.Mutex // guards reads
	reads []rangeRead
}

type rangeRead struct{ off, length int64 }

func (m *memObject) ReadRange(_ context.Context, off, length int64) ([]byte, error) {
	m.mu.Lock()
	m.reads = append(m.reads, rangeRead{off, length})
	m.mu.Unlock()
	if off < 0 || length < 0 || off > int64(len(m.data)) || length > int64(len(m.data))-off {
		return nil, fmt.Errorf("memObject: range [%d, +%d) outside %d bytes", off, length, len(m.data))
	}
	return bytes.Clone(m.data[off : off+length]), nil
}

// takeReads returns the ranges read since the last call.
func (m *memObject) takeReads() []rangeRead {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reads
	m.reads = nil
	return r
}

// semiCompressible returns n bytes of text drawn from a small vocabulary with
// some random noise: it compresses two to four times, like typical JSON logs.
func semiCompressible(rng *rand.Rand, n int) []byte {
	words := []string{"strata", "broker", "partition", "offset", "segment", "object",
		"record", "batch", "\"key\":", "\"value\":", "{", "}", ", ", "true", "false", "null"}
	b := make([]byte, 0, n+16)
	for len(b) < n {
		if rng.IntN(4) == 0 {
			b = fmt.Appendf(b, "%d", rng.Uint32())
		} else {
			b = append(b, words[rng.IntN(len(words))]...)
		}
		b = append(b, ' ')
	}
	return b[:n]
}

// makeRecords returns n records with deterministic contents, valueSize bytes of
// value each and timestamps that mostly increase.
func makeRecords(seed uint64, n, valueSize int) []Record {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	recs := make([]Record, n)
	ts := int64(1_700_000_000_000)
	for i := range recs {
		ts += int64(rng.IntN(5)) - 1
		recs[i] = Record{
			Timestamp: ts,
			Key:       fmt.Appendf(nil, "key-%d", rng.IntN(1000)),
			Value:     semiCompressible(rng, valueSize),
		}
		if i%7 == 0 {
			recs[i].Headers = []Header{{Key: "trace", Value: fmt.Appendf(nil, "%x", rng.Uint64())}}
		}
	}
	return recs
}

// withOffsets returns copies of recs with offsets base, base+1, ... as decoding
// yields them.
func withOffsets(recs []Record, base int64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = base + int64(i)
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		out[i] = r
	}
	return out
}

func mustEncode(t testing.TB, recs []Record, opts BatchOptions) []byte {
	t.Helper()
	b, err := EncodeBatch(recs, opts)
	if err != nil {
		t.Fatalf("EncodeBatch: %v", err)
	}
	return b
}

func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// rawBatch builds a valid batch header around arbitrary (already compressed)
// records bytes, so tests can craft corrupt records behind a correct CRC.
func rawBatch(codec Codec, count int32, records []byte) []byte {
	b := NewBatchBuilder(BatchOptions{})
	b.count = count
	b.records = records
	out, err := b.build(nil)
	if err != nil {
		panic(err)
	}
	// build compressed with CodecNone; set the codec bits and fix the CRC.
	out[posAttributes+1] = byte(codec)
	restamp(out)
	return out
}

// restamp recomputes the CRC of the batch that starts b.
func restamp(b []byte) {
	crc := crc32c(b[posAttributes:])
	b[posCRC], b[posCRC+1], b[posCRC+2], b[posCRC+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// rewrap returns batch with its records section replaced by payload, its codec
// set to c and its length and CRC fixed: the header fields stay.
func rewrap(batch []byte, c Codec, payload []byte) []byte {
	b := append(bytes.Clone(batch[:BatchHeaderSize]), payload...)
	binary.BigEndian.PutUint32(b[posBatchLength:], uint32(len(b)-batchOverhead))
	b[posAttributes+1] = byte(c)
	restamp(b)
	return b
}
