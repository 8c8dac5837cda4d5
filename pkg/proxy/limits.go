package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/metric"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// Defaults of Limits.
const (
	// DefaultMaxRequestBytes bounds one request message.
	DefaultMaxRequestBytes = 32 << 20
	// DefaultMaxBatchBytes bounds one record batch of a produce.
	DefaultMaxBatchBytes = 16 << 20
	// DefaultMaxBatchesPerRequest bounds the record batches of one produce.
	DefaultMaxBatchesPerRequest = 4096
	// DefaultMaxTopicsPerRequest bounds the topics named by one request
	// (group heartbeats, offset commits, offset fetches and resets).
	DefaultMaxTopicsPerRequest = 1000
	// DefaultMaxTopics bounds the topics of the cluster; CreateTopic beyond
	// it fails.
	DefaultMaxTopics = 10000
	// DefaultMaxPartitionsPerTopic bounds a topic's partition count, at
	// creation and when partitions are added.
	DefaultMaxPartitionsPerTopic = 10000
	// DefaultMaxConnsPerClient bounds the open connections of one client
	// host.
	DefaultMaxConnsPerClient = 1000
)

// Limits bound what one client can make the proxy do. Each zero field
// takes its default; -1 turns a limit off. Records' own sizes are bounded
// per topic by the topic's max message bytes, which brokers enforce.
type Limits struct {
	// MaxRequestBytes bounds one request message; larger ones are refused
	// (RESOURCE_EXHAUSTED) before they are parsed. Default
	// DefaultMaxRequestBytes; at most rpc.MaxMessageBytes.
	MaxRequestBytes int `json:"maxRequestBytes,omitempty"`
	// MaxBatchBytes bounds one record batch of a produce. Default
	// DefaultMaxBatchBytes.
	MaxBatchBytes int `json:"maxBatchBytes,omitempty"`
	// MaxBatchesPerRequest bounds the record batches of one produce.
	// Default DefaultMaxBatchesPerRequest.
	MaxBatchesPerRequest int `json:"maxBatchesPerRequest,omitempty"`
	// MaxHeadersPerRecord bounds each record's header count. Checking it
	// decompresses every produced batch at the proxy, so it is off unless
	// set (> 0).
	MaxHeadersPerRecord int `json:"maxHeadersPerRecord,omitempty"`
	// MaxTopicsPerRequest bounds the topics one request names. Default
	// DefaultMaxTopicsPerRequest.
	MaxTopicsPerRequest int `json:"maxTopicsPerRequest,omitempty"`
	// MaxTopics bounds the number of topics; creating one more fails.
	// Default DefaultMaxTopics.
	MaxTopics int `json:"maxTopics,omitempty"`
	// MaxPartitionsPerTopic bounds a topic's partitions, at creation and
	// when partitions are added. Default
	// DefaultMaxPartitionsPerTopic.
	MaxPartitionsPerTopic int `json:"maxPartitionsPerTopic,omitempty"`
	// MaxConnsPerClient bounds the open connections from one client host
	// (IP address); further connections are closed at once. Default
	// DefaultMaxConnsPerClient.
	MaxConnsPerClient int `json:"maxConnsPerClient,omitempty"`
}

func (l *Limits) setDefaults() {
	def := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	def(&l.MaxRequestBytes, DefaultMaxRequestBytes)
	def(&l.MaxBatchBytes, DefaultMaxBatchBytes)
	def(&l.MaxBatchesPerRequest, DefaultMaxBatchesPerRequest)
	def(&l.MaxTopicsPerRequest, DefaultMaxTopicsPerRequest)
	def(&l.MaxTopics, DefaultMaxTopics)
	def(&l.MaxPartitionsPerTopic, DefaultMaxPartitionsPerTopic)
	def(&l.MaxConnsPerClient, DefaultMaxConnsPerClient)
}

// Validate reports limits below -1 or a request limit above what gRPC
// carries.
func (l Limits) Validate() error {
	for _, v := range []int{l.MaxRequestBytes, l.MaxBatchBytes, l.MaxBatchesPerRequest, l.MaxHeadersPerRecord,
		l.MaxTopicsPerRequest, l.MaxTopics, l.MaxPartitionsPerTopic, l.MaxConnsPerClient} {
		if v < -1 {
			return fmt.Errorf("limits: %d is below -1 (off)", v)
		}
	}
	if l.MaxRequestBytes > rpc.MaxMessageBytes {
		return fmt.Errorf("limits: max request bytes %d exceeds %d", l.MaxRequestBytes, rpc.MaxMessageBytes)
	}
	return nil
}

// on reports whether limit v is set.
func on(v int) bool { return v > 0 }

type limitMetrics struct {
	rejected *prometheus.CounterVec // by limit
}

func newLimitMetrics(reg prometheus.Registerer) *limitMetrics {
	f := metric.New(reg, "proxy")
	return &limitMetrics{rejected: f.CounterVec("limit_rejections_total", "Requests and connections refused by a hostile-input limit, by limit.", "limit")}
}

// limiter enforces Limits on the public API's requests.
type limiter struct {
	l       Limits
	metrics *limitMetrics
	// topicCount returns the number of topics now.
	topicCount func() int
}

func (lm *limiter) reject(limit, format string, args ...any) error {
	lm.metrics.rejected.WithLabelValues(limit).Inc()
	return apierr.Errorf(apierr.ErrInvalidRequest, "%s", fmt.Sprintf(format, args...))
}

// interceptor checks each request of the public API against the limits
// before its handler runs.
func (lm *limiter) interceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := lm.check(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// check applies the limits to one request.
func (lm *limiter) check(req any) error {
	l := lm.l
	topics := 0
	switch r := req.(type) {
	case *stratav1.ProduceRequest:
		return lm.checkBatches(r.GetBatches())
	case *stratav1.CreateTopicRequest:
		if on(l.MaxPartitionsPerTopic) && int(r.GetPartitions()) > l.MaxPartitionsPerTopic {
			return lm.reject("partitions", "topic %q asks for %d partitions; at most %d", r.GetName(), r.GetPartitions(), l.MaxPartitionsPerTopic)
		}
		if on(l.MaxTopics) && lm.topicCount != nil && lm.topicCount() >= l.MaxTopics {
			return lm.reject("topics", "the cluster has %d topics, the most allowed", l.MaxTopics)
		}
		return nil
	case *stratav1.AlterTopicRequest:
		if on(l.MaxPartitionsPerTopic) && int(r.GetPartitions()) > l.MaxPartitionsPerTopic {
			return lm.reject("partitions", "topic %q asks for %d partitions; at most %d", r.GetName(), r.GetPartitions(), l.MaxPartitionsPerTopic)
		}
		return nil
	case *stratav1.GroupHeartbeatRequest:
		topics = len(r.GetTopics()) + len(r.GetOwned())
	case *stratav1.CommitOffsetsRequest:
		topics = len(r.GetTopics())
	case *stratav1.FetchOffsetsRequest:
		topics = len(r.GetTopics())
	case *stratav1.ResetOffsetsRequest:
		topics = len(r.GetTopics())
	}
	if on(l.MaxTopicsPerRequest) && topics > l.MaxTopicsPerRequest {
		return lm.reject("topics_per_request", "request names %d topics; at most %d", topics, l.MaxTopicsPerRequest)
	}
	return nil
}

// checkBatches walks a produce's record batches (validating each header
// and CRC) and applies the batch limits.
func (lm *limiter) checkBatches(b []byte) error {
	l := lm.l
	n := 0
	for pos := 0; pos < len(b); n++ {
		if on(l.MaxBatchesPerRequest) && n >= l.MaxBatchesPerRequest {
			return lm.reject("batches", "produce carries more than %d record batches", l.MaxBatchesPerRequest)
		}
		h, err := segment.ParseBatchHeader(b[pos:])
		if err != nil {
			if errors.Is(err, segment.ErrTooLarge) {
				return apierr.Errorf(apierr.ErrRecordTooLarge, "batch at byte %d: %v", pos, err)
			}
			return apierr.Errorf(apierr.ErrCorruptBatch, "batch at byte %d: %v", pos, err)
		}
		if on(l.MaxBatchBytes) && h.Size() > l.MaxBatchBytes {
			lm.metrics.rejected.WithLabelValues("batch_bytes").Inc()
			return apierr.Errorf(apierr.ErrRecordTooLarge, "record batch at byte %d has %d bytes; at most %d", pos, h.Size(), l.MaxBatchBytes)
		}
		if on(l.MaxHeadersPerRecord) {
			recs, err := segment.DecodeRecords(b[pos : pos+h.Size()])
			if err != nil {
				return apierr.Errorf(apierr.ErrCorruptBatch, "batch at byte %d: %v", pos, err)
			}
			for _, r := range recs {
				if len(r.Headers) > l.MaxHeadersPerRecord {
					return lm.reject("headers", "a record has %d headers; at most %d", len(r.Headers), l.MaxHeadersPerRecord)
				}
			}
		}
		pos += h.Size()
	}
	return nil
}
