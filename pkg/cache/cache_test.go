package cache_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/pkg/cache"
)

// object is an in-memory object with a loader that counts its calls.
type object struct {
	data  []byte
	loads atomic.Int64
}

func newObject(n int) *object {
	o := &object{data: make([]byte, n)}
	for i := range o.data {
		o.data[i] = byte(i * 7)
	}
	return o
}

func (o *object) load(_ context.Context, off, length int64) ([]byte, error) {
	o.loads.Add(1)
	return bytes.Clone(o.data[off : off+length]), nil
}

func newCache(t *testing.T, maxBytes, blockSize int64) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Config{MaxBytes: maxBytes, BlockSize: blockSize})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadRange(t *testing.T) {
	const size = 1000 // blocks of 100: the last one is full, too
	tests := []struct {
		name        string
		off, length int64
		wantLoads   int64
	}{
		{"whole object", 0, size, 10},
		{"one block", 100, 100, 1},
		{"inside one block", 130, 40, 1},
		{"across two blocks", 150, 100, 2},
		{"across many blocks", 99, 802, 10},
		{"last byte", 999, 1, 1},
		{"empty at end", size, 0, 0},
		{"empty in middle", 500, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, 1<<20, 100)
			o := newObject(size)
			got, err := c.ReadRange(context.Background(), "obj", size, tt.off, tt.length, o.load)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, o.data[tt.off:tt.off+tt.length]) {
				t.Fatalf("bytes differ")
			}
			if o.loads.Load() != tt.wantLoads {
				t.Fatalf("%d loads, want %d", o.loads.Load(), tt.wantLoads)
			}
			// A second read is served from the cache.
			if _, err := c.ReadRange(context.Background(), "obj", size, tt.off, tt.length, o.load); err != nil {
				t.Fatal(err)
			}
			if o.loads.Load() != tt.wantLoads {
				t.Fatalf("second read loaded again: %d loads", o.loads.Load())
			}
		})
	}
}

func TestReadRangeShortLastBlock(t *testing.T) {
	c := newCache(t, 1<<20, 64)
	o := newObject(100) // blocks of 64 and 36 bytes
	got, err := c.ReadRange(context.Background(), "obj", 100, 60, 40, o.load)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, o.data[60:]) {
		t.Fatal("bytes differ")
	}
	if s := c.Stats(); s.Bytes != 100 || s.Blocks != 2 {
		t.Fatalf("stats %+v, want 100 bytes in 2 blocks", s)
	}
}

func TestInvalidRange(t *testing.T) {
	c := newCache(t, 1<<20, 64)
	o := newObject(100)
	for _, r := range [][2]int64{{-1, 1}, {0, -1}, {101, 0}, {50, 51}, {0, 101}} {
		if _, err := c.ReadRange(context.Background(), "obj", 100, r[0], r[1], o.load); !errors.Is(err, cache.ErrInvalidRange) {
			t.Errorf("ReadRange(%d, %d) = %v, want ErrInvalidRange", r[0], r[1], err)
		}
	}
	if o.loads.Load() != 0 {
		t.Fatal("an invalid range reached storage")
	}
}

// TestBoundedBytes reads more than the cache holds: it keeps within its
// bound by evicting the least recently used blocks.
func TestBoundedBytes(t *testing.T) {
	c := newCache(t, 400, 100)
	o := newObject(1000)
	ctx := context.Background()
	if _, err := c.ReadRange(ctx, "obj", 1000, 0, 1000, o.load); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Bytes != 400 || s.Blocks != 4 || s.Evictions != 6 {
		t.Fatalf("stats %+v, want 400 bytes, 4 blocks, 6 evictions", s)
	}
	// Blocks 6..9 are cached; block 0 was evicted.
	before := o.loads.Load()
	if _, err := c.ReadRange(ctx, "obj", 1000, 600, 400, o.load); err != nil {
		t.Fatal(err)
	}
	if o.loads.Load() != before {
		t.Fatal("recent blocks were not cached")
	}
	if _, err := c.ReadRange(ctx, "obj", 1000, 0, 1, o.load); err != nil {
		t.Fatal(err)
	}
	if o.loads.Load() != before+1 {
		t.Fatal("evicted block was not loaded again")
	}
	if s := c.Stats(); s.Bytes > 400 {
		t.Fatalf("cache holds %d bytes, bound is 400", s.Bytes)
	}
}

// TestConcurrentMissesLoadOnce has many readers miss the same block at once:
// storage sees one read.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	const readers = 32
	c := newCache(t, 1<<20, 100)
	o := newObject(100)
	release := make(chan struct{})
	load := func(ctx context.Context, off, length int64) ([]byte, error) {
		<-release
		return o.load(ctx, off, length)
	}
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.ReadRange(context.Background(), "obj", 100, 0, 100, load)
			if err == nil && !bytes.Equal(b, o.data) {
				err = errors.New("bytes differ")
			}
			errs <- err
		}()
	}
	// Release the load once every reader has missed.
	deadline := time.Now().Add(30 * time.Second)
	for c.Stats().Misses < readers {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d readers missed", c.Stats().Misses, readers)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := o.loads.Load(); n != 1 {
		t.Fatalf("%d loads for one block, want 1", n)
	}
}

// TestCallerGivesUp cancels the only reader while its load is in flight:
// the reader gets its context's error at once, and the load still fills the
// cache for the next reader.
func TestCallerGivesUp(t *testing.T) {
	c := newCache(t, 1<<20, 100)
	o := newObject(100)
	started, release := make(chan struct{}), make(chan struct{})
	load := func(ctx context.Context, off, length int64) ([]byte, error) {
		close(started)
		<-release
		return o.load(ctx, off, length)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.ReadRange(ctx, "obj", 100, 0, 100, load)
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read = %v, want context.Canceled", err)
	}
	close(release)
	// The next reader is served without another load once the first lands.
	if _, err := c.ReadRange(context.Background(), "obj", 100, 0, 100, o.load); err != nil {
		t.Fatal(err)
	}
	if n := o.loads.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

func TestLoadErrors(t *testing.T) {
	c := newCache(t, 1<<20, 100)
	boom := errors.New("storage down")
	fail := func(context.Context, int64, int64) ([]byte, error) { return nil, boom }
	if _, err := c.ReadRange(context.Background(), "obj", 100, 0, 10, fail); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the loader's error", err)
	}
	short := func(context.Context, int64, int64) ([]byte, error) { return make([]byte, 3), nil }
	if _, err := c.ReadRange(context.Background(), "obj", 100, 0, 10, short); err == nil {
		t.Fatal("short read accepted")
	}
	if s := c.Stats(); s.Blocks != 0 {
		t.Fatalf("failed loads were cached: %+v", s)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg cache.Config
		ok  bool
	}{
		{cache.Config{}, true},
		{cache.Config{MaxBytes: 10, BlockSize: 20}, false},
		{cache.Config{MaxBytes: -1}, false},
		{cache.Config{BlockSize: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.cfg, err, tt.ok)
		}
	}
}
