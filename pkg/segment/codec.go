package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec identifies the compression codec of a record batch. The values are
// Kafka's: they are stored in the low three bits of a batch's attributes.
type Codec int8

// The codecs a batch can use.
const (
	// CodecNone stores records uncompressed.
	CodecNone Codec = 0
	// CodecGzip compresses records as one gzip stream.
	CodecGzip Codec = 1
	// CodecSnappy compresses records as one Snappy block. Decoding also accepts
	// the xerial framing that Kafka's Java client writes.
	CodecSnappy Codec = 2
	// CodecLZ4 compresses records as one LZ4 frame.
	CodecLZ4 Codec = 3
	// CodecZstd compresses records as one Zstandard frame.
	CodecZstd Codec = 4
)

// String returns the codec's name as [ParseCodec] accepts it.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("Codec(%d)", int8(c))
}

// Valid reports whether c is a codec this package implements.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// ParseCodec returns the codec named s ("none", "gzip", "snappy", "lz4" or
// "zstd", in any case). It returns an error wrapping [ErrUnknownCodec] for any
// other name.
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(s) {
	case "none":
		return CodecNone, nil
	case "gzip":
		return CodecGzip, nil
	case "snappy":
		return CodecSnappy, nil
	case "lz4":
		return CodecLZ4, nil
	case "zstd":
		return CodecZstd, nil
	}
	return CodecNone, fmt.Errorf("%w: %q", ErrUnknownCodec, s)
}

// MarshalText implements [encoding.TextMarshaler], so that a Codec works in
// configuration files and with [flag.TextVar].
func (c Codec) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCodec, int8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseCodec].
func (c *Codec) UnmarshalText(b []byte) error {
	v, err := ParseCodec(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Codec pools. The zstd encoder and decoder are safe for concurrent EncodeAll and
// DecodeAll calls and pool their internal state themselves; gzip and lz4 stream
// writers and readers are pooled here.
var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaders = sync.Pool{New: func() any { return new(gzip.Reader) }}
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// Kafka's clients use 64 KiB blocks; the library default of 4 MiB
		// would cost a 4 MiB buffer per small batch.
		_ = w.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
		return w
	}}
	lz4Readers  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(0),
			// Batches are small; the default 8 MiB window would cost 16 MiB of
			// history per concurrent encoder.
			zstd.WithWindowSize(1<<20))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxBatchBytes))
	})
)

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// compress appends src compressed with c to dst.
func compress(dst []byte, c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		zw := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		w := &appendWriter{b: dst}
		zw.Reset(w)
		if _, err := zw.Write(src); err != nil {
			return dst, fmt.Errorf("segment: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return dst, fmt.Errorf("segment: gzip: %w", err)
		}
		return w.b, nil
	case CodecSnappy:
		n := len(dst)
		dst = growLen(dst, s2.MaxEncodedLen(len(src)))
		enc := s2.EncodeSnappy(dst[n:], src)
		return dst[:n+len(enc)], nil
	case CodecLZ4:
		zw := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(zw)
		w := &appendWriter{b: dst}
		zw.Reset(w)
		if _, err := zw.Write(src); err != nil {
			return dst, fmt.Errorf("segment: lz4: %w", err)
		}
		if err := zw.Close(); err != nil {
			return dst, fmt.Errorf("segment: lz4: %w", err)
		}
		return w.b, nil
	case CodecZstd:
		enc, err := zstdEncoder()
		if err != nil {
			return dst, fmt.Errorf("segment: zstd: %w", err)
		}
		return enc.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("%w: %d", ErrUnknownCodec, int8(c))
}

// growLen extends b by n bytes, reallocating if needed.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// decompress decodes src, compressed with c, into dst[:0], reusing dst's
// capacity. It fails with ErrTooLarge as soon as the output would exceed limit
// bytes, so a small hostile input cannot make it allocate more than that.
func decompress(dst []byte, c Codec, src []byte, limit int) ([]byte, error) {
	dst = dst[:0]
	switch c {
	case CodecNone:
		if len(src) > limit {
			return dst, fmt.Errorf("%w: records exceed %d bytes", ErrTooLarge, limit)
		}
		return append(dst, src...), nil
	case CodecGzip:
		zr := gzipReaders.Get().(*gzip.Reader)
		defer gzipReaders.Put(zr)
		if err := zr.Reset(bytes.NewReader(src)); err != nil {
			return dst, fmt.Errorf("%w: gzip: %w", ErrCorrupt, err)
		}
		return readAllLimit(dst, zr, limit, "gzip")
	case CodecSnappy:
		if bytes.HasPrefix(src, []byte(xerialMagic)) {
			return decodeXerial(dst, src, limit)
		}
		return decodeSnappyBlock(dst, src, limit)
	case CodecLZ4:
		zr := lz4Readers.Get().(*lz4.Reader)
		defer lz4Readers.Put(zr)
		zr.Reset(bytes.NewReader(src))
		return readAllLimit(dst, zr, limit, "lz4")
	case CodecZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return dst, fmt.Errorf("segment: zstd: %w", err)
		}
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return dst, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		if h.HasFCS && h.FrameContentSize > uint64(limit) {
			return dst, fmt.Errorf("%w: zstd frame declares %d bytes, limit %d",
				ErrTooLarge, h.FrameContentSize, limit)
		}
		out, err := dec.DecodeAll(src, dst)
		if err == zstd.ErrDecoderSizeExceeded {
			return dst, fmt.Errorf("%w: zstd: records exceed %d bytes", ErrTooLarge, MaxBatchBytes)
		}
		if err != nil {
			return dst, fmt.Errorf("%w: zstd: %w", ErrCorrupt, err)
		}
		if len(out) > limit {
			return dst, fmt.Errorf("%w: records exceed %d bytes", ErrTooLarge, limit)
		}
		return out, nil
	}
	return dst, fmt.Errorf("%w: %d", ErrUnknownCodec, int8(c))
}

// readAllLimit reads r to its end, appending to dst, and fails once more than
// limit bytes arrive. The buffer grows with the data actually read.
func readAllLimit(dst []byte, r io.Reader, limit int, name string) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			want := max(2*cap(dst), 4096)
			want = min(want, limit+1)
			if want <= len(dst) {
				return dst, fmt.Errorf("%w: %s: records exceed %d bytes", ErrTooLarge, name, limit)
			}
			nb := make([]byte, len(dst), want)
			copy(nb, dst)
			dst = nb
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return dst, fmt.Errorf("%w: %s: records exceed %d bytes", ErrTooLarge, name, limit)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
		}
	}
}

// xerialMagic starts the framing that the xerial snappy-java library (and so
// Kafka's Java client) writes: the magic, a 4-byte version and a 4-byte minimum
// compatible version, then blocks, each a 4-byte big-endian length and a raw
// Snappy block.
const xerialMagic = "\x82SNAPPY\x00"

func decodeXerial(dst, src []byte, limit int) ([]byte, error) {
	const headerLen = len(xerialMagic) + 8
	if len(src) < headerLen {
		return dst, fmt.Errorf("%w: snappy: xerial header", ErrCorrupt)
	}
	src = src[headerLen:]
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, fmt.Errorf("%w: snappy: xerial block length", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst, fmt.Errorf("%w: snappy: xerial block of %d bytes, %d left", ErrCorrupt, n, len(src))
		}
		block := src[:n]
		src = src[n:]
		dlen, err := s2.DecodedLen(block)
		if err != nil {
			return dst, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
		if dlen > limit-len(dst) {
			return dst, fmt.Errorf("%w: snappy: records exceed %d bytes", ErrTooLarge, limit)
		}
		start := len(dst)
		dst = growLen(dst, dlen)
		if _, err := s2.Decode(dst[start:], block); err != nil {
			return dst[:start], fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
		}
	}
	return dst, nil
}

func decodeSnappyBlock(dst, src []byte, limit int) ([]byte, error) {
	dlen, err := s2.DecodedLen(src)
	if err != nil {
		return dst, fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	if dlen > limit {
		return dst, fmt.Errorf("%w: snappy: block declares %d bytes, limit %d", ErrTooLarge, dlen, limit)
	}
	dst = growLen(dst, dlen)
	if _, err := s2.Decode(dst, src); err != nil {
		return dst[:0], fmt.Errorf("%w: snappy: %w", ErrCorrupt, err)
	}
	return dst, nil
}
