package objstore

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// Operation results, the values of the "result" label.
const (
	resultOK       = "ok"
	resultNotFound = "not_found" // ErrNotFound
	resultInvalid  = "invalid"   // ErrInvalidKey or ErrInvalidRange
	resultCanceled = "canceled"  // the caller's context ended
	resultError    = "error"     // anything else: the store failed
)

// metrics holds the collectors of one registry.
type metrics struct {
	ops          *prometheus.CounterVec   // op, result
	duration     *prometheus.HistogramVec // op
	bytesRead    prometheus.Counter
	bytesWritten prometheus.Counter
}

// newMetrics returns the collectors registered with reg, or the equal
// ones an earlier Instrument call registered, so that several stores can
// share a registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.Shared(reg, "objstore")
	return &metrics{
		ops: f.CounterVec("operations_total",
			"Object store operations by operation (put, get, delete, list) and result (ok, not_found, invalid, canceled, error).", "op", "result"),
		duration: f.HistogramVec("operation_duration_seconds",
			"Duration of object store operations, retries included; for list, the time spent fetching, not the caller's time between items.",
			prometheus.ExponentialBuckets(0.0005, 2, 16), "op"), // 0.5ms to ~16s
		bytesRead:    f.Counter("read_bytes_total", "Bytes returned by successful gets."),
		bytesWritten: f.Counter("written_bytes_total", "Bytes stored by successful puts."),
	}
}

func (m *metrics) observe(ctx context.Context, op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.ops.WithLabelValues(op, result(ctx, err)).Inc()
}

// result classifies err. An operation counts as canceled only when the
// caller's context ended, not when an attempt timed out inside the store.
func result(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, ErrNotFound):
		return resultNotFound
	case errors.Is(err, ErrInvalidKey), errors.Is(err, ErrInvalidRange):
		return resultInvalid
	case ctx.Err() != nil:
		return resultCanceled
	default:
		return resultError
	}
}

// Instrument returns a Store that passes every call to s and records it in
// Prometheus metrics registered with reg, in namespace "strata" and subsystem
// "objstore":
//
//   - operations_total{op, result}: calls by operation (get, put, delete,
//     delete_many, list) and outcome;
//   - operation_duration_seconds{op}: latency histogram;
//   - read_bytes_total and written_bytes_total: payload bytes.
//
// Several stores may be instrumented with one registry; they share the
// metrics. A nil reg records into metrics that nothing exports. Instrument
// panics if reg holds different collectors under the same names.
func Instrument(s Store, reg prometheus.Registerer) Store {
	return &instrumented{store: s, m: newMetrics(reg)}
}

// instrumented wraps a Store with metrics; it adds no state of its own.
type instrumented struct {
	store Store
	m     *metrics
}

func (i *instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := i.store.Put(ctx, key, data)
	i.m.observe(ctx, "put", start, err)
	if err == nil {
		i.m.bytesWritten.Add(float64(len(data)))
	}
	return err
}

func (i *instrumented) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	b, err := i.store.Get(ctx, key, off, length)
	i.m.observe(ctx, "get", start, err)
	if err == nil {
		i.m.bytesRead.Add(float64(len(b)))
	}
	return b, err
}

func (i *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.store.Delete(ctx, key)
	i.m.observe(ctx, "delete", start, err)
	return err
}

// DeleteMany records one "delete_many" call; its outcome is ok when every
// key's is.
func (i *instrumented) DeleteMany(ctx context.Context, keys []string) []error {
	start := time.Now()
	errs := i.store.DeleteMany(ctx, keys)
	i.m.observe(ctx, "delete_many", start, errors.Join(errs...))
	return errs
}

// List records one operation per listing, when it ends or the caller stops.
func (i *instrumented) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		start := time.Now()
		var (
			caller  time.Duration // spent in yield, not in the store
			lastErr error
		)
		for info, err := range i.store.List(ctx, prefix) {
			if err != nil {
				lastErr = err
			}
			t := time.Now()
			more := yield(info, err)
			caller += time.Since(t)
			if !more {
				break
			}
		}
		i.m.observe(ctx, "list", start.Add(caller), lastErr)
	}
}
