package proxy

import (
	"context"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
)

// service adapts the core to the strata.v1.Strata gRPC service: it converts
// messages and counts results, nothing more. Errors become statuses in the
// pkg/rpc interceptor.
type service struct {
	stratav1.UnimplementedStrataServer
	s *Server
}

func (v *service) Produce(ctx context.Context, req *stratav1.ProduceRequest) (resp *stratav1.ProduceResponse, err error) {
	defer v.s.metrics.observeProduce(time.Now(), len(req.GetBatches()))
	defer func() { v.s.metrics.produce.WithLabelValues(result(err)).Inc() }()
	if err := v.s.waitReady(ctx); err != nil {
		return nil, err
	}
	r, err := v.s.router.Produce(ctx, req.GetTopic(), req.GetPartition(), req.GetBatches())
	if err != nil {
		return nil, err
	}
	return &stratav1.ProduceResponse{BaseOffset: r.BaseOffset, LastOffset: r.LastOffset}, nil
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
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.FetchResponse{Batches: r.Batches, HighWatermark: r.HighWatermark, LogStartOffset: r.LogStart}, nil
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
