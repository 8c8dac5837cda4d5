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
	// Buffer, when its capacity holds the object, is the memory Finish
	// builds the object in instead of a new allocation (which Go zeroes
	// before Finish overwrites it). Its contents are overwritten; the
	// Writer keeps it across Reset.
	Buffer []byte
}

// Writer builds one segment object at a time from the batches of many
// partitions. Use [Writer.Add] (or [Writer.AddVerified]) for each partition's
// batches, [Writer.Finish] to get the object, and [Writer.Reset] to reuse the
// Writer and its buffers for the next object. Finish copies every batch
// once, straight into the object, whose size it knows before it starts. A
// Writer is not safe for concurrent use.
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

// chunkBuilder accumulates one partition's chunk: its batches, in
// order, and their summary. Finish copies the batches into the object.
type chunkBuilder struct {
	info        ChunkInfo
	batches     [][]byte
	size        int // bytes in batches
	lastIndexed int // chunk position of the last index entry
}

// NewWriter returns a Writer with the given options.
func NewWriter(opts WriterOptions) *Writer {
	if opts.IndexInterval <= 0 {
		opts.IndexInterval = DefaultIndexInterval
	}
	return &Writer{opts: opts, byKey: make(map[chunkKey]*chunkBuilder), obj: opts.Buffer}
}

// Reset discards everything added and makes the Writer ready for a new object.
// Its buffers are kept, so bytes returned by an earlier Finish are overwritten
// by the next one.
func (w *Writer) Reset() {
	for _, c := range w.chunks[:w.n] {
		clear(c.batches)
		c.batches, c.size = c.batches[:0], 0
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
// nothing is added. Add retains no reference to batches: it keeps a copy.
func (w *Writer) Add(topicID string, partition int32, batches ...[]byte) error {
	return w.add(topicID, partition, batches, true)
}

// AddVerified is Add for batches the caller has validated already, CRCs
// included (with [SplitBatches] or [ParseBatchHeader]), and will not change
// until Finish returns: it checks every other thing Add checks but not the
// CRCs, and it keeps references to batches instead of a copy, so Finish
// copies each byte once. A broker, which validates every produce request
// when it arrives, builds its flushes with it.
func (w *Writer) AddVerified(topicID string, partition int32, batches ...[]byte) error {
	return w.add(topicID, partition, batches, false)
}

func (w *Writer) add(topicID string, partition int32, batches [][]byte, copyAndCheck bool) error {
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
	next := int64(-1)
	if c != nil {
		next = c.info.LastOffset + 1
	}
	// Validate everything before changing anything.
	hs, size, err := w.validate(topicID, partition, batches, next, copyAndCheck)
	if err != nil || len(hs) == 0 {
		return err
	}
	if c == nil {
		c = w.newChunk(key)
	}
	var owned []byte
	if copyAndCheck {
		owned = make([]byte, 0, size)
	}
	for _, b := range batches {
		pos := 0
		for len(hs) > 0 && pos < len(b) {
			h := hs[0]
			hs = hs[1:]
			batch := b[pos : pos+h.Size()]
			if copyAndCheck {
				owned = append(owned, batch...)
				batch = owned[len(owned)-len(batch):]
			}
			c.add(h, batch, w.opts.IndexInterval)
			pos += h.Size()
			w.size += h.Size()
		}
	}
	return nil
}

// validate parses the headers of batches (checking CRCs if crc), checks
// that offsets are contiguous from next (-1: any start) and returns the
// headers, in w.scratch, and their total size.
func (w *Writer) validate(topicID string, partition int32, batches [][]byte, next int64, crc bool) ([]BatchHeader, int, error) {
	hs, size := w.scratch[:0], 0
	for i, b := range batches {
		for pos := 0; pos < len(b); {
			h, err := parseBatchHeader(b[pos:], crc)
			if err != nil {
				return nil, 0, fmt.Errorf("%s/%d: argument %d, batch at byte %d: %w", topicID, partition, i, pos, err)
			}
			if next >= 0 && h.BaseOffset != next {
				return nil, 0, fmt.Errorf("%w: %s/%d: batch base offset %d, want %d", ErrNotContiguous, topicID, partition, h.BaseOffset, next)
			}
			next = h.LastOffset() + 1
			hs = append(hs, h)
			pos += h.Size()
			size += h.Size()
		}
	}
	w.scratch = hs
	return hs, size, nil
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
	pos := c.size
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
	c.batches = append(c.batches, batch)
	c.size += len(batch)
}

// Finish lays out the chunks sorted by topic id and partition, appends the
// footer and the trailer, and returns the object and its footer. The object
// aliases the Writer's buffer (WriterOptions.Buffer, if it was large enough)
// and stays valid until the next Reset; the Footer is newly allocated. Finish
// drops the Writer's references to the batches it copied. After Finish, Add
// fails until Reset. Finish with no batches added returns a valid object with
// no chunks.
func (w *Writer) Finish() ([]byte, *Footer, error) {
	if w.finished {
		return nil, nil, fmt.Errorf("%w: Finish called twice without Reset", ErrInvalid)
	}
	chunks := w.chunks[:w.n]
	slices.SortFunc(chunks, func(a, b *chunkBuilder) int {
		return compareKeys(chunkKey{a.info.TopicID, a.info.Partition}, chunkKey{b.info.TopicID, b.info.Partition})
	})
	// Lay out the chunks and encode the footer first, so that the object
	// is allocated once at its final size and never grows (a copy).
	f := &Footer{DataSize: int64(w.size), Chunks: make([]ChunkInfo, len(chunks))}
	pos := int64(0)
	for i, c := range chunks {
		info := c.info
		info.Position, info.Length = pos, int64(c.size)
		info.Index = slices.Clone(c.info.Index)
		f.Chunks[i] = info
		pos += int64(c.size)
	}
	footer := appendFooter(nil, f)
	if len(footer) > MaxFooterBytes {
		return nil, nil, fmt.Errorf("%w: footer of %d bytes exceeds %d", ErrTooLarge, len(footer), MaxFooterBytes)
	}
	total := w.size + len(footer) + TrailerSize
	obj := w.obj[:0]
	if cap(obj) < total {
		obj = make([]byte, 0, total)
	}
	for _, c := range chunks {
		for _, b := range c.batches {
			obj = append(obj, b...)
		}
		clear(c.batches) // let the batches' memory go
	}
	obj = append(obj, footer...)
	obj = appendTrailer(obj, Trailer{
		FooterLength: uint32(len(footer)),
		FooterCRC:    crc32c(footer),
		Version:      FormatVersion,
	})
	w.obj = obj
	w.finished = true
	return obj, f, nil
}
