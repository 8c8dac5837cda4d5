package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/pkg/apierr"
)

// metrics are the coordinator's Prometheus collectors.
type metrics struct {
	isLeader    prometheus.Gauge
	elections   prometheus.Counter
	assignments prometheus.Counter
	unassigned  prometheus.Gauge
	evictions   prometheus.Counter
	admin       *prometheus.CounterVec

	groupExpired prometheus.Counter
	// groupRebalanceTimeouts counts members removed for keeping a revoked
	// partition past the rebalance timeout.
	groupRebalanceTimeouts prometheus.Counter
	groupCommits           prometheus.Counter
	groupCommitOffsets     prometheus.Counter
	groupLag               *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "is_leader",
			Help: "1 while this coordinator is the elected leader, else 0.",
		}),
		elections: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "leader_elections_total",
			Help: "Times this coordinator was elected leader.",
		}),
		assignments: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "assignments_total",
			Help: "Partitions given to a broker by placement (each raises the partition's epoch).",
		}),
		unassigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "unassigned_partitions",
			Help: "Partitions left without a live owner after the last placement pass (0 when not leader).",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "broker_evictions_total",
			Help: "Brokers evicted before their lease ran out because their address refused connections (a killed process).",
		}),
		admin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "coordinator", Name: "admin_requests_total",
			Help: "Admin calls by method and result (OK or the error reason, e.g. NOT_LEADER).",
		}, []string{"method", "result"}),
	}
	m.groupExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "coordinator", Name: "group_sessions_expired_total",
		Help: "Consumer group members removed because their session timed out.",
	})
	m.groupRebalanceTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "coordinator", Name: "group_rebalance_timeouts_total",
		Help: "Consumer group members removed because they kept a revoked partition past the rebalance timeout.",
	})
	m.groupCommits = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "coordinator", Name: "group_commits_total",
		Help: "Offset commit requests written to etcd (each in as few transactions as possible).",
	})
	m.groupCommitOffsets = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "strata", Subsystem: "coordinator", Name: "group_committed_offsets_total",
		Help: "Partition offsets written by commit and reset requests.",
	})
	m.groupLag = newLagGauge()
	if reg != nil {
		reg.MustRegister(m.isLeader, m.elections, m.assignments, m.unassigned, m.evictions, m.admin,
			m.groupExpired, m.groupRebalanceTimeouts, m.groupCommits, m.groupCommitOffsets, m.groupLag)
	}
	return m
}

// observeAdmin counts one admin call by its result, apierr.Label.
func (m *metrics) observeAdmin(method string, err error) {
	m.admin.WithLabelValues(method, apierr.Label(err)).Inc()
}
