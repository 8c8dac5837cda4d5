package meta

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	commitTxns       *prometheus.CounterVec
	commitSeconds    prometheus.Histogram
	commitPartitions prometheus.Counter
	fenced           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commitTxns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "meta", Name: "commit_txns_total",
			Help: "Fencing-commit transactions by result (ok, rejected, error).",
		}, []string{"result"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "meta", Name: "commit_seconds",
			Help:    "Latency of one fencing-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		commitPartitions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "meta", Name: "commit_partitions_total",
			Help: "Partition commits sent in fencing-commit transactions.",
		}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "meta", Name: "commit_fenced_total",
			Help: "Partition commits rejected because the owner or epoch had changed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.commitTxns, m.commitSeconds, m.commitPartitions, m.fenced)
	}
	return m
}

func (m *metrics) observeCommit(start time.Time, partitions int, err error, ok bool) {
	m.commitSeconds.Observe(time.Since(start).Seconds())
	m.commitPartitions.Add(float64(partitions))
	switch {
	case err != nil:
		m.commitTxns.WithLabelValues("error").Inc()
	case ok:
		m.commitTxns.WithLabelValues("ok").Inc()
	default:
		m.commitTxns.WithLabelValues("rejected").Inc()
	}
}
