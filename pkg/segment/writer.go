package segment

import (
	"fmt"
	"slices"
)

// DefaultIndexInterval is the default number of chunk bytes between two entries
// of a chunk's sparse offset index.
const DefaultIndexInterval = 64 << 10

// WriterOptions configure a [Writer].
type WriterOptions struct {
	// IndexInterval is the number of chunk bytes after which the next batch gets
	// a sparse index entry. The first batch of a chunk always gets one. A smaller
	// interval makes reads start closer to the wanted offset and the footer
	// larger. Zero or less means DefaultIndexInterval (64 KiB).
	IndexInterval int
}

// Writer builds one segment object at a time from the batches of many
// partitions. Use [Writer.Add] for each partition's batches, [Writer.Finish] to
// get the object, and [Writer.Reset] to reuse the Writer and its buffers for the
// next object. A Writer is not safe for concurrent use.
type Writer struct {
	opts     WriterOptions
	chunks   []*chunkBuilder // in order of first Add; reused after Reset
	n        int             // chunks in use
	byKey    map[chunkKey]*chunkBuilder
	size     int // chunk bytes added so far
	scratch  []BatchHeader
	obj      []byte
	finished bool
}

// chunkBuilder accumulates one partition's chunk.
type chunkBuilder struct {
	info        ChunkInfo
	buf         []byte
	lastIndexed int // chunk position of the last index entry
}

// NewWriter returns a Writer with the given options.
func NewWriter(opts WriterOptions) *Writer {
	if opts.IndexInterval <= 0 {
		opts.IndexInterval = DefaultIndexInterval
	}
	return &Writer{opts: opts, byKey: make(map[chunkKey]*chunkBuilder)}
}

// Reset discards everything added and makes the Writer ready for a new object.
// Its buffers are kept, so bytes returned by an earlier Finish are overwritten
// by the next one.
func (w *Writer) Reset() {
	for _, c := range w.chunks[:w.n] {
		c.buf = c.buf[:0]
		c.info = ChunkInfo{Index: c.info.Index[:0]}
		c.lastIndexed = 0
	}
	w.n = 0
	w.size = 0
	clear(w.byKey)
	w.finished = false
}

// Size returns the number of chunk bytes added since the last Reset. A broker
// compares it with its flush size.
func (w *Writer) Size() int { return w.size }

// Add appends batches to the chunk of the given partition. Each argument holds
// one or more whole record batches back to back, with offsets already assigned.
// Add validates every batch with [ParseBatchHeader] and checks that offsets are
// contiguous: each batch's base offset must follow the last offset of the
// partition's previous batch, across calls too. Several calls for the same
// partition, in any order with other partitions, build one chunk. On error
// nothing is added. Add retains no reference to batches.
func (w *Writer) Add(topicID string, partition int32, batches ...[]byte) error {
	if w.finished {
		return fmt.Errorf("%w: Add after Finish without Reset", ErrInvalid)
	}
	if len(topicID) == 0 || len(topicID) > MaxTopicIDLen {
		return fmt.Errorf("%w: topic id of %d bytes", ErrInvalid, len(topicID))
	}
	if partition < 0 {
		return fmt.Errorf("%w: partition %d", ErrInvalid, partition)
	}
	key := chunkKey{topicID, partition}
	c := w.byKey[key]

	// Validate everything before changing anything.
	hs := w.scratch[:0]
	next := int64(-1)
	if c != nil {
		next = c.info.LastOffset + 1
	}
	for i, b := range batches {
		for pos := 0; pos < len(b); {
			h, err := ParseBatchHeader(b[pos:])
			if err != nil {
				return fmt.Errorf("%s/%d: argument %d, batch at byte %d: %w", topicID, partition, i, pos, err)
			}
			if next >= 0 && h.BaseOffset != next {
				return fmt.Errorf("%w: %s/%d: batch base offset %d, want %d", ErrNotContiguous, topicID, partition, h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			hs = append(hs, h)
			pos += h.Size()
		}
	}
	w.scratch = hs
	if len(hs) == 0 {
		return nil
	}

	if c == nil {
		c = w.newChunk(key)
	}
	for _, b := range batches {
		pos := 0
		for len(hs) > 0 && pos < len(b) {
			h := hs[0]
			hs = hs[1:]
			c.add(h, b[pos:pos+h.Size()], w.opts.IndexInterval)
			pos += h.Size()
			w.size += h.Size()
		}
	}
	return nil
}

func (w *Writer) newChunk(key chunkKey) *chunkBuilder {
	if w.n == len(w.chunks) {
		w.chunks = append(w.chunks, &chunkBuilder{})
	}
	c := w.chunks[w.n]
	w.n++
	c.info.TopicID, c.info.Partition = key.topicID, key.partition
	w.byKey[key] = c
	return c
}

// add appends one validated batch to the chunk and updates its summary.
func (c *chunkBuilder) add(h BatchHeader, batch []byte, interval int) {
	pos := len(c.buf)
	minTS := min(h.FirstTimestamp, h.MaxTimestamp)
	switch {
	case pos == 0:
		c.info.FirstOffset = h.BaseOffset
		c.info.MinTimestamp, c.info.MaxTimestamp = minTS, h.MaxTimestamp
		c.info.Index = append(c.info.Index[:0], IndexEntry{Offset: h.BaseOffset, MaxTimestamp: h.MaxTimestamp})
	case pos-c.lastIndexed >= interval:
		c.info.Index = append(c.info.Index, IndexEntry{Offset: h.BaseOffset, Position: int64(pos), MaxTimestamp: h.MaxTimestamp})
		c.lastIndexed = pos
	default:
		last := &c.info.Index[len(c.info.Index)-1]
		last.MaxTimestamp = max(last.MaxTimestamp, h.MaxTimestamp)
	}
	c.info.LastOffset = h.LastOffset()
	c.info.RecordCount += int64(h.RecordCount)
	c.info.MinTimestamp = min(c.info.MinTimestamp, minTS)
	c.info.MaxTimestamp = max(c.info.MaxTimestamp, h.MaxTimestamp)
	c.buf = append(c.buf, batch...)
}

// Finish lays out the chunks sorted by topic id and partition, appends the
// footer and the trailer, and returns the object and its footer. The object
// aliases the Writer's buffer and stays valid until the next Reset; the Footer
// is newly allocated. After Finish, Add fails until Reset. Finish with no
// batches added returns a valid object with no chunks.
func (w *Writer) Finish() ([]byte, *Footer, error) {
	if w.finished {
		return nil, nil, fmt.Errorf("%w: Finish called twice without Reset", ErrInvalid)
	}
	chunks := w.chunks[:w.n]
	slices.SortFunc(chunks, func(a, b *chunkBuilder) int {
		return compareKeys(chunkKey{a.info.TopicID, a.info.Partition}, chunkKey{b.info.TopicID, b.info.Partition})
	})
	f := &Footer{DataSize: int64(w.size), Chunks: make([]ChunkInfo, len(chunks))}
	obj := slices.Grow(w.obj[:0], w.size+TrailerSize+64*(len(chunks)+1))
	for i, c := range chunks {
		info := c.info
		info.Position = int64(len(obj))
		info.Length = int64(len(c.buf))
		info.Index = slices.Clone(c.info.Index)
		f.Chunks[i] = info
		obj = append(obj, c.buf...)
	}
	start := len(obj)
	obj = appendFooter(obj, f)
	footerLen := len(obj) - start
	if footerLen > MaxFooterBytes {
		return nil, nil, fmt.Errorf("%w: footer of %d bytes exceeds %d", ErrTooLarge, footerLen, MaxFooterBytes)
	}
	obj = appendTrailer(obj, Trailer{
		FooterLength: uint32(footerLen),
		FooterCRC:    crc32c(obj[start:]),
		Version:      FormatVersion,
	})
	w.obj = obj
	w.finished = true
	return obj, f, nil
}
