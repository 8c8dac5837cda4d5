package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
	"github.com/strata-mq/strata/pkg/apierr"
)

// metrics are the broker's Prometheus collectors.
type metrics struct {
	// produceTime is the time from a produce request's arrival to its
	// answer, every result included.
	produceTime prometheus.Histogram
	// Produce requests, records and bytes by result ("ok" or an error
	// reason such as "not_owner").
	requests, records, bytes *prometheus.CounterVec
	// flushes counts flushes by result (apierr.Label): OK, the reason of
	// a failed PUT, or of the first partition whose commit failed.
	flushes    *prometheus.CounterVec
	flushBytes prometheus.Histogram
	putTime    prometheus.Histogram
	commitTime prometheus.Histogram
	grouped    prometheus.Histogram
	inflight   prometheus.Gauge
	owned      prometheus.Gauge
	// duplicates counts produce requests answered from the idempotent
	// producer state instead of being written again.
	duplicates prometheus.Counter
	// lookupBytes counts the bytes read from object storage to answer a
	// retry of a committed request older than the ones the partition
	// remembers (findCommitted): the only reads a broker makes.
	lookupBytes prometheus.Counter
	// outOfOrder counts idempotent requests refused because the request
	// before them in sequence did not arrive within gapWait.
	outOfOrder prometheus.Counter
	// handoffs counts partitions handed off by ReleasePartitions, and
	// handoffPause the time each hand-off refused produces.
	handoffs     prometheus.Counter
	handoffPause prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "broker")
	m := &metrics{
		requests:     f.CounterVec("produce_requests_total", "Produce requests answered, by result.", "result"),
		records:      f.CounterVec("produce_records_total", "Records in answered produce requests, by result.", "result"),
		bytes:        f.CounterVec("produce_bytes_total", "Batch bytes in answered produce requests, by result.", "result"),
		flushes:      f.CounterVec("flushes_total", "Flushes (segment objects) finished, by result.", "result"),
		produceTime:  f.Histogram("produce_duration_seconds", "Time from a produce request's arrival to its answer (acks wait for the flush's PUT and commit).", prometheus.ExponentialBuckets(0.00025, 2, 18)), // 0.25ms to ~33s
		flushBytes:   f.Histogram("flush_bytes", "Size of flushed segment objects.", prometheus.ExponentialBuckets(1<<10, 4, 10)),                                                                               // 1 KiB .. 256 MiB
		putTime:      f.Histogram("flush_put_seconds", "Time to build and PUT a flush's segment object.", prometheus.ExponentialBuckets(0.0005, 2, 16)),
		commitTime:   f.Histogram("flush_commit_seconds", "Time to commit the segment entries of a flush, or of the flushes committed together, to etcd.", prometheus.ExponentialBuckets(0.0005, 2, 16)),
		grouped:      f.Histogram("flushes_per_commit", "Flushes committed together in one commit (group commit).", prometheus.LinearBuckets(1, 1, 8)),
		inflight:     f.Gauge("inflight_flushes", "Flushes started and not yet committed."),
		owned:        f.Gauge("owned_partitions", "Partitions this broker currently owns."),
		duplicates:   f.Counter("produce_duplicates_total", "Produce requests recognised as retries of committed ones and answered with their original offsets."),
		lookupBytes:  f.Counter("retry_lookup_bytes_total", "Bytes read from object storage to find the offsets of a retried request older than the ones its partition remembers (the only reads a broker makes)."),
		outOfOrder:   f.Counter("produce_out_of_order_total", "Idempotent produce requests refused with OUT_OF_ORDER_SEQUENCE: the request before them did not arrive in time."),
		handoffs:     f.Counter("handoffs_total", "Partitions handed to another broker (or released) gracefully."),
		handoffPause: f.Histogram("handoff_pause_seconds", "Time a graceful hand-off refused produces to the partitions it moved.", prometheus.ExponentialBuckets(0.0005, 2, 16)),
	}
	return m
}

// observeProduce counts one answered produce request.
func (m *metrics) observeProduce(err error, records, bytes int) {
	r := resultLabel(err)
	m.requests.WithLabelValues(r).Inc()
	m.records.WithLabelValues(r).Add(float64(records))
	m.bytes.WithLabelValues(r).Add(float64(bytes))
}

// resultLabel names an error's kind for metric labels: apierr.Label, the
// one vocabulary of every result label.
func resultLabel(err error) string { return apierr.Label(err) }

// observeProduceTime records the duration of a produce request that
// arrived at start; call it deferred.
func (m *metrics) observeProduceTime(start time.Time) {
	m.produceTime.Observe(time.Since(start).Seconds())
}
