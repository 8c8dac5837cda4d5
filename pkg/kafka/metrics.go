package kafka

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the Kafka front end's Prometheus collectors.
type metrics struct {
	requests       *prometheus.CounterVec   // api, result ("ok" or "closed")
	duration       *prometheus.HistogramVec // api
	conns          prometheus.Gauge
	protocolErrors prometheus.Counter
	rejected       *prometheus.CounterVec // limit
	fetchWaiting   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "strata", "kafka"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Kafka requests served, by API and result: ok (answered, possibly with error codes inside) or closed (a protocol error closed the connection).",
		}, []string{"api", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from decoding a Kafka request to its response being ready, by API (long-polls included).",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 18), // 0.25ms to ~33s
		}, []string{"api"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "connections",
			Help: "Open Kafka client connections.",
		}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "protocol_errors_total",
			Help: "Connections closed because of a malformed, oversized, unsupported or unauthenticated request.",
		}),
		fetchWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "fetches_waiting",
			Help: "Kafka fetches waiting for data (MinBytes not reached before MaxWaitMillis).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "limit_rejections_total",
			Help: "Kafka requests and connections refused by a hostile-input limit, by limit.",
		}, []string{"limit"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.conns, m.protocolErrors, m.rejected, m.fetchWaiting)
	}
	return m
}

// observe counts one served request.
func (m *metrics) observe(key kmsg.Key, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "closed"
	}
	name := key.Name()
	m.requests.WithLabelValues(name, result).Inc()
	m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
}
