package segment

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// controlOf encodes recs as a control batch of producer 5 epoch 2, as a
// hostile or buggy writer might.
func controlOf(t testing.TB, recs []Record) []byte {
	t.Helper()
	b := mustEncode(t, recs, BatchOptions{Idempotent: true, ProducerID: 5, ProducerEpoch: 2, BaseSequence: NoSequence})
	binary.BigEndian.PutUint16(b[posAttributes:], uint16(AttrControl|AttrTransactional))
	restamp(b)
	return b
}

// TestControlBatch pins the marker's layout (Kafka's EndTransactionMarker)
// and that ParseMarker reads it back.
func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		b := ControlBatch(77, 3, commit, 1_700_000_000_000)
		h, err := ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		want := BatchHeader{BaseOffset: 0, Length: h.Length, PartitionLeaderEpoch: NoPartitionLeaderEpoch, Magic: 2, CRC: h.CRC,
			Attributes: AttrControl | AttrTransactional, LastOffsetDelta: 0, FirstTimestamp: 1_700_000_000_000,
			MaxTimestamp: 1_700_000_000_000, ProducerID: 77, ProducerEpoch: 3, BaseSequence: NoSequence, RecordCount: 1}
		if h != want || h.Size() != len(b) {
			t.Fatalf("header %+v, want %+v", h, want)
		}
		recs, err := DecodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		typ := byte(0)
		if commit {
			typ = 1
		}
		if !bytes.Equal(recs[0].Key, []byte{0, 0, 0, typ}) || !bytes.Equal(recs[0].Value, []byte{0, 0, 0, 0, 0, 0}) {
			t.Fatalf("marker key %x value %x", recs[0].Key, recs[0].Value)
		}
		got, err := ParseMarker(b)
		if err != nil || got != commit {
			t.Fatalf("ParseMarker = %v, %v; want %v", got, err, commit)
		}
	}
}

func TestParseMarkerRefuses(t *testing.T) {
	marker := func(key, value []byte) Record { return Record{Timestamp: 1, Key: key, Value: value} }
	good := marker([]byte{0, 0, 0, 1}, make([]byte, 6))
	flipped := ControlBatch(1, 0, true, 1)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"plain batch", mustEncode(t, []Record{good}, BatchOptions{}), ErrCorrupt},
		{"transactional data batch", func() []byte {
			b := mustEncode(t, []Record{good}, BatchOptions{Idempotent: true, ProducerID: 1})
			binary.BigEndian.PutUint16(b[posAttributes:], uint16(AttrTransactional))
			restamp(b)
			return b
		}(), ErrCorrupt},
		{"two records", controlOf(t, []Record{good, good}), ErrCorrupt},
		{"type 2", controlOf(t, []Record{marker([]byte{0, 0, 0, 2}, make([]byte, 6))}), ErrCorrupt},
		{"key version 1", controlOf(t, []Record{marker([]byte{0, 1, 0, 1}, make([]byte, 6))}), ErrCorrupt},
		{"short key", controlOf(t, []Record{marker([]byte{0, 0, 1}, make([]byte, 6))}), ErrCorrupt},
		{"nil key", controlOf(t, []Record{marker(nil, make([]byte, 6))}), ErrCorrupt},
		{"value version 1", controlOf(t, []Record{marker([]byte{0, 0, 0, 1}, []byte{0, 1, 0, 0, 0, 0})}), ErrCorrupt},
		{"short value", controlOf(t, []Record{marker([]byte{0, 0, 0, 1}, []byte{0, 0})}), ErrCorrupt},
		{"trailing bytes", append(ControlBatch(1, 0, true, 1), 0), ErrCorrupt},
		{"truncated", ControlBatch(1, 0, true, 1)[:40], ErrTruncated},
		{"bad CRC", flipped, ErrCRC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMarker(tt.batch)
			wantErr(t, err, tt.want, "ParseMarker")
		})
	}
	if _, err := ParseMarker(controlOf(t, []Record{good})); err != nil {
		t.Fatalf("hand-built marker: %v", err)
	}
}
