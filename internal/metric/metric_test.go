package metric_test

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// TestNamesAndRegistration: every collector is strata_<sub>_<name> and
// lands on the registry; a nil registry still gives working collectors.
func TestNamesAndRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := metric.New(reg, "broker")
	f.Counter("a_total", "a").Inc()
	f.CounterVec("b_total", "b", "result").WithLabelValues("OK").Inc()
	f.Gauge("c", "c").Set(1)
	f.GaugeVec("d", "d", "x").WithLabelValues("y").Set(1)
	f.Histogram("e_seconds", "e", prometheus.DefBuckets).Observe(1)
	f.Sub("quota").HistogramVec("f_seconds", "f", prometheus.DefBuckets, "kind").WithLabelValues("k").Observe(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	want := []string{"strata_broker_a_total", "strata_broker_b_total", "strata_broker_c", "strata_broker_d", "strata_broker_e_seconds", "strata_quota_f_seconds"}
	if !slices.Equal(names, want) {
		t.Fatalf("registered %v, want %v", names, want)
	}
	metric.New(nil, "x").Counter("n_total", "n").Inc() // unregistered, usable
}
