package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

type metrics struct {
	authn        *prometheus.CounterVec // by method and result
	denied       *prometheus.CounterVec // by operation and resource type
	throttled    *prometheus.CounterVec // responses delayed, by kind
	throttleSecs *prometheus.CounterVec // seconds of delay, by kind
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "auth")
	m := &metrics{
		authn:        f.CounterVec("authentications_total", "Authentications of calls, by method (token, cert, scram, anonymous, none) and result (ok, failed).", "method", "result"),
		denied:       f.CounterVec("denied_total", "Calls refused with PERMISSION_DENIED, by operation and resource type.", "operation", "resource_type"),
		throttled:    f.Sub("quota").CounterVec("throttled_total", "Responses delayed because their principal was over its byte quota, by kind (produce, fetch).", "kind"),
		throttleSecs: f.Sub("quota").CounterVec("throttle_seconds_total", "Total delay added to responses of principals over their byte quota, by kind.", "kind"),
	}
	return m
}
