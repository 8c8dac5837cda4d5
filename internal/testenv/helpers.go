package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-mq/strata/pkg/meta"
)

// DefaultTestTimeout bounds one test's calls (Context) and waits
// (Eventually): long enough for a busy two-core machine, short enough that
// a hung test fails well inside the suite's timeout.
const DefaultTestTimeout = 60 * time.Second

// Context returns a context that ends after DefaultTestTimeout or when the
// test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTestTimeout)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond, a condition of the test's own process, until it
// holds; it fails the test naming what when timeout (DefaultTestTimeout
// if 0) passes first. Prefer waiting on a channel or a watch where the
// code offers one.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if timeout == 0 {
		timeout = DefaultTestTimeout
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}

// NewMeta returns a metadata store on endpoints under the test's own
// prefix (Prefix), closed when the test ends; mutate adjusts the config
// first (another prefix to share with a second store, timeouts).
func NewMeta(t testing.TB, endpoints []string, mutate ...func(*meta.Config)) *meta.Store {
	t.Helper()
	cfg := meta.Config{Endpoints: endpoints, Prefix: Prefix(t)}
	for _, f := range mutate {
		f(&cfg)
	}
	s, err := meta.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// MetricValue reads a counter or a gauge.
func MetricValue(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return metricValue(&m)
}

// metricValue is a counter's or a gauge's value.
func metricValue(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// Gathered returns the value of a counter or gauge that g gathers: the
// first series of name whose labels include every name/value pair of
// labels (none: the first series), or 0 when there is none.
func Gathered(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return metricValue(m)
			}
		}
	}
	return 0
}

// hasLabels reports whether m carries every name/value pair of labels.
func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}
