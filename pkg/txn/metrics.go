package txn

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// metrics are the coordinator's Prometheus collectors, namespace strata,
// subsystem txn.
type metrics struct {
	ended          *prometheus.CounterVec
	timedOut       prometheus.Counter
	recovered      prometheus.Counter
	markerFailures prometheus.Counter
	conflicts      prometheus.Counter
	expired        prometheus.Counter
	ongoing        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "txn")
	return &metrics{
		ended:          f.CounterVec("ended_total", "Transactions this coordinator completed, by outcome (commit, abort).", "outcome"),
		timedOut:       f.Counter("timeouts_total", "Transactions aborted by Run because they passed their timeout."),
		recovered:      f.Counter("recovered_total", "Decided transactions whose markers Run wrote in place of a proxy that did not finish them."),
		markerFailures: f.Counter("marker_failures_total", "Attempts to write a transaction's markers that failed (the transaction stays decided and is retried)."),
		conflicts:      f.Counter("conflicts_total", "Writes of a transaction's state that lost a compare-and-swap to another writer and were retried."),
		expired:        f.Counter("expired_total", "Transactional ids Run deleted after going unused for the id expiration."),
		ongoing:        f.Gauge("ongoing", "Transactions ongoing or decided, as of Run's last check."),
	}
}
