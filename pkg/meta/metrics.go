package meta

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	commitTxns       *prometheus.CounterVec
	commitSeconds    prometheus.Histogram
	commitPartitions prometheus.Counter
	fenced           prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "meta")
	m := &metrics{
		commitTxns:       f.CounterVec("commit_txns_total", "Fencing-commit transactions by result (ok, rejected, error).", "result"),
		commitSeconds:    f.Histogram("commit_seconds", "Latency of one fencing-commit transaction.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
		commitPartitions: f.Counter("commit_partitions_total", "Partition commits sent in fencing-commit transactions."),
		fenced:           f.Counter("commit_fenced_total", "Partition commits rejected because the owner or epoch had changed."),
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
