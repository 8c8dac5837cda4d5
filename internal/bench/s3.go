package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/objstore"
)

// Defaults of S3Config: the broker's flush size and flush concurrency
// (broker.DefaultFlushBytes, broker.DefaultMaxInflightFlushes).
const (
	DefaultObjectBytes = 4 << 20
	DefaultConcurrency = 4
	DefaultS3Prefix    = "bench/"
)

// S3Config configures S3, the raw object-store baseline.
type S3Config struct {
	// ObjectBytes is the size of each PUT.
	ObjectBytes int `json:"object_bytes"`
	// Concurrency is the number of PUTs in flight at once.
	Concurrency int `json:"concurrency"`
	// Duration is the measured time.
	Duration time.Duration `json:"duration"`
	// Prefix is prepended to the keys written; the objects are deleted
	// again unless Keep is set.
	Prefix string `json:"prefix"`
	Keep   bool   `json:"keep"`
}

// Validate checks the settings.
func (c *S3Config) Validate() error {
	switch {
	case c.ObjectBytes < 1 || c.ObjectBytes > 1<<30:
		return fmt.Errorf("bench: object size must be in [1, 1 GiB], got %d", c.ObjectBytes)
	case c.Concurrency < 1 || c.Concurrency > 1024:
		return fmt.Errorf("bench: concurrency must be in [1, 1024], got %d", c.Concurrency)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("bench: duration must be in (0, 24h], got %v", c.Duration)
	case c.Prefix == "":
		return errors.New("bench: empty key prefix")
	}
	return nil
}

// S3 PUTs objects of ObjectBytes into store from Concurrency workers for
// Duration and reports objects per second, MB/s and the PUT latency: what
// the store itself takes at the broker's object size and concurrency.
func S3(ctx context.Context, store objstore.Store, cfg S3Config, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	data := make([]byte, cfg.ObjectBytes)
	_, _ = rand.Read(data)
	run := fmt.Sprintf("%s%d/", cfg.Prefix, time.Now().UnixNano())
	rec := newRecorder("s3", "objects", progress)
	stopTicker := rec.startTicker(time.Second)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu   sync.Mutex
		keys []string // guarded by mu
		wg   sync.WaitGroup
	)
	for w := range cfg.Concurrency {
		wg.Go(func() {
			for i := 0; runCtx.Err() == nil; i++ {
				key := fmt.Sprintf("%sw%03d-%08d", run, w, i)
				t := time.Now()
				err := store.Put(runCtx, key, data)
				switch {
				case err == nil:
					rec.done(time.Since(t), len(data))
					mu.Lock()
					keys = append(keys, key)
					mu.Unlock()
				case runCtx.Err() != nil: // cut off by the end of the run
				default:
					rec.failed(err)
				}
			}
		})
	}
	wg.Wait()
	stopTicker()
	s := rec.summary(time.Now(), cfg)
	if !cfg.Keep {
		dctx, cancel := afterRun(ctx)
		defer cancel()
		if err := deleteAll(dctx, store, keys, cfg.Concurrency); err != nil {
			return s, fmt.Errorf("bench: deleting benchmark objects under %s: %w", run, err)
		}
	}
	return s, nil
}

// deleteAll deletes keys with n workers.
func deleteAll(ctx context.Context, store objstore.Store, keys []string, n int) error {
	ch := make(chan string)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for k := range ch {
				if err := store.Delete(ctx, k); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	return errors.Join(errs...)
}
