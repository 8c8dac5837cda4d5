package segment

import (
	"encoding/binary"
	"fmt"
	"math"
)

// fieldReader reads the varint-encoded fields of a footer or a record
// batch. Every read checks bounds; the first failure sticks in err, and
// later reads return zero values, so a decoder checks err once after a
// group of reads.
type fieldReader struct {
	b   []byte
	err error
	// where prefixes failure messages ("footer: "), naming the structure
	// being read; empty for records, whose caller names the record.
	where string
}

// fail records the first failure as ErrCorrupt.
func (r *fieldReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+r.where+format, append([]any{ErrCorrupt}, args...)...)
	}
}

// uvarint reads an unsigned varint no larger than max.
func (r *fieldReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint in %s", what)
		return 0
	}
	r.b = r.b[n:]
	if v > max {
		r.fail("%s %d exceeds %d", what, v, max)
		return 0
	}
	return v
}

// varint reads a signed (zigzag) varint.
func (r *fieldReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint in %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint32 reads a signed varint that must fit in an int32.
func (r *fieldReader) varint32(what string) int32 {
	v := r.varint(what)
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("%s %d out of int32 range", what, v)
		return 0
	}
	return int32(v)
}

// bytes reads a length-prefixed byte string; length -1 means nil unless
// nullable is false. The result aliases the input, capped at its length.
func (r *fieldReader) bytes(what string, nullable bool) []byte {
	n := r.varint32(what)
	if r.err != nil {
		return nil
	}
	if n == -1 && nullable {
		return nil
	}
	if n < 0 || int(n) > len(r.b) {
		r.fail("%s length %d with %d bytes left", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
