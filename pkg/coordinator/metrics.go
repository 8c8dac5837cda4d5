package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-mq/strata/internal/metric"
	"github.com/strata-mq/strata/pkg/apierr"
)

// metrics are the coordinator's Prometheus collectors.
type metrics struct {
	isLeader    prometheus.Gauge
	elections   prometheus.Counter
	assignments prometheus.Counter
	unassigned  prometheus.Gauge
	evictions   prometheus.Counter
	unreachable prometheus.Gauge
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
	f := metric.New(reg, "coordinator")
	return &metrics{
		isLeader:    f.Gauge("is_leader", "1 while this coordinator is the elected leader, else 0."),
		elections:   f.Counter("leader_elections_total", "Times this coordinator was elected leader."),
		assignments: f.Counter("assignments_total", "Partitions given to a broker by placement (each raises the partition's epoch)."),
		unassigned:  f.Gauge("unassigned_partitions", "Partitions left without a live owner after the last placement pass (0 when not leader)."),
		evictions:   f.Counter("broker_evictions_total", "Brokers evicted before their lease ran out because their address refused connections (a killed process)."),
		unreachable: f.Gauge("unreachable_brokers", "Registered brokers that placement passes over: evicted because their address refused connections, not reached by the leader since."),
		admin:       f.CounterVec("admin_requests_total", "Admin calls by method and result (OK or the error reason, e.g. NOT_LEADER).", "method", "result"),

		groupExpired:           f.Counter("group_sessions_expired_total", "Consumer group members removed because their session timed out."),
		groupRebalanceTimeouts: f.Counter("group_rebalance_timeouts_total", "Consumer group members removed because they kept a revoked partition past the rebalance timeout."),
		groupCommits:           f.Counter("group_commits_total", "Offset commit requests written to etcd (each in as few transactions as possible)."),
		groupCommitOffsets:     f.Counter("group_committed_offsets_total", "Partition offsets written by commit and reset requests."),
		// Set by runLag while leading.
		groupLag: f.GaugeVec("group_lag", "Records a consumer group has yet to consume, per partition: high watermark minus the committed offset (from the log start without one). Set by the leader every LagInterval.", "group", "topic", "partition"),
	}
}

// observeAdmin counts one admin call by its result, apierr.Label.
func (m *metrics) observeAdmin(method string, err error) {
	m.admin.WithLabelValues(method, apierr.Label(err)).Inc()
}
