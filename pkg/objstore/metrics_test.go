package objstore_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/objstore/objstoretest"
)

// TestInstrumentConformance pins that the metrics wrapper changes no
// behaviour; all instances share one registry.
func TestInstrumentConformance(t *testing.T) {
	reg := prometheus.NewRegistry()
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return objstore.Instrument(newFS(t), reg) })
}

func TestInstrumentMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := objstore.Instrument(newFS(t), reg)
	ctx := t.Context()
	if err := s.Put(ctx, "a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a", 1, 3); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Get(ctx, "missing", 0, -1)
	_, _ = s.Get(ctx, "a", 10, -1)
	_ = s.Put(ctx, "/bad", nil)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_ = s.Delete(canceled, "a")
	for range s.List(ctx, "") {
	}
	// A second wrapper on the same registry shares the metrics.
	s2 := objstore.Instrument(newFS(t), reg)
	if err := s2.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}

	got := gather(t, reg)
	want := map[string]float64{
		`strata_objstore_operations_total{op="put",result="ok"}`:          1,
		`strata_objstore_operations_total{op="put",result="invalid"}`:     1,
		`strata_objstore_operations_total{op="get",result="ok"}`:          1,
		`strata_objstore_operations_total{op="get",result="not_found"}`:   1,
		`strata_objstore_operations_total{op="get",result="invalid"}`:     1,
		`strata_objstore_operations_total{op="delete",result="canceled"}`: 1,
		`strata_objstore_operations_total{op="delete",result="ok"}`:       1,
		`strata_objstore_operations_total{op="list",result="ok"}`:         1,
		`strata_objstore_written_bytes_total`:                             5,
		`strata_objstore_read_bytes_total`:                                3,
		`strata_objstore_operation_duration_seconds_count{op="get"}`:      3,
		`strata_objstore_operation_duration_seconds_count{op="list"}`:     1,
		`strata_objstore_operation_duration_seconds_count{op="put"}`:      2,
		`strata_objstore_operation_duration_seconds_count{op="delete"}`:   2,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}

// gather flattens the registry into "name{labels}" → value, with histograms
// as their _count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				name += "_count"
			}
			if len(m.GetLabel()) > 0 {
				name += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						name += ","
					}
					name += l.GetName() + `="` + l.GetValue() + `"`
				}
				name += "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[name] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
