package kafka

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/internal/metric"
)

// metrics are the Kafka front end's Prometheus collectors.
type metrics struct {
	requests       *prometheus.CounterVec   // api, result ("ok" or "closed")
	duration       *prometheus.HistogramVec // api
	conns          prometheus.Gauge
	protocolErrors prometheus.Counter
	rejected       *prometheus.CounterVec // limit
	fetchWaiting   prometheus.Gauge
	queuedBytes    prometheus.Gauge
	queuedWaits    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "kafka")
	m := &metrics{
		requests:       f.CounterVec("requests_total", "Kafka requests served, by API and result: ok (answered, possibly with error codes inside) or closed (a protocol error closed the connection).", "api", "result"),
		duration:       f.HistogramVec("request_duration_seconds", "Time from decoding a Kafka request to its response being ready, by API (long-polls included).", prometheus.ExponentialBuckets(0.00025, 2, 18), "api"), // 0.25ms to ~33s
		conns:          f.Gauge("connections", "Open Kafka client connections."),
		protocolErrors: f.Counter("protocol_errors_total", "Connections closed because of a malformed, oversized, unsupported or unauthenticated request."),
		fetchWaiting:   f.Gauge("fetches_waiting", "Kafka fetches waiting for data (MinBytes not reached before MaxWaitMillis)."),
		queuedBytes:    f.Gauge("queued_request_bytes", "Bytes of Kafka requests read or being read and not yet answered, over all connections; at most the proxy's -kafka-max-queued-request-bytes."),
		queuedWaits:    f.Counter("queued_request_waits_total", "Kafka requests whose connection waited, the request unread, for room under the proxy's -kafka-max-queued-request-bytes."),
		rejected:       f.CounterVec("limit_rejections_total", "Kafka requests and connections refused by a hostile-input limit, by limit.", "limit"),
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
