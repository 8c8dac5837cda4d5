package lifecycle

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// metrics are the lifecycle's Prometheus collectors, namespace strata,
// subsystem lifecycle.
type metrics struct {
	passSeconds                      *prometheus.HistogramVec
	retentionEntries, retentionBytes prometheus.Counter
	compactions                      *prometheus.CounterVec
	compactedEntries, compactedBytes prometheus.Counter
	gcMarked, gcDeleted              prometheus.Counter
	gcDeletedBytes                   prometheus.Counter
	compactRate                      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "lifecycle")
	return &metrics{
		passSeconds: f.HistogramVec("pass_seconds", "Duration of lifecycle passes by pass (retention, compact, gc).",
			prometheus.ExponentialBuckets(0.001, 4, 10), "pass"),
		retentionEntries: f.Counter("retention_entries_total", "Segment entries dropped by retention."),
		retentionBytes:   f.Counter("retention_bytes_total", "Chunk bytes dropped by retention."),
		compactions:      f.CounterVec("compactions_total", "Compaction tasks by result (ok, conflict, error).", "result"),
		compactedEntries: f.Counter("compacted_entries_total", "Segment entries replaced by compaction."),
		compactedBytes:   f.Counter("compacted_bytes_total", "Chunk bytes rewritten by compaction."),
		gcMarked:         f.Counter("gc_marked_total", "Objects found unreferenced and marked."),
		gcDeleted:        f.Counter("gc_deleted_total", "Objects deleted by garbage collection."),
		gcDeletedBytes:   f.Counter("gc_deleted_bytes_total", "Bytes of objects deleted by garbage collection."),
		compactRate: f.Gauge("compact_throttle_bytes_per_second",
			"Compaction's throttle on reads, and apart on writes: the configured rate, raised while compaction is behind (0: no limit)."),
	}
}

func (m *metrics) observePass(pass string, start time.Time) {
	m.passSeconds.WithLabelValues(pass).Observe(time.Since(start).Seconds())
}
