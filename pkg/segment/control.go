package segment

import (
	"encoding/binary"
	"fmt"
)

// Kafka's end-transaction marker (a control record): its key is an int16
// version and an int16 type, its value an int16 version and an int32
// coordinator epoch.
const (
	markerKeySize   = 4
	markerValueSize = 6
	markerAbort     = 0
	markerCommit    = 1
)

// ControlBatch returns a Kafka control batch (base offset 0, one record,
// attributes AttrControl|AttrTransactional, base sequence -1, producer id
// and epoch set) holding an end-transaction marker: commit or abort. Key:
// int16 version 0, int16 type (0 abort, 1 commit). Value: int16 version 0,
// int32 coordinator epoch 0. The result is newly allocated.
func ControlBatch(pid int64, epoch int16, commit bool, timestampMs int64) []byte {
	typ := uint16(markerAbort)
	if commit {
		typ = markerCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 2, markerKeySize), typ) // version 0, type
	value := make([]byte, markerValueSize)                                    // version 0, coordinator epoch 0
	b, err := EncodeBatch([]Record{{Timestamp: timestampMs, Key: key, Value: value}},
		BatchOptions{Idempotent: true, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: NoSequence})
	if err != nil {
		// One small uncompressed record always encodes.
		panic(fmt.Sprintf("segment: control batch: %v", err))
	}
	binary.BigEndian.PutUint16(b[posAttributes:], uint16(AttrControl|AttrTransactional))
	binary.BigEndian.PutUint32(b[posCRC:], crc32c(b[posAttributes:]))
	return b
}

// ParseMarker reads the end-transaction marker of a control batch (the
// whole batch bytes, validated like any batch): whether it commits. A
// batch that is not a control batch (both AttrControl and
// AttrTransactional set), has other than one record, is followed by other
// bytes, or whose key is not a version-0 marker of type 0 or 1 (or whose
// value is not a version-0 marker value) is ErrCorrupt-wrapped.
func ParseMarker(batch []byte) (commit bool, err error) {
	h, err := ParseBatchHeader(batch)
	if err != nil {
		return false, err
	}
	const ctl = AttrControl | AttrTransactional
	switch {
	case h.Attributes&ctl != ctl:
		return false, fmt.Errorf("%w: not a control batch (attributes %#x)", ErrCorrupt, h.Attributes)
	case h.RecordCount != 1:
		return false, fmt.Errorf("%w: control batch with %d records, want 1", ErrCorrupt, h.RecordCount)
	case h.Size() != len(batch):
		return false, fmt.Errorf("%w: %d bytes after the control batch", ErrCorrupt, len(batch)-h.Size())
	}
	recs, err := DecodeRecords(batch)
	if err != nil {
		return false, err
	}
	key, value := recs[0].Key, recs[0].Value
	if len(key) != markerKeySize || binary.BigEndian.Uint16(key) != 0 {
		return false, fmt.Errorf("%w: control record key %x is not a version-0 marker", ErrCorrupt, key)
	}
	if len(value) != markerValueSize || binary.BigEndian.Uint16(value) != 0 {
		return false, fmt.Errorf("%w: control record value %x is not a version-0 marker", ErrCorrupt, value)
	}
	switch binary.BigEndian.Uint16(key[2:]) {
	case markerAbort:
		return false, nil
	case markerCommit:
		return true, nil
	}
	return false, fmt.Errorf("%w: control record type %d is not an end-transaction marker", ErrCorrupt, int16(binary.BigEndian.Uint16(key[2:])))
}
