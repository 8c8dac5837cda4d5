package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
)

// metrics are the cache's Prometheus collectors.
type metrics struct {
	hits, misses, evictions prometheus.Counter
	bytes                   prometheus.Gauge
	// classReads is strata_cache_reads_total by [class][outcome].
	classReads [numClasses][3]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := metric.New(reg, "cache")
	m := &metrics{
		hits:      f.Counter("hits_total", "Block reads served from the cache."),
		misses:    f.Counter("misses_total", "Block reads that went to object storage (merged misses count once per caller)."),
		evictions: f.Counter("evictions_total", "Blocks evicted to stay within the size bound."),
		bytes:     f.Gauge("bytes", "Bytes held in cached blocks."),
	}
	reads := f.CounterVec("reads_total", "Block reads by class (hot: tail readers, warm: warming ahead of them, cold: old data) and result (hit, joined: waited for another read's load, load).", "class", "result")
	for class := range m.classReads {
		for out, result := range []string{"hit", "joined", "load"} {
			m.classReads[class][out] = reads.WithLabelValues(Class(class).String(), result)
		}
	}
	return m
}
