package segment

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them with context;
// match them with [errors.Is]. The exception is an error from a [RangeReader],
// which is passed on wrapped but otherwise as it is.
var (
	// ErrCorrupt reports bytes that are structurally invalid: impossible lengths,
	// counts or deltas, or data that a codec cannot decode.
	ErrCorrupt = errors.New("segment: corrupt data")
	// ErrTruncated reports input that ends before the structure it holds.
	ErrTruncated = errors.New("segment: truncated data")
	// ErrCRC reports a checksum mismatch.
	ErrCRC = errors.New("segment: checksum mismatch")
	// ErrUnknownCodec reports a compression codec id or name that is not known.
	ErrUnknownCodec = errors.New("segment: unknown codec")
	// ErrTooLarge reports a batch, record or footer above this package's limits.
	ErrTooLarge = errors.New("segment: too large")
	// ErrVersion reports a record batch magic or segment format version that this
	// package does not read.
	ErrVersion = errors.New("segment: unsupported format version")
	// ErrMagic reports bytes that do not end with a segment trailer.
	ErrMagic = errors.New("segment: not a segment object")
	// ErrNotContiguous reports a batch whose base offset does not follow the
	// previous batch of its chunk.
	ErrNotContiguous = errors.New("segment: offsets not contiguous")
	// ErrNotFound reports a partition that has no chunk in a segment object.
	ErrNotFound = errors.New("segment: partition not in segment")
	// ErrOffsetOutOfRange reports an offset outside a chunk's offsets.
	ErrOffsetOutOfRange = errors.New("segment: offset out of range")
	// ErrInvalid reports an invalid argument or a call in the wrong state.
	ErrInvalid = errors.New("segment: invalid argument")
)
