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

// TestShared: Shared factories on one registry hand out the collector the
// first one registered, so two instances count into one series; New
// panics on the same name, and Shared still panics on a different help.
func TestShared(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := metric.Shared(reg, "objstore").CounterVec("ops_total", "ops", "op")
	b := metric.Shared(reg, "objstore").CounterVec("ops_total", "ops", "op")
	if a != b {
		t.Fatal("second Shared factory made a new collector instead of reusing the registered one")
	}
	metric.Shared(reg, "objstore").Counter("bytes_total", "bytes").Add(1)
	metric.Shared(reg, "objstore").Counter("bytes_total", "bytes").Add(2)
	mustPanic(t, "New registering a name twice", func() { metric.New(reg, "objstore").Counter("bytes_total", "bytes") })
	mustPanic(t, "Shared with a different help", func() { metric.Shared(reg, "objstore").Counter("bytes_total", "other help") })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// ops_total has no series yet; bytes_total has the one shared series.
	if len(mfs) != 1 || mfs[0].GetName() != "strata_objstore_bytes_total" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("registry holds %v, want one series of strata_objstore_bytes_total", mfs)
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Fatalf("shared counter = %v, want 3", got)
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}
