// Package bench is Strata's load generator, behind `strata bench`: it
// produces, consumes, or does both end to end through the Go SDK, or PUTs
// objects straight into the object store or runs the broker's commit
// transaction against etcd for a baseline, and reports
// throughput and latency percentiles from an HDR-style Histogram, a line
// per second while it runs, a Summary (also as JSON) and PNG plots of
// throughput and latency over time.
package bench

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// MB is the unit of the MB/s figures: 10^6 bytes.
const MB = 1e6

// Point is one interval (normally one second) of a run.
type Point struct {
	// T is the end of the interval, in seconds since the run started.
	T float64 `json:"t"`
	// PerSec is operations (records or objects) per second.
	PerSec float64 `json:"per_sec"`
	// MBPerSec is payload bytes per second / 10^6.
	MBPerSec float64 `json:"mb_per_sec"`
	// P50Ms, P99Ms and MaxMs are latency percentiles of the operations
	// that completed in the interval, in milliseconds (0 with none).
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Errors counts failed operations in the interval.
	Errors int64 `json:"errors"`
}

// Latency holds latency statistics in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summary is the result of one run.
type Summary struct {
	// Kind is the benchmark: produce, consume, e2e, s3 or etcd.
	Kind string `json:"kind"`
	// Unit names what an operation is: "records", "objects" or "commits".
	Unit string `json:"unit"`
	// Config is the run's configuration as given.
	Config any `json:"config"`
	// Seconds is the measured time.
	Seconds float64 `json:"seconds"`
	// Ops and Bytes count successful operations and their payload bytes.
	Ops   int64 `json:"ops"`
	Bytes int64 `json:"bytes"`
	// Errors counts failed operations; FirstError describes the first.
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
	// PerSec and MBPerSec are Ops and Bytes over Seconds.
	PerSec   float64 `json:"per_sec"`
	MBPerSec float64 `json:"mb_per_sec"`
	// Latency describes the latency of successful operations: produce to
	// acknowledgement (produce), produce to consumption (e2e), PUT (s3),
	// commit transaction (etcd), or Poll call (consume).
	Latency Latency `json:"latency"`
	// AckLatency, for e2e, is the produce-to-acknowledgement latency of
	// the same records in the same run: e2e minus it is what the read
	// side adds.
	AckLatency *Latency `json:"ack_latency,omitempty"`
	// Series has one Point per second.
	Series []Point `json:"series"`
}

// WriteText writes s as a few human-readable lines.
func (s *Summary) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w,
		"%s: %d %s (%s) in %.1fs: %.0f %s/s, %.1f MB/s, %d errors\n"+
			"latency ms: p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
		s.Kind, s.Ops, s.Unit, byteSize(s.Bytes), s.Seconds, s.PerSec, s.Unit, s.MBPerSec, s.Errors,
		s.Latency.P50, s.Latency.P95, s.Latency.P99, s.Latency.P999, s.Latency.Max, s.Latency.Mean)
	if a := s.AckLatency; err == nil && a != nil {
		_, err = fmt.Fprintf(w, "acknowledged ms: p50 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f\n",
			a.P50, a.P95, a.P99, a.P999, a.Max, a.Mean)
	}
	if err == nil && s.FirstError != "" {
		_, err = fmt.Fprintf(w, "first error: %s\n", s.FirstError)
	}
	return err
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// recorder collects the outcomes of operations from any goroutine, and a
// Point per interval.
type recorder struct {
	kind, unit string
	progress   io.Writer // nil: no progress lines

	mu         sync.Mutex // guards the fields below
	start      time.Time
	last       time.Time // end of the previous interval
	all, cur   Histogram // whole run, current interval
	acks       Histogram // e2e: produce to acknowledgement, whole run
	ops, bytes int64
	errs       int64
	firstErr   error
	curOps     int64
	curBytes   int64
	curErrs    int64
	series     []Point
}

func newRecorder(kind, unit string, progress io.Writer) *recorder {
	now := time.Now()
	return &recorder{kind: kind, unit: unit, progress: progress, start: now, last: now}
}

// restart sets the start of the measured time to now and forgets what was
// recorded before (a warm-up).
func (r *recorder) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start, r.last = time.Now(), time.Now()
	r.all.Reset()
	r.cur.Reset()
	r.acks.Reset()
	r.ops, r.bytes, r.errs, r.curOps, r.curBytes, r.curErrs = 0, 0, 0, 0, 0, 0
	r.firstErr, r.series = nil, nil
}

// done records one successful operation of n payload bytes and the given
// latency; a negative latency is not recorded in the histogram.
func (r *recorder) done(lat time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops++
	r.curOps++
	r.bytes += int64(n)
	r.curBytes += int64(n)
	if lat >= 0 {
		r.all.Record(int64(lat))
		r.cur.Record(int64(lat))
	}
}

// batch records n successful operations of nbytes in total with no latency.
func (r *recorder) batch(n, nbytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops += int64(n)
	r.curOps += int64(n)
	r.bytes += int64(nbytes)
	r.curBytes += int64(nbytes)
}

// latency records one latency without counting an operation.
func (r *recorder) latency(lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all.Record(int64(lat))
	r.cur.Record(int64(lat))
}

// acked records, for e2e, one record's produce-to-acknowledgement
// latency.
func (r *recorder) acked(lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks.Record(int64(lat))
}

// failed records one failed operation.
func (r *recorder) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	r.curErrs++
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// errCount is the number of failed operations so far.
func (r *recorder) errCount() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

// tick closes the current interval at now, appends its Point and writes
// the progress line.
func (r *recorder) tick(now time.Time) {
	r.mu.Lock()
	d := now.Sub(r.last).Seconds()
	if d <= 0 || d < minInterval && len(r.series) > 0 {
		r.mu.Unlock()
		return
	}
	p := Point{
		T:        now.Sub(r.start).Seconds(),
		PerSec:   float64(r.curOps) / d,
		MBPerSec: float64(r.curBytes) / d / MB,
		P50Ms:    ms(r.cur.Quantile(0.5)),
		P99Ms:    ms(r.cur.Quantile(0.99)),
		MaxMs:    ms(r.cur.Max()),
		Errors:   r.curErrs,
	}
	r.series = append(r.series, p)
	r.cur.Reset()
	r.curOps, r.curBytes, r.curErrs, r.last = 0, 0, 0, now
	r.mu.Unlock()
	if r.progress != nil {
		fmt.Fprintf(r.progress, "%6.1fs %10.0f %s/s %8.1f MB/s  p50 %7.2fms  p99 %7.2fms  max %7.2fms  errors %d\n",
			p.T, p.PerSec, r.unit, p.MBPerSec, p.P50Ms, p.P99Ms, p.MaxMs, p.Errors)
	}
}

// minInterval is the shortest interval that gets a Point, unless it is
// the only one: the remainder of a run after its last full second is too
// short for a rate.
const minInterval = 0.25

// startTicker calls tick every interval until the returned function is
// first called; that function returns once the last tick is done, so no
// progress line is written after it. Calling it again does nothing.
func (r *recorder) startTicker(interval time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				r.tick(now)
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// latencyOf summarises h (nanoseconds) in milliseconds.
func latencyOf(h *Histogram) Latency {
	return Latency{
		P50: ms(h.Quantile(0.5)), P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()), Mean: h.Mean() / 1e6,
	}
}

// summary closes the run at end and returns its Summary.
func (r *recorder) summary(end time.Time, cfg any) *Summary {
	r.tick(end)
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := end.Sub(r.start).Seconds()
	s := &Summary{
		Kind: r.kind, Unit: r.unit, Config: cfg, Seconds: secs,
		Ops: r.ops, Bytes: r.bytes, Errors: r.errs,
		Latency: latencyOf(&r.all),
		Series:  r.series,
	}
	if r.acks.Count() > 0 {
		a := latencyOf(&r.acks)
		s.AckLatency = &a
	}
	if secs > 0 {
		s.PerSec = float64(r.ops) / secs
		s.MBPerSec = float64(r.bytes) / secs / MB
	}
	if r.firstErr != nil {
		s.FirstError = r.firstErr.Error()
	}
	return s
}
