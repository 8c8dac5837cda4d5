package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/objstore"
)

// TestWritePace pins that a Put under WithWritePace sends the object
// through the pace a piece at a time, each piece before it is sent: every
// byte is paced, no piece is larger than 256 KiB, and a pace that ends the
// context part way fails the Put and stores nothing.
func TestWritePace(t *testing.T) {
	stores := map[string]func(t *testing.T) objstore.Store{
		"fs": func(t *testing.T) objstore.Store { return newFS(t) },
		"s3": func(t *testing.T) objstore.Store {
			m := testenv.SharedMinIO(t)
			return newS3(t, s3Config(m.Endpoint, newBucket(t, m)))
		},
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), (1<<20+17)/16)
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			var (
				mu     sync.Mutex
				pieces []int64
			)
			pace := func(_ context.Context, n int64) error {
				mu.Lock()
				defer mu.Unlock()
				pieces = append(pieces, n)
				return nil
			}
			if err := s.Put(objstore.WithWritePace(t.Context(), pace), "paced", data); err != nil {
				t.Fatal(err)
			}
			var sum int64
			for _, n := range pieces {
				if n <= 0 || n > 256<<10 {
					t.Errorf("paced a piece of %d bytes, want 1..%d", n, 256<<10)
				}
				sum += n
			}
			if sum != int64(len(data)) {
				t.Errorf("paced %d bytes in %d pieces, want %d", sum, len(pieces), len(data))
			}
			got, err := s.Get(t.Context(), "paced", 0, -1)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(data))
			}

			// The context ends while the second piece waits: nothing is stored.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			calls := 0
			stop := func(ctx context.Context, _ int64) error {
				if calls++; calls == 2 {
					cancel()
					return ctx.Err()
				}
				return nil
			}
			err = s.Put(objstore.WithWritePace(ctx, stop), "cut", data)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put cut off by its pace: err %v, want context.Canceled", err)
			}
			if _, err := s.Get(t.Context(), "cut", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("Get of a Put cut off part way: err %v, want ErrNotFound", err)
			}
		})
	}
}
