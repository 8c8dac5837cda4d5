package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	inflight   prometheus.Gauge
	owned      prometheus.Gauge
	// duplicates counts produce requests answered from the idempotent
	// producer state instead of being written again.
	duplicates prometheus.Counter
	// outOfOrder counts idempotent requests refused because the request
	// before them in sequence did not arrive within gapWait.
	outOfOrder prometheus.Counter
	// handoffs counts partitions handed off by ReleasePartitions, and
	// handoffPause the time each hand-off refused produces.
	handoffs     prometheus.Counter
	handoffPause prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "strata", "broker"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_requests_total",
			Help: "Produce requests answered, by result.",
		}, []string{"result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_records_total",
			Help: "Records in answered produce requests, by result.",
		}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_bytes_total",
			Help: "Batch bytes in answered produce requests, by result.",
		}, []string{"result"}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "flushes_total",
			Help: "Flushes (segment objects) finished, by result.",
		}, []string{"result"}),
		produceTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_duration_seconds",
			Help:    "Time from a produce request's arrival to its answer (acks wait for the flush's PUT and commit).",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 18), // 0.25ms to ~33s
		}),
		flushBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "flush_bytes",
			Help:    "Size of flushed segment objects.",
			Buckets: prometheus.ExponentialBuckets(1<<10, 4, 10), // 1 KiB .. 256 MiB
		}),
		putTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "flush_put_seconds",
			Help:    "Time to build and PUT a flush's segment object.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "flush_commit_seconds",
			Help:    "Time to commit a flush's segment entries to etcd.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "inflight_flushes",
			Help: "Flushes started and not yet committed.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "owned_partitions",
			Help: "Partitions this broker currently owns.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_duplicates_total",
			Help: "Produce requests recognised as retries of committed ones and answered with their original offsets.",
		}),
		outOfOrder: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_out_of_order_total",
			Help: "Idempotent produce requests refused with OUT_OF_ORDER_SEQUENCE: the request before them did not arrive in time.",
		}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "handoffs_total",
			Help: "Partitions handed to another broker (or released) gracefully.",
		}),
		handoffPause: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "handoff_pause_seconds",
			Help:    "Time a graceful hand-off refused produces to the partitions it moved.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.produceTime)
		reg.MustRegister(m.requests, m.records, m.bytes, m.flushes, m.flushBytes,
			m.putTime, m.commitTime, m.inflight, m.owned, m.duplicates, m.outOfOrder, m.handoffs, m.handoffPause)
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
