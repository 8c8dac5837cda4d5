package cache

import "github.com/prometheus/client_golang/prometheus"

// metrics are the cache's Prometheus collectors.
type metrics struct {
	hits, misses, evictions prometheus.Counter
	bytes                   prometheus.Gauge
	// classReads is strata_cache_reads_total by [class][outcome].
	classReads [numClasses][3]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "cache", Name: "hits_total",
			Help: "Block reads served from the cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "cache", Name: "misses_total",
			Help: "Block reads that went to object storage (merged misses count once per caller).",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "cache", Name: "evictions_total",
			Help: "Blocks evicted to stay within the size bound.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "cache", Name: "bytes",
			Help: "Bytes held in cached blocks.",
		}),
	}
	reads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "cache", Name: "reads_total",
		Help: "Block reads by class (hot: tail readers, warm: warming ahead of them, cold: old data) and result (hit, joined: waited for another read's load, load).",
	}, []string{"class", "result"})
	for class := range m.classReads {
		for out, result := range []string{"hit", "joined", "load"} {
			m.classReads[class][out] = reads.WithLabelValues(Class(class).String(), result)
		}
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.evictions, m.bytes, reads)
	}
	return m
}
