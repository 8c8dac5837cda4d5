package auth

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	authn        *prometheus.CounterVec // by method and result
	denied       *prometheus.CounterVec // by operation and resource type
	throttled    *prometheus.CounterVec // responses delayed, by kind
	throttleSecs *prometheus.CounterVec // seconds of delay, by kind
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		authn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "auth", Name: "authentications_total",
			Help: "Authentications of calls, by method (token, cert, anonymous, none) and result (ok, failed).",
		}, []string{"method", "result"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "auth", Name: "denied_total",
			Help: "Calls refused with PERMISSION_DENIED, by operation and resource type.",
		}, []string{"operation", "resource_type"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "quota", Name: "throttled_total",
			Help: "Responses delayed because their principal was over its byte quota, by kind (produce, fetch).",
		}, []string{"kind"}),
		throttleSecs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "quota", Name: "throttle_seconds_total",
			Help: "Total delay added to responses of principals over their byte quota, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.authn, m.denied, m.throttled, m.throttleSecs)
	}
	return m
}
