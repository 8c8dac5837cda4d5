package segment

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Sizes and identifiers of the segment object format.
const (
	// TrailerSize is the size of the fixed trailer that ends every segment object.
	TrailerSize = 20
	// FormatVersion is the segment format version that this package writes and
	// reads.
	FormatVersion = 1
	// Magic ends every segment object.
	Magic = "STRATSEG"
	// MaxFooterBytes bounds the footer's size, so a corrupt trailer cannot make a
	// reader fetch or allocate an unbounded amount.
	MaxFooterBytes = 64 << 20
	// MaxTopicIDLen bounds the length of a topic id in bytes.
	MaxTopicIDLen = 255
)

// Trailer is the fixed-size end of a segment object. It locates and checksums
// the footer before it.
type Trailer struct {
	// FooterLength is the size of the footer in bytes.
	FooterLength uint32
	// FooterCRC is the CRC-32C of the footer.
	FooterCRC uint32
	// Version is the format version of the footer.
	Version uint16
}

// ParseTrailer parses and validates the trailer in the last [TrailerSize] bytes
// of b: the magic, the version and the footer size limit.
func ParseTrailer(b []byte) (Trailer, error) {
	if len(b) < TrailerSize {
		return Trailer{}, fmt.Errorf("%w: trailer needs %d bytes, have %d", ErrTruncated, TrailerSize, len(b))
	}
	b = b[len(b)-TrailerSize:]
	if string(b[12:]) != Magic {
		return Trailer{}, fmt.Errorf("%w: trailer magic %q", ErrMagic, b[12:])
	}
	be := binary.BigEndian
	t := Trailer{
		FooterLength: be.Uint32(b[0:]),
		FooterCRC:    be.Uint32(b[4:]),
		Version:      be.Uint16(b[8:]),
	}
	if t.Version != FormatVersion {
		return Trailer{}, fmt.Errorf("%w: segment format version %d, want %d", ErrVersion, t.Version, FormatVersion)
	}
	if flags := be.Uint16(b[10:]); flags != 0 {
		return Trailer{}, fmt.Errorf("%w: trailer flags %#04x", ErrCorrupt, flags)
	}
	if t.FooterLength > MaxFooterBytes {
		return Trailer{}, fmt.Errorf("%w: footer of %d bytes exceeds %d", ErrTooLarge, t.FooterLength, MaxFooterBytes)
	}
	return t, nil
}

func appendTrailer(dst []byte, t Trailer) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, t.FooterLength)
	dst = be.AppendUint32(dst, t.FooterCRC)
	dst = be.AppendUint16(dst, t.Version)
	dst = be.AppendUint16(dst, 0) // flags
	return append(dst, Magic...)
}

// Footer lists the chunks of a segment object.
type Footer struct {
	// DataSize is the number of chunk bytes at the start of the object, before
	// the footer.
	DataSize int64
	// Chunks describes every chunk, sorted by topic id and then partition, which
	// is also their order in the object.
	Chunks []ChunkInfo
}

// ChunkInfo describes one chunk: the batches of one partition in a segment
// object.
type ChunkInfo struct {
	// TopicID and Partition identify the partition.
	TopicID   string
	Partition int32
	// FirstOffset and LastOffset are the offsets of the chunk's first and last
	// records.
	FirstOffset int64
	LastOffset  int64
	// Position and Length are the chunk's byte range within the object.
	Position int64
	Length   int64
	// RecordCount is the number of records in the chunk.
	RecordCount int64
	// MinTimestamp is the smallest first timestamp of the chunk's batches and
	// MaxTimestamp the largest max timestamp, both in Unix milliseconds. A record
	// may carry a timestamp below its batch's first timestamp, so MinTimestamp is
	// an estimate; MaxTimestamp is exact as long as producers set it right.
	MinTimestamp int64
	MaxTimestamp int64
	// Index is the chunk's sparse offset index, ordered by offset. Its first
	// entry is the chunk's first batch.
	Index []IndexEntry
}

// IndexEntry points at the start of a batch within a chunk.
type IndexEntry struct {
	// Offset is the batch's base offset.
	Offset int64
	// Position is the batch's byte position relative to the start of the chunk.
	Position int64
	// MaxTimestamp is the largest batch max timestamp from this entry's batch up
	// to the next entry's batch (or the end of the chunk).
	MaxTimestamp int64
}

// End returns the byte position just after the chunk within the object.
func (c *ChunkInfo) End() int64 { return c.Position + c.Length }

// Find returns the chunk of the given partition.
func (f *Footer) Find(topicID string, partition int32) (ChunkInfo, bool) {
	i, ok := slices.BinarySearchFunc(f.Chunks, chunkKey{topicID, partition}, func(c ChunkInfo, k chunkKey) int {
		return compareKeys(chunkKey{c.TopicID, c.Partition}, k)
	})
	if !ok {
		return ChunkInfo{}, false
	}
	return f.Chunks[i], true
}

// chunkKey identifies a partition.
type chunkKey struct {
	topicID   string
	partition int32
}

func compareKeys(a, b chunkKey) int {
	return cmp.Or(cmp.Compare(a.topicID, b.topicID), cmp.Compare(a.partition, b.partition))
}

// locate returns the index of the last entry whose offset is at most offset.
func (c *ChunkInfo) locate(offset int64) (int, bool) {
	if offset < c.FirstOffset || offset > c.LastOffset || len(c.Index) == 0 {
		return 0, false
	}
	i := sort.Search(len(c.Index), func(i int) bool { return c.Index[i].Offset > offset })
	if i == 0 {
		return 0, false
	}
	return i - 1, true
}

// Locate returns the position, relative to the chunk, of the last indexed batch
// whose base offset is at most offset. The batch that holds offset starts there
// or later, before the next index entry; the caller scans forward from it. It
// reports false when offset is outside the chunk.
func (c *ChunkInfo) Locate(offset int64) (pos int64, ok bool) {
	i, ok := c.locate(offset)
	if !ok {
		return 0, false
	}
	return c.Index[i].Position, true
}

// LocateTime returns the position, relative to the chunk, of the indexed batch
// from which to scan for the first batch whose max timestamp is at least ts:
// that batch starts there or later, before the next index entry. It reports
// false when no batch in the chunk reaches ts.
func (c *ChunkInfo) LocateTime(ts int64) (pos int64, ok bool) {
	for _, e := range c.Index {
		if e.MaxTimestamp >= ts {
			return e.Position, true
		}
	}
	return 0, false
}

// appendFooter appends the encoding of f (without trailer) to dst.
func appendFooter(dst []byte, f *Footer) []byte {
	dst = binary.AppendUvarint(dst, uint64(f.DataSize))
	dst = binary.AppendUvarint(dst, uint64(len(f.Chunks)))
	for i := range f.Chunks {
		c := &f.Chunks[i]
		dst = binary.AppendUvarint(dst, uint64(len(c.TopicID)))
		dst = append(dst, c.TopicID...)
		dst = binary.AppendUvarint(dst, uint64(c.Partition))
		dst = binary.AppendUvarint(dst, uint64(c.FirstOffset))
		dst = binary.AppendUvarint(dst, uint64(c.LastOffset-c.FirstOffset))
		dst = binary.AppendUvarint(dst, uint64(c.Position))
		dst = binary.AppendUvarint(dst, uint64(c.Length))
		dst = binary.AppendUvarint(dst, uint64(c.RecordCount))
		dst = binary.AppendVarint(dst, c.MinTimestamp)
		dst = binary.AppendVarint(dst, c.MaxTimestamp-c.MinTimestamp)
		dst = binary.AppendUvarint(dst, uint64(len(c.Index)))
		prev := IndexEntry{Offset: c.FirstOffset}
		for _, e := range c.Index {
			dst = binary.AppendUvarint(dst, uint64(e.Offset-prev.Offset))
			dst = binary.AppendUvarint(dst, uint64(e.Position-prev.Position))
			dst = binary.AppendVarint(dst, e.MaxTimestamp-c.MinTimestamp)
			prev = e
		}
	}
	return dst
}

// Minimum encoded sizes, used to bound allocations by the footer's size.
const (
	minChunkEncoding = 14 // eleven one-byte fields, a one-byte topic id, one index entry
	minEntryEncoding = 3
)

// ParseFooter parses the footer and trailer at the end of tail, which holds the
// last bytes of a segment object: at least the footer and the trailer. It checks
// the trailer, the footer's CRC, and that every chunk and index entry is
// consistent: chunks sorted and unique, byte ranges ordered within DataSize,
// offsets and index entries in range.
func ParseFooter(tail []byte) (*Footer, error) {
	t, err := ParseTrailer(tail)
	if err != nil {
		return nil, err
	}
	avail := len(tail) - TrailerSize
	if int64(t.FooterLength) > int64(avail) {
		return nil, fmt.Errorf("%w: footer needs %d bytes, have %d", ErrTruncated, t.FooterLength, avail)
	}
	fb := tail[avail-int(t.FooterLength) : avail]
	if sum := crc32c(fb); sum != t.FooterCRC {
		return nil, fmt.Errorf("%w: footer CRC %#08x, computed %#08x", ErrCRC, t.FooterCRC, sum)
	}
	f, err := decodeFooter(fb)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func decodeFooter(b []byte) (*Footer, error) {
	r := fieldReader{b: b, where: "footer: "}
	f := &Footer{DataSize: int64(r.uvarint("data size", math.MaxInt64))}
	n := r.uvarint("chunk count", uint64(len(r.b)/minChunkEncoding))
	if r.err != nil {
		return nil, r.err
	}
	f.Chunks = make([]ChunkInfo, 0, n)
	var prevEnd int64
	for i := range int(n) {
		c, err := decodeChunk(&r, f.DataSize)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		if i > 0 {
			prev := &f.Chunks[i-1]
			if compareKeys(chunkKey{prev.TopicID, prev.Partition}, chunkKey{c.TopicID, c.Partition}) >= 0 {
				return nil, fmt.Errorf("%w: footer: chunk %d (%s/%d) out of order", ErrCorrupt, i, c.TopicID, c.Partition)
			}
		}
		if c.Position < prevEnd {
			return nil, fmt.Errorf("%w: footer: chunk %d at byte %d overlaps the previous one ending at %d", ErrCorrupt, i, c.Position, prevEnd)
		}
		prevEnd = c.End()
		f.Chunks = append(f.Chunks, c)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: footer: %d bytes after the last chunk", ErrCorrupt, len(r.b))
	}
	return f, nil
}

func decodeChunk(r *fieldReader, dataSize int64) (ChunkInfo, error) {
	var c ChunkInfo
	tl := r.uvarint("topic id length", MaxTopicIDLen)
	if r.err == nil && (tl == 0 || tl > uint64(len(r.b))) {
		r.fail("topic id length %d with %d bytes left", tl, len(r.b))
	}
	if r.err != nil {
		return c, r.err
	}
	c.TopicID = string(r.b[:tl])
	r.b = r.b[tl:]
	c.Partition = int32(r.uvarint("partition", math.MaxInt32))
	c.FirstOffset = int64(r.uvarint("first offset", math.MaxInt64))
	c.LastOffset = c.FirstOffset + int64(r.uvarint("offset span", uint64(math.MaxInt64-c.FirstOffset)))
	c.Position = int64(r.uvarint("position", uint64(dataSize)))
	c.Length = int64(r.uvarint("length", uint64(dataSize-c.Position)))
	c.RecordCount = int64(r.uvarint("record count", min(uint64(c.LastOffset-c.FirstOffset)+1, math.MaxInt64)))
	c.MinTimestamp = r.varint("min timestamp")
	c.MaxTimestamp = c.MinTimestamp + r.varint("max timestamp")
	n := r.uvarint("index entry count", uint64(len(r.b)/minEntryEncoding))
	if r.err != nil {
		return c, r.err
	}
	if c.Length < BatchHeaderSize {
		return c, fmt.Errorf("%w: footer: chunk length %d", ErrCorrupt, c.Length)
	}
	if c.RecordCount == 0 || n == 0 {
		return c, fmt.Errorf("%w: footer: chunk with %d records and %d index entries", ErrCorrupt, c.RecordCount, n)
	}
	c.Index = make([]IndexEntry, 0, n)
	prev := IndexEntry{Offset: c.FirstOffset}
	maxTS := int64(math.MinInt64)
	for j := range int(n) {
		e := IndexEntry{
			Offset:       prev.Offset + int64(r.uvarint("index offset delta", uint64(c.LastOffset-prev.Offset))),
			Position:     prev.Position + int64(r.uvarint("index position delta", uint64(c.Length-1-prev.Position))),
			MaxTimestamp: c.MinTimestamp + r.varint("index max timestamp"),
		}
		if r.err != nil {
			return c, r.err
		}
		if j > 0 && (e.Offset == prev.Offset || e.Position == prev.Position) {
			return c, fmt.Errorf("%w: footer: index entry %d does not advance", ErrCorrupt, j)
		}
		if j == 0 && (e.Offset != c.FirstOffset || e.Position != 0) {
			return c, fmt.Errorf("%w: footer: first index entry is not the first batch", ErrCorrupt)
		}
		maxTS = max(maxTS, e.MaxTimestamp)
		c.Index = append(c.Index, e)
		prev = e
	}
	if maxTS != c.MaxTimestamp {
		return c, fmt.Errorf("%w: footer: index max timestamp %d, chunk max timestamp %d", ErrCorrupt, maxTS, c.MaxTimestamp)
	}
	return c, nil
}
