// Package metric builds Strata's Prometheus collectors: every one is named
// strata_<subsystem>_<name>, registered on the process's registry when
// there is one (as promauto does), and declared in one line by the package
// that owns it, so a package's metrics.go lists names and help texts rather
// than constructor boilerplate.
package metric

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the first part of every Strata metric name.
const Namespace = "strata"

// Factory makes collectors of one subsystem and registers them.
type Factory struct {
	reg    prometheus.Registerer // nil: collectors stay unregistered
	sub    string
	shared bool // an equal collector registered already is reused
}

// New returns a Factory for subsystem that registers on reg; a nil reg
// leaves the collectors unregistered (tests, embedded use). Registering a
// name twice panics, as MustRegister does.
func New(reg prometheus.Registerer, subsystem string) Factory {
	return Factory{reg: reg, sub: subsystem}
}

// Shared returns a Factory like New's for collectors that several
// instances of one component share, such as the object stores of one
// process: where reg holds an equal collector already (same name, help
// and labels, from an earlier Shared Factory), the constructors return
// that collector instead of a new one. A different collector under the
// same name still panics.
func Shared(reg prometheus.Registerer, subsystem string) Factory {
	return Factory{reg: reg, sub: subsystem, shared: true}
}

// Sub returns a Factory of another subsystem on the same registry.
func (f Factory) Sub(subsystem string) Factory {
	f.sub = subsystem
	return f
}

// Counter registers strata_<sub>_<name>.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return register(f, prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}))
}

// CounterVec registers strata_<sub>_<name> with labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return register(f, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}, labels))
}

// Gauge registers strata_<sub>_<name>.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return register(f, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}))
}

// GaugeVec registers strata_<sub>_<name> with labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return register(f, prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help}, labels))
}

// Histogram registers strata_<sub>_<name> with buckets.
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return register(f, prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help, Buckets: buckets}))
}

// HistogramVec registers strata_<sub>_<name> with buckets and labels.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return register(f, prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: f.sub, Name: name, Help: help, Buckets: buckets}, labels))
}

// register registers c on f's registry, if any, and returns the collector
// to use: c, or for a shared Factory the equal one registered already.
func register[C prometheus.Collector](f Factory, c C) C {
	if f.reg == nil {
		return c
	}
	if !f.shared {
		f.reg.MustRegister(c)
		return c
	}
	err := f.reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Sprintf("metric: registering %s metrics: %v", f.sub, err))
}
