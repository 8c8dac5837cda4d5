// Package objstore owns Strata's access to object storage: the small Store
// interface that brokers write segment objects through and proxies read byte
// ranges through, its two implementations — S3 for any S3-compatible service
// (AWS S3, MinIO) and FS for a local directory (strata dev and fast unit
// tests) — and the Prometheus instrumentation that wraps either.
//
// Both implementations follow the same contract, which the conformance suite
// in package objstoretest checks:
//
//   - Put is atomic: a reader sees the whole new object or the previous state,
//     never a part. Put overwrites an existing object.
//   - Get reads a byte range; see Store.Get for the exact range rules.
//   - Delete of a missing key succeeds; DeleteMany gives each key Delete's
//     outcome, in as few requests as the backend allows.
//   - List yields every object under a prefix in lexical (byte-wise) key
//     order, across as many pages as the backend needs.
//   - Keys are checked by ValidateKey in both implementations, so a key that
//     works on one works on the other.
//
// Errors wrap ErrNotFound, ErrInvalidRange, ErrInvalidKey or the context's
// error with %w; compare them with errors.Is.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors that callers test for with errors.Is.
var (
	// ErrNotFound reports that no object has the key.
	ErrNotFound = errors.New("objstore: object not found")
	// ErrInvalidRange reports a byte range that Get cannot serve: a negative
	// offset, a length below -1, or an offset past the end of the object.
	ErrInvalidRange = errors.New("objstore: invalid range")
	// ErrInvalidKey reports a key or list prefix that ValidateKey rejects.
	ErrInvalidKey = errors.New("objstore: invalid key")
)

// Key limits.
const (
	// MaxKeyLen is the longest key, in bytes. S3 allows 1,024 bytes in
	// all; the rest is room for an S3Config.Prefix, so that every valid key
	// fits in every store.
	MaxKeyLen = 1024 - MaxPrefixLen
	// MaxPrefixLen is the longest S3Config.Prefix, in bytes.
	MaxPrefixLen = 128
	// MaxSegmentLen is the longest '/'-separated key segment, in bytes, so
	// that every key maps to a file name on common filesystems.
	MaxSegmentLen = 255
	// ReservedPrefix starts no key segment: the filesystem store names its
	// temporary files with it.
	ReservedPrefix = ".objstore-tmp-"
)

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	// Key is the object's key, as given to Put.
	Key string
	// Size is the object's length in bytes.
	Size int64
	// LastModified is when the object was last written; S3 reports it to
	// the second.
	LastModified time.Time
}

// Store is a flat namespace of objects that are replaced whole, never edited.
// All methods are safe for concurrent use, and all fail with ErrInvalidKey for
// a key that ValidateKey rejects.
type Store interface {
	// Put stores data under key, replacing any object already there.
	// Readers see either the whole new object or what was there before.
	// When Put returns nil the object is durable.
	// Put keeps no reference to data once it returns nil: the caller may
	// reuse the memory (a broker builds its next object in it).
	Put(ctx context.Context, key string, data []byte) error

	// Get returns length bytes of the object at key, starting at byte off.
	// A length of -1 reads to the end of the object.
	//
	// The range rules are:
	//   - off < 0 or length < -1 fails with ErrInvalidRange;
	//   - off > size fails with ErrInvalidRange;
	//   - off == size, or length == 0 with off <= size, returns an empty slice;
	//   - a range that runs past the end returns the bytes that exist.
	//
	// A missing key fails with ErrNotFound. Argument errors are reported
	// before the object is looked up.
	Get(ctx context.Context, key string, off, length int64) ([]byte, error)

	// Delete removes the object at key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error

	// DeleteMany removes the objects at keys, as Delete does each, in as
	// few requests as the backend allows (S3: up to 1,000 keys each). It
	// returns one error per key, in the order of keys, nil where the
	// object is gone (or was never there).
	DeleteMany(ctx context.Context, keys []string) []error

	// List yields the objects whose keys start with prefix, in lexical key
	// order. An empty prefix lists everything; any other prefix must make a
	// valid key when a character is appended. An error ends the sequence
	// after it is yielded. Objects written or deleted while a listing runs
	// may or may not appear.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]
}

// Object is one key of a Store seen as a random-access byte source. It
// satisfies segment.RangeReader.
type Object struct {
	// Store holds the object.
	Store Store
	// Key names the object.
	Key string
}

// ReadRange returns length bytes of the object starting at off, with the
// range rules of Store.Get.
func (o Object) ReadRange(ctx context.Context, off, length int64) ([]byte, error) {
	return o.Store.Get(ctx, o.Key, off, length)
}

// ValidateKey reports whether key may name an object, wrapping ErrInvalidKey
// when it may not. A valid key:
//
//   - is 1 to MaxKeyLen (896) bytes of valid UTF-8 without control characters
//     (U+0000–U+001F, U+007F), which S3 listings cannot carry in XML;
//   - consists of '/'-separated segments that are not empty (so no leading,
//     trailing or doubled '/'), not "." or "..", at most MaxSegmentLen bytes,
//     and do not start with ReservedPrefix.
func ValidateKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %s: %s", ErrInvalidKey, shortQuote(key), reason)
	}
	return nil
}

// validatePrefix checks a List prefix: empty, or such that prefix+"x" is a
// valid key. It keeps a listing from naming a directory outside the store.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if reason := keyProblem(prefix + "x"); reason != "" {
		return fmt.Errorf("%w: list prefix %s: %s", ErrInvalidKey, shortQuote(prefix), reason)
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return "longer than " + strconv.Itoa(MaxKeyLen) + " bytes"
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return "contains a control character"
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return "has an empty segment (leading, trailing or doubled '/')"
		case seg == "." || seg == "..":
			return "has a '.' or '..' segment"
		case len(seg) > MaxSegmentLen:
			return "has a segment longer than 255 bytes"
		case strings.HasPrefix(seg, ReservedPrefix):
			return "has a segment starting with the reserved " + ReservedPrefix
		}
	}
	return ""
}

// shortQuote quotes s for an error message, cutting very long keys.
func shortQuote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}

// checkRange validates the Get arguments that do not depend on the object.
func checkRange(key string, off, length int64) error {
	if off < 0 || length < -1 {
		return fmt.Errorf("%w: %q: offset %d, length %d", ErrInvalidRange, key, off, length)
	}
	return nil
}

// rangeEnd returns the end of the range that starts at off and spans length
// bytes (-1: to the end) of the object key, which is size bytes long. It fails with
// ErrInvalidRange when off is past the end.
func rangeEnd(key string, off, length, size int64) (int64, error) {
	if off > size {
		return 0, fmt.Errorf("%w: %q: offset %d is past the end of the %d-byte object", ErrInvalidRange, key, off, size)
	}
	if length == -1 || length > size-off {
		return size, nil
	}
	return off + length, nil
}

// notFound reports that key has no object.
func notFound(key string) error {
	return fmt.Errorf("%w: %q", ErrNotFound, key)
}

// opError wraps an error that is not one of the package's sentinels with the
// operation and key it happened to.
func opError(op, key string, err error) error {
	return fmt.Errorf("objstore: %s %q: %w", op, key, err)
}
