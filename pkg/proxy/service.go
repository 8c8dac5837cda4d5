package proxy

import (
	"context"
	"sync"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// service adapts the core to the strata.v1.Strata gRPC service: it converts
// messages and counts results, nothing more. Errors become statuses in the
// pkg/rpc interceptor.
type service struct {
	stratav1.UnimplementedStrataServer
	s *Server
}

func (v *service) Produce(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	return v.produce(ctx, req, nil)
}

// produce serves one produce request, a call of its own or a part of a
// ProduceMany call; check, if not nil, runs first (a part's authorization
// and limits, which interceptors apply to a call of its own).
func (v *service) produce(ctx context.Context, req *stratav1.ProduceRequest, check func() error) (resp *stratav1.ProduceResponse, err error) {
	defer v.s.metrics.observeProduce(time.Now(), len(req.GetBatches()))
	defer func() { v.s.metrics.produce.WithLabelValues(result(err)).Inc() }()
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	if err := refuseTxnBatches(req.GetBatches()); err != nil {
		return nil, err
	}
	if err := v.s.waitReady(ctx); err != nil {
		return nil, err
	}
	r, err := v.s.router.Produce(ctx, req.GetTopic(), req.GetPartition(), req.GetBatches())
	if err != nil {
		return nil, err
	}
	return &stratav1.ProduceResponse{BaseOffset: r.BaseOffset, LastOffset: r.LastOffset}, nil
}

// refuseTxnBatches refuses the batches of Kafka transactions from SDK
// clients. Control batches (end-transaction markers) are written only by
// the transaction coordinator, through the Router; transactional batches
// only through the Kafka front end, which checks each against the
// coordinator — one written here would open a transaction no coordinator
// knows, holding the partition's last stable offset for good. The limits
// have validated the batches: a part that does not split is left to the
// broker to refuse.
func refuseTxnBatches(b []byte) error {
	hs, _ := segment.SplitVerifiedBatches(b)
	for _, h := range hs {
		switch {
		case h.Attributes&segment.AttrControl != 0:
			return apierr.Errorf(apierr.ErrInvalidRequest, "control batches are written only by the transaction coordinator")
		case h.Attributes&segment.AttrTransactional != 0:
			return apierr.Errorf(apierr.ErrInvalidRequest, "transactional batches are accepted only through the Kafka front end")
		}
	}
	return nil
}

// ProduceMany serves each part as a Produce call of its own, all at once:
// authorized for its topic, checked against the limits, routed to its
// owner; the parts' messages to one broker go together (ProduceGather). A
// part that fails does not fail the others; the call itself fails only
// when it is malformed (no parts, or too many).
func (v *service) ProduceMany(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
	parts := req.GetParts()
	if err := rpc.CheckParts(len(parts)); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	allowed := map[string]error{} // by topic, so a denial is logged once
	for _, part := range parts {
		if _, seen := allowed[part.GetTopic()]; !seen {
			allowed[part.GetTopic()] = v.s.guard.Authorize(ctx, p, meta.OpProduce, auth.Topic(part.GetTopic()))
		}
	}
	results := make([]*stratav1.ProducePartResult, len(parts))
	gather := NewProduceGather(len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Go(func() {
			ctx, done := gather.Part(ctx)
			defer done()
			resp, err := v.produce(ctx, part, func() error {
				if err := allowed[part.GetTopic()]; err != nil {
					return err
				}
				return v.s.limits.check(part)
			})
			results[i] = &stratav1.ProducePartResult{Response: resp, Error: apierr.ToPart(err)}
		})
	}
	wg.Wait()
	return &stratav1.ProduceManyResponse{Results: results}, nil
}

func (v *service) Fetch(ctx context.Context, req *stratav1.FetchRequest) (resp *stratav1.FetchResponse, err error) {
	start := time.Now()
	defer func() {
		v.s.metrics.fetch.WithLabelValues(result(err)).Inc()
		v.s.metrics.fetchDuration.Observe(time.Since(start).Seconds())
	}()
	if err := v.s.waitReady(ctx); err != nil {
		return nil, err
	}
	if req.GetMaxWaitMs() < 0 {
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "max_wait_ms %d is negative", req.GetMaxWaitMs())
	}
	if req.GetMinBytes() < 0 {
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "min_bytes %d is negative", req.GetMinBytes())
	}
	r, err := v.s.fetcher.Fetch(ctx, FetchRequest{
		Topic:     req.GetTopic(),
		Partition: req.GetPartition(),
		Offset:    req.GetOffset(),
		MaxBytes:  req.GetMaxBytes(),
		MaxWait:   time.Duration(req.GetMaxWaitMs()) * time.Millisecond,

		ReadCommitted: !req.GetReadUncommitted(),
	})
	if err != nil {
		return nil, err
	}
	batches, err := dropAborted(r.Batches, r.Aborted)
	if err != nil {
		return nil, err
	}
	return &stratav1.FetchResponse{Batches: batches, HighWatermark: r.HighWatermark, LogStartOffset: r.LogStart, LastStableOffset: r.LastStable}, nil
}

func (v *service) ListOffsets(ctx context.Context, req *stratav1.ListOffsetsRequest) (resp *stratav1.ListOffsetsResponse, err error) {
	defer func() { v.s.metrics.listOffsets.WithLabelValues(result(err)).Inc() }()
	if err := v.s.waitReady(ctx); err != nil {
		return nil, err
	}
	r, err := v.s.fetcher.ListOffsets(ctx, req.GetTopic(), req.GetPartition(), req.GetTimestampMs())
	if err != nil {
		return nil, err
	}
	return &stratav1.ListOffsetsResponse{Offset: r.Offset, HighWatermark: r.HighWatermark, LogStartOffset: r.LogStart}, nil
}

func (v *service) CreateTopic(ctx context.Context, req *stratav1.CreateTopicRequest) (*stratav1.CreateTopicResponse, error) {
	return v.s.admin.CreateTopic(ctx, req)
}

func (v *service) DeleteTopic(ctx context.Context, req *stratav1.DeleteTopicRequest) (*stratav1.DeleteTopicResponse, error) {
	return v.s.admin.DeleteTopic(ctx, req)
}

func (v *service) ListTopics(ctx context.Context, req *stratav1.ListTopicsRequest) (*stratav1.ListTopicsResponse, error) {
	return v.s.admin.ListTopics(ctx, req)
}

func (v *service) DescribeTopic(ctx context.Context, req *stratav1.DescribeTopicRequest) (*stratav1.DescribeTopicResponse, error) {
	return v.s.admin.DescribeTopic(ctx, req)
}

func (v *service) DeleteRecords(ctx context.Context, req *stratav1.DeleteRecordsRequest) (*stratav1.DeleteRecordsResponse, error) {
	return v.s.admin.DeleteRecords(ctx, req)
}

func (v *service) DeleteGroup(ctx context.Context, req *stratav1.DeleteGroupRequest) (*stratav1.DeleteGroupResponse, error) {
	return v.s.admin.DeleteGroup(ctx, req)
}

func (v *service) DeleteOffsets(ctx context.Context, req *stratav1.DeleteOffsetsRequest) (*stratav1.DeleteOffsetsResponse, error) {
	return v.s.admin.DeleteOffsets(ctx, req)
}

func (v *service) ClusterStatus(ctx context.Context, req *stratav1.ClusterStatusRequest) (*stratav1.ClusterStatusResponse, error) {
	return v.s.admin.ClusterStatus(ctx, req)
}

func (v *service) AlterTopic(ctx context.Context, req *stratav1.AlterTopicRequest) (*stratav1.AlterTopicResponse, error) {
	return v.s.admin.AlterTopic(ctx, req)
}

func (v *service) GroupHeartbeat(ctx context.Context, req *stratav1.GroupHeartbeatRequest) (*stratav1.GroupHeartbeatResponse, error) {
	return v.s.admin.GroupHeartbeat(ctx, req)
}

func (v *service) LeaveGroup(ctx context.Context, req *stratav1.LeaveGroupRequest) (*stratav1.LeaveGroupResponse, error) {
	return v.s.admin.LeaveGroup(ctx, req)
}

func (v *service) CommitOffsets(ctx context.Context, req *stratav1.CommitOffsetsRequest) (*stratav1.CommitOffsetsResponse, error) {
	return v.s.admin.CommitOffsets(ctx, req)
}

func (v *service) FetchOffsets(ctx context.Context, req *stratav1.FetchOffsetsRequest) (*stratav1.FetchOffsetsResponse, error) {
	return v.s.admin.FetchOffsets(ctx, req)
}

func (v *service) ListGroups(ctx context.Context, req *stratav1.ListGroupsRequest) (*stratav1.ListGroupsResponse, error) {
	return v.s.admin.ListGroups(ctx, req)
}

func (v *service) DescribeGroup(ctx context.Context, req *stratav1.DescribeGroupRequest) (*stratav1.DescribeGroupResponse, error) {
	return v.s.admin.DescribeGroup(ctx, req)
}

func (v *service) ResetOffsets(ctx context.Context, req *stratav1.ResetOffsetsRequest) (*stratav1.ResetOffsetsResponse, error) {
	return v.s.admin.ResetOffsets(ctx, req)
}

func (v *service) DrainBroker(ctx context.Context, req *stratav1.DrainBrokerRequest) (*stratav1.DrainBrokerResponse, error) {
	return v.s.admin.DrainBroker(ctx, req)
}

func (v *service) UndrainBroker(ctx context.Context, req *stratav1.UndrainBrokerRequest) (*stratav1.UndrainBrokerResponse, error) {
	return v.s.admin.UndrainBroker(ctx, req)
}
