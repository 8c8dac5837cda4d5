package segment

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// TailReadSize is how many bytes [Open] reads from the end of an object in its
// first request. A footer that does not fit costs one more request.
const TailReadSize = 64 << 10

// RangeReader reads byte ranges of one stored object, as an object store's
// ranged GET does.
type RangeReader interface {
	// ReadRange returns the length bytes of the object that start at off. It
	// returns an error, rather than fewer bytes, if the object has fewer.
	ReadRange(ctx context.Context, off, length int64) ([]byte, error)
}

// Reader reads chunks of one segment object through a RangeReader, fetching
// only the byte ranges it needs. A Reader is safe for concurrent use if its
// RangeReader is.
type Reader struct {
	src    RangeReader
	size   int64
	footer *Footer
}

// Open reads and validates the trailer and footer of the object of the given
// size that src reads. It reads the last [TailReadSize] bytes (or the whole
// object, if smaller) and, only if the footer is larger, the rest of the footer
// — never the chunk data.
func Open(ctx context.Context, src RangeReader, size int64) (*Reader, error) {
	if size < TrailerSize {
		return nil, fmt.Errorf("%w: object of %d bytes is smaller than a trailer", ErrTruncated, size)
	}
	n := min(size, TailReadSize)
	tail, err := readRange(ctx, src, size-n, n)
	if err != nil {
		return nil, fmt.Errorf("segment: read tail: %w", err)
	}
	t, err := ParseTrailer(tail)
	if err != nil {
		return nil, err
	}
	need := int64(t.FooterLength) + TrailerSize
	if need > size {
		return nil, fmt.Errorf("%w: footer of %d bytes in an object of %d", ErrCorrupt, t.FooterLength, size)
	}
	if need > n {
		head, err := readRange(ctx, src, size-need, need-n)
		if err != nil {
			return nil, fmt.Errorf("segment: read footer: %w", err)
		}
		tail = append(head, tail...)
	}
	f, err := ParseFooter(tail)
	if err != nil {
		return nil, err
	}
	if f.DataSize != size-need {
		return nil, fmt.Errorf("%w: footer says %d data bytes, object has %d", ErrCorrupt, f.DataSize, size-need)
	}
	return &Reader{src: src, size: size, footer: f}, nil
}

// readRange calls src.ReadRange and checks the length of the result.
func readRange(ctx context.Context, src RangeReader, off, length int64) ([]byte, error) {
	b, err := src.ReadRange(ctx, off, length)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != length {
		return nil, fmt.Errorf("%w: read %d bytes at %d, want %d", ErrTruncated, len(b), off, length)
	}
	return b, nil
}

// Footer returns the object's footer. The caller must not modify it.
func (r *Reader) Footer() *Footer { return r.footer }

// Size returns the object's size in bytes.
func (r *Reader) Size() int64 { return r.size }

// ReadChunk returns whole record batches of the given partition, starting with
// the batch that holds fromOffset and continuing with the following batches
// while their total size stays within maxBytes. The first batch is returned even
// if it alone exceeds maxBytes, so a consumer always makes progress. It reads
// only within the chunk: from the sparse index entry at or before fromOffset to
// at most maxBytes past the next index entry, plus the rest of an oversized
// first batch. Every returned batch is validated with [ParseBatchHeader].
//
// It returns an error wrapping [ErrNotFound] if the object has no chunk for the
// partition and [ErrOffsetOutOfRange] if fromOffset is outside the chunk.
func (r *Reader) ReadChunk(ctx context.Context, topicID string, partition int32, fromOffset, maxBytes int64) ([]byte, error) {
	return r.ReadChunkTo(ctx, topicID, partition, fromOffset, maxBytes, -1)
}

// ReadChunkTo is ReadChunk that reads nothing at or past byte until of the
// chunk (counted from the chunk's start; negative: the chunk's end): the
// end of a segment entry that is a part of the chunk, as compaction
// writes them, so that a read of one entry does not fetch the next one's
// bytes.
func (r *Reader) ReadChunkTo(ctx context.Context, topicID string, partition int32, fromOffset, maxBytes, until int64) ([]byte, error) {
	c, ok := r.footer.Find(topicID, partition)
	if !ok {
		return nil, fmt.Errorf("%w: %s/%d", ErrNotFound, topicID, partition)
	}
	if until < 0 || until > c.Length {
		until = c.Length
	}
	i, ok := c.locate(fromOffset)
	if !ok {
		return nil, fmt.Errorf("%w: %s/%d: offset %d not in [%d, %d]",
			ErrOffsetOutOfRange, topicID, partition, fromOffset, c.FirstOffset, c.LastOffset)
	}
	entry := c.Index[i]
	nextPos := until
	if i+1 < len(c.Index) {
		nextPos = min(c.Index[i+1].Position, until)
	}
	maxBytes = min(max(maxBytes, 0), until)
	cur := chunkCursor{
		src:   r.src,
		base:  c.Position + entry.Position,
		limit: c.Position + until,
	}
	if err := cur.ensure(ctx, int(min(nextPos+maxBytes, until)-entry.Position)); err != nil {
		return nil, err
	}

	// Skip to the batch that holds fromOffset.
	pos, want := 0, entry.Offset
	var h BatchHeader
	for {
		var err error
		h, err = cur.batch(ctx, pos)
		if err != nil {
			return nil, fmt.Errorf("%s/%d: %w", topicID, partition, err)
		}
		if h.BaseOffset != want {
			return nil, fmt.Errorf("%w: %s/%d: batch at chunk byte %d has base offset %d, want %d",
				ErrCorrupt, topicID, partition, entry.Position+int64(pos), h.BaseOffset, want)
		}
		if h.LastOffset() >= fromOffset {
			break
		}
		want = h.LastOffset() + 1
		pos += h.Size()
	}

	// Add following batches that are already read and fit in maxBytes.
	start, end := pos, pos+h.Size()
	for int64(end-start) < maxBytes && end < len(cur.buf) {
		next, err := ParseBatchHeader(cur.buf[end:])
		if errors.Is(err, ErrTruncated) {
			break // cut by the read; left for the next ReadChunk
		}
		if err != nil {
			return nil, fmt.Errorf("%s/%d: batch at byte %d: %w", topicID, partition, cur.base+int64(end), err)
		}
		if int64(end+next.Size()-start) > maxBytes {
			break
		}
		if next.BaseOffset != h.LastOffset()+1 {
			return nil, fmt.Errorf("%w: %s/%d: batch base offset %d after last offset %d",
				ErrCorrupt, topicID, partition, next.BaseOffset, h.LastOffset())
		}
		h = next
		end += next.Size()
	}
	return cur.buf[start:end], nil
}

// chunkCursor holds bytes read from a chunk, starting at object position base,
// and reads more on demand, never past limit.
type chunkCursor struct {
	src   RangeReader
	base  int64
	limit int64
	buf   []byte
}

// ensure makes buf hold at least n bytes, reading what is missing.
func (c *chunkCursor) ensure(ctx context.Context, n int) error {
	if n <= len(c.buf) {
		return nil
	}
	off := c.base + int64(len(c.buf))
	if c.base+int64(n) > c.limit {
		return fmt.Errorf("%w: batch runs past the chunk end at byte %d", ErrCorrupt, c.limit)
	}
	more, err := readRange(ctx, c.src, off, int64(n-len(c.buf)))
	if err != nil {
		return fmt.Errorf("segment: read chunk: %w", err)
	}
	if c.buf == nil {
		c.buf = more
	} else {
		c.buf = append(c.buf, more...)
	}
	return nil
}

// batch reads and validates the batch at pos.
func (c *chunkCursor) batch(ctx context.Context, pos int) (BatchHeader, error) {
	if err := c.ensure(ctx, pos+BatchHeaderSize); err != nil {
		return BatchHeader{}, err
	}
	// Read the rest of a batch that extends past what was read so far; an
	// impossible length is left for ParseBatchHeader to report.
	length := int32(binary.BigEndian.Uint32(c.buf[pos+posBatchLength:]))
	if length >= BatchHeaderSize-batchOverhead && length <= MaxBatchBytes-batchOverhead {
		if err := c.ensure(ctx, pos+batchOverhead+int(length)); err != nil {
			return BatchHeader{}, err
		}
	}
	h, err := ParseBatchHeader(c.buf[pos:])
	if err != nil {
		return BatchHeader{}, fmt.Errorf("batch at byte %d: %w", c.base+int64(pos), err)
	}
	return h, nil
}
