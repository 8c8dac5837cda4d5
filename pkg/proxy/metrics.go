package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/apierr"
)

// metrics are the proxy's Prometheus collectors.
type metrics struct {
	produce        *prometheus.CounterVec // result
	produceRetries prometheus.Counter
	produceBytes   prometheus.Counter
	produceTime    prometheus.Histogram
	notOwner       prometheus.Counter
	fetch          *prometheus.CounterVec // result
	fetchBytes     prometheus.Counter
	fetchDuration  prometheus.Histogram
	longPolls      prometheus.Counter
	tailDelay      prometheus.Histogram
	listOffsets    *prometheus.CounterVec // result
	admin          *prometheus.CounterVec // method, result
	adminRetries   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "strata", "proxy"
	m := &metrics{
		produce: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_requests_total",
			Help: "Produce requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).",
		}, []string{"result"}),
		produceRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_retries_total",
			Help: "Produce attempts repeated after a retriable error or while the partition had no live owner.",
		}),
		produceBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_bytes_total",
			Help: "Record batch bytes in produce requests received.",
		}),
		produceTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_duration_seconds",
			Help:    "Duration of produce requests, retries at other owners included.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 18), // 0.25ms to ~33s
		}),
		notOwner: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "produce_not_owner_total",
			Help: "Produce attempts refused with NOT_OWNER by a broker, or made while the partition had no live owner.",
		}),
		fetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "fetch_requests_total",
			Help: "Fetch requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).",
		}, []string{"result"}),
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "fetch_bytes_total",
			Help: "Record batch bytes returned by fetches.",
		}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "fetch_duration_seconds",
			Help:    "Duration of fetches, long-poll waits included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5ms to ~33s
		}),
		longPolls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "fetch_long_polls_total",
			Help: "Fetches at the high watermark that waited for new data.",
		}),
		tailDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "fetch_tail_delay_seconds",
			Help:    "For long-polls that got data: from the newest returned segment's creation on its broker (before its PUT) to the answer; PUT, commit, watch and warm included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17), // 0.5ms to ~33s
		}),
		listOffsets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "list_offsets_requests_total",
			Help: "ListOffsets requests by result (OK or the error's reason, e.g. NOT_OWNER; apierr.Label).",
		}, []string{"result"}),
		admin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "admin_requests_total",
			Help: "Admin requests forwarded to the coordinator leader, by method and result.",
		}, []string{"method", "result"}),
		adminRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "admin_retries_total",
			Help: "Admin attempts repeated because there was no reachable coordinator leader.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.produce, m.produceRetries, m.produceBytes, m.produceTime, m.notOwner, m.fetch, m.fetchBytes, m.fetchDuration,
			m.longPolls, m.tailDelay, m.listOffsets, m.admin, m.adminRetries)
	}
	return m
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
