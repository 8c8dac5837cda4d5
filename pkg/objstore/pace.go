package objstore

import (
	"bytes"
	"context"
	"io"
)

// PaceFunc blocks until n more bytes may be sent, or until ctx ends (then
// it returns ctx's error).
type PaceFunc func(ctx context.Context, n int64) error

// pacePiece is the most a paced Put sends per PaceFunc call: small enough
// that a rate of a few MiB/s still sends every few tens of milliseconds,
// large enough that the pacing costs nothing beside the bytes.
const pacePiece = 256 << 10

type paceKey struct{}

// WithWritePace returns a context under which Put sends an object's bytes
// no faster than pace lets them go, a piece at a time, instead of as fast
// as the store takes them. Background writers use it: a compacted object
// of tens of MiB sent at once takes the store's disk and CPU from the
// small PUTs that acknowledge produces, for as long as it lasts. A nil
// pace returns ctx unchanged.
func WithWritePace(ctx context.Context, pace PaceFunc) context.Context {
	if pace == nil {
		return ctx
	}
	return context.WithValue(ctx, paceKey{}, pace)
}

// WritePace returns the PaceFunc that WithWritePace put in ctx, or nil. A
// Store outside this package honours it by sending each piece of an
// object's bytes only once it returns.
func WritePace(ctx context.Context) PaceFunc {
	pace, _ := ctx.Value(paceKey{}).(PaceFunc)
	return pace
}

// pacedReader reads data no faster than pace allows. It seeks, so that a
// retried request sends the object again (paced again); it has no other
// way to read, so nothing sends the bytes past the pace.
type pacedReader struct {
	r    *bytes.Reader
	ctx  context.Context
	pace PaceFunc
}

// body returns data as a request body, paced if ctx asks for it.
func body(ctx context.Context, data []byte) io.ReadSeeker {
	r := bytes.NewReader(data)
	if pace := WritePace(ctx); pace != nil {
		return &pacedReader{r: r, ctx: ctx, pace: pace}
	}
	return r
}

// Read reads at most pacePiece bytes, once pace lets them go.
func (r *pacedReader) Read(p []byte) (int, error) {
	n := min(len(p), pacePiece, r.r.Len())
	if n == 0 {
		return r.r.Read(p[:0]) // io.EOF at the end
	}
	if err := r.pace(r.ctx, int64(n)); err != nil {
		return 0, err
	}
	return r.r.Read(p[:n])
}

// Seek implements io.Seeker.
func (r *pacedReader) Seek(offset int64, whence int) (int64, error) {
	return r.r.Seek(offset, whence)
}
