package lifecycle

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
}

func newMetrics(reg prometheus.Registerer) *metrics {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "strata", Subsystem: "lifecycle", Name: name, Help: help}
	}
	m := &metrics{
		passSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "lifecycle", Name: "pass_seconds",
			Help:    "Duration of lifecycle passes by pass (retention, compact, gc).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"pass"}),
		retentionEntries: prometheus.NewCounter(opts("retention_entries_total", "Segment entries dropped by retention.")),
		retentionBytes:   prometheus.NewCounter(opts("retention_bytes_total", "Chunk bytes dropped by retention.")),
		compactions:      prometheus.NewCounterVec(opts("compactions_total", "Compaction tasks by result (ok, conflict, error)."), []string{"result"}),
		compactedEntries: prometheus.NewCounter(opts("compacted_entries_total", "Segment entries replaced by compaction.")),
		compactedBytes:   prometheus.NewCounter(opts("compacted_bytes_total", "Chunk bytes rewritten by compaction.")),
		gcMarked:         prometheus.NewCounter(opts("gc_marked_total", "Objects found unreferenced and marked.")),
		gcDeleted:        prometheus.NewCounter(opts("gc_deleted_total", "Objects deleted by garbage collection.")),
		gcDeletedBytes:   prometheus.NewCounter(opts("gc_deleted_bytes_total", "Bytes of objects deleted by garbage collection.")),
	}
	if reg != nil {
		reg.MustRegister(m.passSeconds, m.retentionEntries, m.retentionBytes, m.compactions,
			m.compactedEntries, m.compactedBytes, m.gcMarked, m.gcDeleted, m.gcDeletedBytes)
	}
	return m
}

func (m *metrics) observePass(pass string, start time.Time) {
	m.passSeconds.WithLabelValues(pass).Observe(time.Since(start).Seconds())
}
