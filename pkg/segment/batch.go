package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Limits and sizes of the record batch format.
const (
	// BatchHeaderSize is the size of a record batch header: every field from
	// baseOffset to recordCount.
	BatchHeaderSize = 61

	// MaxBatchBytes bounds both the encoded size of a record batch and the
	// decompressed size of its records. Parsers reject larger batches with
	// [ErrTooLarge], which caps what a hostile batch can make a reader allocate.
	MaxBatchBytes = 16 << 20

	// batchMagic is the Kafka record batch version this package reads and writes.
	batchMagic = 2

	// batchOverhead is the part of the header that batchLength does not count:
	// baseOffset and batchLength themselves.
	batchOverhead = 12

	// minRecordSize is the smallest encoded record: length, attributes,
	// timestampDelta, offsetDelta, keyLength, valueLength and header count, one
	// byte each.
	minRecordSize = 7
)

// Field positions within a record batch header.
const (
	posBaseOffset      = 0
	posBatchLength     = 8
	posLeaderEpoch     = 12
	posMagic           = 16
	posCRC             = 17
	posAttributes      = 21
	posLastOffsetDelta = 23
	posFirstTimestamp  = 27
	posMaxTimestamp    = 35
	posProducerID      = 43
	posProducerEpoch   = 51
	posBaseSequence    = 53
	posRecordCount     = 57
)

// Attribute bits of a record batch beyond the codec, as Kafka defines them.
const (
	// AttrLogAppendTime marks a batch whose timestamps were set by the broker:
	// every record's timestamp is then the batch's MaxTimestamp.
	AttrLogAppendTime int16 = 1 << 3
	// AttrTransactional marks a batch written inside a transaction.
	AttrTransactional int16 = 1 << 4
	// AttrControl marks a batch of control records (transaction markers).
	AttrControl int16 = 1 << 5

	attrCodecMask int16 = 0x07
)

// Values that Kafka writes when a producer is not idempotent or when a batch
// has not been through a partition leader.
const (
	// NoProducerID is the producer id of a batch from a non-idempotent producer.
	NoProducerID int64 = -1
	// NoProducerEpoch is the producer epoch of a batch from a non-idempotent
	// producer.
	NoProducerEpoch int16 = -1
	// NoSequence is the base sequence of a batch from a non-idempotent producer.
	NoSequence int32 = -1
	// NoPartitionLeaderEpoch is the partition leader epoch of a batch that no
	// partition owner has stamped yet.
	NoPartitionLeaderEpoch int32 = -1
)

// crc32c returns the CRC-32C (Castagnoli) checksum of b. MakeTable caches the
// Castagnoli table, so the call is cheap.
func crc32c(b []byte) uint32 {
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// BatchHeader holds the fixed fields of a record batch, in wire order.
type BatchHeader struct {
	// BaseOffset is the offset of the batch's first record. Producers write 0;
	// the broker stamps the real offset with [SetBaseOffset].
	BaseOffset int64
	// Length is the number of bytes after the Length field itself.
	Length int32
	// PartitionLeaderEpoch is the epoch of the partition owner that stored the
	// batch, or [NoPartitionLeaderEpoch].
	PartitionLeaderEpoch int32
	// Magic is the batch format version; always 2.
	Magic int8
	// CRC is the CRC-32C of every byte from Attributes to the end of the batch.
	CRC uint32
	// Attributes holds the codec in its low three bits and the Attr* flags.
	Attributes int16
	// LastOffsetDelta is the offset of the last record minus BaseOffset; it is
	// always RecordCount-1.
	LastOffsetDelta int32
	// FirstTimestamp is the timestamp of the first record, in Unix milliseconds.
	FirstTimestamp int64
	// MaxTimestamp is the largest record timestamp, in Unix milliseconds.
	MaxTimestamp int64
	// ProducerID identifies an idempotent producer, or is [NoProducerID].
	ProducerID int64
	// ProducerEpoch is the idempotent producer's epoch, or [NoProducerEpoch].
	ProducerEpoch int16
	// BaseSequence is the producer's sequence number of the first record, or
	// [NoSequence].
	BaseSequence int32
	// RecordCount is the number of records in the batch; always positive.
	RecordCount int32
}

// Codec returns the compression codec of the batch's records.
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LastOffset returns the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size returns the batch's total size in bytes, header included.
func (h BatchHeader) Size() int { return batchOverhead + int(h.Length) }

// batchSize checks the fields needed to find the end of the batch that starts
// b (baseOffset, batchLength and magic) and returns the batch's size.
func batchSize(b []byte) (int, error) {
	if len(b) < posMagic+1 {
		return 0, fmt.Errorf("%w: batch header needs %d bytes, have %d", ErrTruncated, BatchHeaderSize, len(b))
	}
	if m := int8(b[posMagic]); m != batchMagic {
		return 0, fmt.Errorf("%w: record batch magic %d, want %d", ErrVersion, m, batchMagic)
	}
	length := int32(binary.BigEndian.Uint32(b[posBatchLength:]))
	if length < BatchHeaderSize-batchOverhead {
		return 0, fmt.Errorf("%w: batch length %d is below the header size", ErrCorrupt, length)
	}
	if length > MaxBatchBytes-batchOverhead {
		return 0, fmt.Errorf("%w: batch of %d bytes exceeds %d", ErrTooLarge, int64(length)+batchOverhead, MaxBatchBytes)
	}
	size := batchOverhead + int(length)
	if len(b) < size {
		return 0, fmt.Errorf("%w: batch needs %d bytes, have %d", ErrTruncated, size, len(b))
	}
	return size, nil
}

// ParseBatchHeader parses and validates the record batch that starts b, without
// decompressing it. b may continue past the batch; h.Size() tells where the
// batch ends. It checks the length, the magic, the CRC, the codec, that the
// record count is positive and equals LastOffsetDelta+1, and that the last offset
// does not overflow.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	return parseBatchHeader(b, true)
}

// parseBatchHeader is ParseBatchHeader, checking the CRC only if crc: a
// caller that verified the batch before skips the pass over its bytes.
func parseBatchHeader(b []byte, crc bool) (BatchHeader, error) {
	size, err := batchSize(b)
	if err != nil {
		return BatchHeader{}, err
	}
	be := binary.BigEndian
	h := BatchHeader{
		BaseOffset:           int64(be.Uint64(b[posBaseOffset:])),
		Length:               int32(be.Uint32(b[posBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[posLeaderEpoch:])),
		Magic:                int8(b[posMagic]),
		CRC:                  be.Uint32(b[posCRC:]),
		Attributes:           int16(be.Uint16(b[posAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[posLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[posFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[posMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[posProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[posProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[posBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[posRecordCount:])),
	}
	if crc {
		if sum := crc32c(b[posAttributes:size]); sum != h.CRC {
			return BatchHeader{}, fmt.Errorf("%w: batch CRC %#08x, computed %#08x", ErrCRC, h.CRC, sum)
		}
	}
	if !h.Codec().Valid() {
		return BatchHeader{}, fmt.Errorf("%w: batch codec %d", ErrUnknownCodec, h.Codec())
	}
	if h.RecordCount <= 0 {
		return BatchHeader{}, fmt.Errorf("%w: record count %d", ErrCorrupt, h.RecordCount)
	}
	if h.LastOffsetDelta != h.RecordCount-1 {
		return BatchHeader{}, fmt.Errorf("%w: last offset delta %d with %d records", ErrCorrupt, h.LastOffsetDelta, h.RecordCount)
	}
	if h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta) {
		return BatchHeader{}, fmt.Errorf("%w: base offset %d", ErrCorrupt, h.BaseOffset)
	}
	return h, nil
}

// SetBaseOffset stamps base into the batch that starts b, in place. The base
// offset lies outside the CRC, so the batch stays valid and its payload is not
// touched. b must hold at least the first 8 bytes of a batch; SetBaseOffset
// panics otherwise, as a write past the end of any slice does.
func SetBaseOffset(b []byte, base int64) {
	binary.BigEndian.PutUint64(b[posBaseOffset:], uint64(base))
}

// SetPartitionLeaderEpoch stamps epoch into the batch that starts b, in place.
// Like the base offset, the field lies outside the CRC. b must hold at least the
// first 16 bytes of a batch; SetPartitionLeaderEpoch panics otherwise.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[posLeaderEpoch:], uint32(epoch))
}

// AssignOffsets gives the whole batches in b consecutive offsets starting at
// base, as a broker does when it appends a produce request to a partition, and
// returns the offset after the last record. It validates every batch first and
// changes nothing if any is invalid or b ends inside a batch.
func AssignOffsets(b []byte, base int64) (next int64, err error) {
	if base < 0 {
		return base, fmt.Errorf("%w: base offset %d", ErrInvalid, base)
	}
	next = base
	for pos := 0; pos < len(b); {
		h, err := ParseBatchHeader(b[pos:])
		if err != nil {
			return base, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		if next > math.MaxInt64-int64(h.RecordCount) {
			return base, fmt.Errorf("%w: offsets overflow", ErrInvalid)
		}
		next += int64(h.RecordCount)
		pos += h.Size()
	}
	next = base
	for pos := 0; pos < len(b); {
		SetBaseOffset(b[pos:], next)
		next += int64(binary.BigEndian.Uint32(b[pos+posRecordCount:]))
		pos += batchOverhead + int(binary.BigEndian.Uint32(b[pos+posBatchLength:]))
	}
	return next, nil
}

// SplitBatches parses the headers of the whole batches that b holds back to back.
// If b ends inside a batch or holds an invalid one, it returns the headers
// before that batch and an error that tells the batch's byte position; the
// error wraps [ErrTruncated] when b merely ends early.
func SplitBatches(b []byte) ([]BatchHeader, error) { return splitBatches(b, true) }

// SplitVerifiedBatches is SplitBatches for bytes whose batches were
// validated before, CRCs included (a proxy's copy of batches their broker
// accepted): it checks everything but the CRCs, which would be a second
// pass over every byte.
func SplitVerifiedBatches(b []byte) ([]BatchHeader, error) { return splitBatches(b, false) }

func splitBatches(b []byte, crc bool) ([]BatchHeader, error) {
	var hs []BatchHeader
	for pos := 0; pos < len(b); {
		h, err := parseBatchHeader(b[pos:], crc)
		if err != nil {
			return hs, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}
