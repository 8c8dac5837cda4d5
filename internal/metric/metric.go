// Package metric builds Strata's Prometheus collectors: every one is named
// strata_<subsystem>_<name>, registered on the process's registry when
// there is one (promauto), and declared in one line by the package that
// owns it, so a package's metrics.go lists names and help texts rather
// than constructor boilerplate.
package metric

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Namespace is the first part of every Strata metric name.
const Namespace = "strata"

// Factory makes collectors of one subsystem and registers them.
type Factory struct {
	f   promauto.Factory
	sub string
}

// New returns a Factory for subsystem that registers on reg; a nil reg
// leaves the collectors unregistered (tests, embedded use).
func New(reg prometheus.Registerer, subsystem string) Factory {
	return Factory{f: promauto.With(reg), sub: subsystem}
}

// Sub returns a Factory of another subsystem on the same registry.
func (f Factory) Sub(subsystem string) Factory { return Factory{f: f.f, sub: subsystem} }

// Counter registers strata_<sub>_<name>.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return f.f.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help})
}

// CounterVec registers strata_<sub>_<name> with labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return f.f.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}, labels)
}

// Gauge registers strata_<sub>_<name>.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return f.f.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help})
}

// GaugeVec registers strata_<sub>_<name> with labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return f.f.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}, labels)
}

// Histogram registers strata_<sub>_<name> with buckets.
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return f.f.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help, Buckets: buckets})
}

// HistogramVec registers strata_<sub>_<name> with buckets and labels.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return f.f.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help, Buckets: buckets}, labels)
}
