package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
	"github.com/strata-mq/strata/pkg/apierr"
)

// metrics are the proxy's Prometheus collectors.
type metrics struct {
	produce        *prometheus.CounterVec // result
	produceRetries prometheus.Counter
	produceBytes   prometheus.Counter
	produceTime    prometheus.Histogram
	// produceInFlight counts the partition produces being routed now.
	produceInFlight prometheus.Gauge
	notOwner        prometheus.Counter
	fetch           *prometheus.CounterVec // result
	fetchBytes      prometheus.Counter
	fetchDuration   prometheus.Histogram
	longPolls       prometheus.Counter
	fetchRecent     prometheus.Counter
	tailDelay       prometheus.Histogram
	listOffsets     *prometheus.CounterVec // result
	admin           *prometheus.CounterVec // method, result
	adminRetries    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "proxy")
	return &metrics{
		produce:         f.CounterVec("produce_requests_total", "Produce requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).", "result"),
		produceRetries:  f.Counter("produce_retries_total", "Produce attempts repeated after a retriable error or while the partition had no live owner."),
		produceBytes:    f.Counter("produce_bytes_total", "Record batch bytes in produce requests received."),
		produceInFlight: f.Gauge("produce_in_flight", "Partition produces (gRPC or Kafka) the proxy is routing now: received, not yet answered."),
		produceTime:     f.Histogram("produce_duration_seconds", "Duration of produce requests, retries at other owners included.", prometheus.ExponentialBuckets(0.00025, 2, 18)), // 0.25ms to ~33s
		notOwner:        f.Counter("produce_not_owner_total", "Produce attempts refused with NOT_OWNER by a broker, or made while the partition had no live owner."),
		fetch:           f.CounterVec("fetch_requests_total", "Fetch requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).", "result"),
		fetchBytes:      f.Counter("fetch_bytes_total", "Record batch bytes returned by fetches."),
		fetchDuration:   f.Histogram("fetch_duration_seconds", "Duration of fetches, long-poll waits included.", prometheus.ExponentialBuckets(0.0005, 2, 17)), // 0.5ms to ~33s
		longPolls:       f.Counter("fetch_long_polls_total", "Fetches at the high watermark that waited for new data."),
		fetchRecent:     f.Counter("fetch_tail_buffer_hits_total", "Fetches answered from batches this proxy forwarded and their owner acknowledged, without reading storage."),
		tailDelay: f.Histogram("fetch_tail_delay_seconds",
			"For long-polls that got data: from the newest returned segment's creation on its broker (before its PUT) to the answer; PUT, commit, watch and warm included.",
			prometheus.ExponentialBuckets(0.0005, 2, 17)), // 0.5ms to ~33s
		listOffsets:  f.CounterVec("list_offsets_requests_total", "ListOffsets requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).", "result"),
		admin:        f.CounterVec("admin_requests_total", "Admin requests forwarded to the coordinator leader, by method and result.", "method", "result"),
		adminRetries: f.Counter("admin_retries_total", "Admin attempts repeated because there was no reachable coordinator leader."),
	}
}

// result is the value of a "result" label: apierr.Label, the one
// vocabulary of every result label (the error's strata.v1.Reason name).
func result(err error) string { return apierr.Label(err) }

// observeProduce counts one produce request that arrived at start with
// the given batch bytes; call it deferred, after the result is counted.
func (m *metrics) observeProduce(start time.Time, bytes int) {
	m.produceBytes.Add(float64(bytes))
	m.produceTime.Observe(time.Since(start).Seconds())
}
