package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Admin forwards admin calls to the coordinator leader, finding it anew
// and retrying while there is none or it answers NOT_LEADER or is
// unreachable, until the call's deadline (AdminTimeout if it has none).
// Requests and responses are the Coordinator service's messages: the
// proxy passes them through.
type Admin struct {
	meta    *meta.Store
	timeout time.Duration
	done    <-chan struct{} // closed when the server shuts down
	log     *slog.Logger
	metrics *metrics
	// dialOpts secure the connection to the coordinator (TLS).
	dialOpts []rpc.DialOption
	// fetcher, if not nil, learns the log starts DeleteRecords moved.
	fetcher *Fetcher

	mu   sync.Mutex // guards addr, conn and closed
	addr string     // the leader address conn is dialled to
	conn *grpc.ClientConn
	// closed is set by close; later calls fail.
	closed bool
}

// CreateTopic forwards to the coordinator leader.
func (a *Admin) CreateTopic(ctx context.Context, req *stratav1.CreateTopicRequest) (*stratav1.CreateTopicResponse, error) {
	return forward(ctx, a, "CreateTopic", stratav1.CoordinatorClient.CreateTopic, req)
}

// DeleteTopic forwards to the coordinator leader.
func (a *Admin) DeleteTopic(ctx context.Context, req *stratav1.DeleteTopicRequest) (*stratav1.DeleteTopicResponse, error) {
	return forward(ctx, a, "DeleteTopic", stratav1.CoordinatorClient.DeleteTopic, req)
}

// ListTopics forwards to the coordinator leader.
func (a *Admin) ListTopics(ctx context.Context, req *stratav1.ListTopicsRequest) (*stratav1.ListTopicsResponse, error) {
	return forward(ctx, a, "ListTopics", stratav1.CoordinatorClient.ListTopics, req)
}

// DescribeTopic forwards to the coordinator leader.
func (a *Admin) DescribeTopic(ctx context.Context, req *stratav1.DescribeTopicRequest) (*stratav1.DescribeTopicResponse, error) {
	return forward(ctx, a, "DescribeTopic", stratav1.CoordinatorClient.DescribeTopic, req)
}

// ClusterStatus forwards to the coordinator leader.
func (a *Admin) ClusterStatus(ctx context.Context, req *stratav1.ClusterStatusRequest) (*stratav1.ClusterStatusResponse, error) {
	return forward(ctx, a, "ClusterStatus", stratav1.CoordinatorClient.ClusterStatus, req)
}

// AlterTopic forwards to the coordinator leader.
func (a *Admin) AlterTopic(ctx context.Context, req *stratav1.AlterTopicRequest) (*stratav1.AlterTopicResponse, error) {
	return forward(ctx, a, "AlterTopic", stratav1.CoordinatorClient.AlterTopic, req)
}

// DeleteRecords forwards to the coordinator leader. Then this proxy's
// fetches refuse the records below the new log starts at once, rather
// than after LogStartTTL; other proxies' do within LogStartTTL.
func (a *Admin) DeleteRecords(ctx context.Context, req *stratav1.DeleteRecordsRequest) (*stratav1.DeleteRecordsResponse, error) {
	resp, err := forward(ctx, a, "DeleteRecords", stratav1.CoordinatorClient.DeleteRecords, req)
	if err == nil && a.fetcher != nil {
		var moved []int32
		for _, r := range resp.GetResults() {
			if r.GetError() == nil {
				moved = append(moved, r.GetPartition())
			}
		}
		a.fetcher.relearn(ctx, req.GetTopic(), moved)
	}
	return resp, err
}

// forward makes one admin call at the leader, with the retry rules of Admin.
func forward[Req, Resp any](ctx context.Context, a *Admin, method string,
	call func(stratav1.CoordinatorClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req,
) (resp Resp, err error) {
	defer func() { a.metrics.admin.WithLabelValues(method, result(err)).Inc() }()
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	var zero Resp
	retry := backoff.New(minBackoff, maxBackoff)
	for {
		var last error
		conn, err := a.leaderConn(ctx)
		if err == nil {
			resp, err := call(stratav1.NewCoordinatorClient(conn), ctx, req)
			if err == nil {
				return resp, nil
			}
			err = apierr.FromStatus(err)
			if ctx.Err() == nil && !retriable(err) {
				return zero, err
			}
			last = err
		} else {
			last = err
		}
		if ctx.Err() != nil {
			return zero, adminGaveUp(ctx, method, last)
		}
		a.log.Debug("admin: retrying", "method", method, "err", last)
		a.metrics.adminRetries.Inc()
		select {
		case <-ctx.Done():
			return zero, adminGaveUp(ctx, method, last)
		case <-a.done:
			return zero, apierr.Errorf(apierr.ErrShuttingDown, "proxy shutting down")
		case <-time.After(retry.Next()):
		}
	}
}

func adminGaveUp(ctx context.Context, method string, last error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return apierr.Errorf(apierr.ErrTimeout, "%s: no coordinator leader answered before the deadline; last error: %v", method, last)
}

// leaderConn looks the leader up and returns a connection to it, reusing
// the connection while the leader's address stays the same.
func (a *Admin) leaderConn(ctx context.Context) (*grpc.ClientConn, error) {
	id, addr, err := coordinator.LeaderInfo(ctx, a.meta)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrNotLeader, "%v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, apierr.Errorf(apierr.ErrShuttingDown, "proxy shutting down")
	}
	if a.conn != nil && a.addr == addr {
		return a.conn, nil
	}
	if a.conn != nil {
		_ = a.conn.Close()
		a.conn = nil
	}
	conn, err := rpc.Dial(addr, a.dialOpts...)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrNotLeader, "coordinator leader %s at %s: %v", id, addr, err)
	}
	a.addr, a.conn = addr, conn
	return conn, nil
}

// close closes the connection to the leader.
func (a *Admin) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		_ = a.conn.Close()
		a.conn = nil
	}
	a.closed = true
}

// Consumer group calls, forwarded to the coordinator leader like the
// admin calls (docs/consumer-groups.md).

// GroupHeartbeat joins or heartbeats a consumer group member; forwarded to the coordinator leader.
func (a *Admin) GroupHeartbeat(ctx context.Context, req *stratav1.GroupHeartbeatRequest) (*stratav1.GroupHeartbeatResponse, error) {
	return forward(ctx, a, "GroupHeartbeat", stratav1.CoordinatorClient.GroupHeartbeat, req)
}

// LeaveGroup removes a consumer group member; forwarded to the coordinator leader.
func (a *Admin) LeaveGroup(ctx context.Context, req *stratav1.LeaveGroupRequest) (*stratav1.LeaveGroupResponse, error) {
	return forward(ctx, a, "LeaveGroup", stratav1.CoordinatorClient.LeaveGroup, req)
}

// CommitOffsets stores a member's committed offsets; forwarded to the coordinator leader.
func (a *Admin) CommitOffsets(ctx context.Context, req *stratav1.CommitOffsetsRequest) (*stratav1.CommitOffsetsResponse, error) {
	return forward(ctx, a, "CommitOffsets", stratav1.CoordinatorClient.CommitOffsets, req)
}

// FetchOffsets returns a group's committed offsets; forwarded to the coordinator leader.
func (a *Admin) FetchOffsets(ctx context.Context, req *stratav1.FetchOffsetsRequest) (*stratav1.FetchOffsetsResponse, error) {
	return forward(ctx, a, "FetchOffsets", stratav1.CoordinatorClient.FetchOffsets, req)
}

// ListGroups lists consumer groups; forwarded to the coordinator leader.
func (a *Admin) ListGroups(ctx context.Context, req *stratav1.ListGroupsRequest) (*stratav1.ListGroupsResponse, error) {
	return forward(ctx, a, "ListGroups", stratav1.CoordinatorClient.ListGroups, req)
}

// DescribeGroup describes a consumer group; forwarded to the coordinator leader.
func (a *Admin) DescribeGroup(ctx context.Context, req *stratav1.DescribeGroupRequest) (*stratav1.DescribeGroupResponse, error) {
	return forward(ctx, a, "DescribeGroup", stratav1.CoordinatorClient.DescribeGroup, req)
}

// ResetOffsets overwrites the offsets of a group without members; forwarded to the coordinator leader.
func (a *Admin) ResetOffsets(ctx context.Context, req *stratav1.ResetOffsetsRequest) (*stratav1.ResetOffsetsResponse, error) {
	return forward(ctx, a, "ResetOffsets", stratav1.CoordinatorClient.ResetOffsets, req)
}

// DrainBroker forwards to the coordinator leader.
func (a *Admin) DrainBroker(ctx context.Context, req *stratav1.DrainBrokerRequest) (*stratav1.DrainBrokerResponse, error) {
	return forward(ctx, a, "DrainBroker", stratav1.CoordinatorClient.DrainBroker, req)
}

// UndrainBroker forwards to the coordinator leader.
func (a *Admin) UndrainBroker(ctx context.Context, req *stratav1.UndrainBrokerRequest) (*stratav1.UndrainBrokerResponse, error) {
	return forward(ctx, a, "UndrainBroker", stratav1.CoordinatorClient.UndrainBroker, req)
}

// Kafka classic group calls (docs/consumer-groups.md), forwarded to the
// coordinator leader. Join and Sync are bounded long polls: a pending
// answer is asked again by the caller.

// JoinClassicGroup joins a classic group member; forwarded to the coordinator leader.
func (a *Admin) JoinClassicGroup(ctx context.Context, req *stratav1.JoinClassicGroupRequest) (*stratav1.JoinClassicGroupResponse, error) {
	return forward(ctx, a, "JoinClassicGroup", stratav1.CoordinatorClient.JoinClassicGroup, req)
}

// SyncClassicGroup hands in or collects a classic group's assignment; forwarded to the coordinator leader.
func (a *Admin) SyncClassicGroup(ctx context.Context, req *stratav1.SyncClassicGroupRequest) (*stratav1.SyncClassicGroupResponse, error) {
	return forward(ctx, a, "SyncClassicGroup", stratav1.CoordinatorClient.SyncClassicGroup, req)
}

// ClassicHeartbeat keeps a classic member alive; forwarded to the coordinator leader.
func (a *Admin) ClassicHeartbeat(ctx context.Context, req *stratav1.ClassicHeartbeatRequest) (*stratav1.ClassicHeartbeatResponse, error) {
	return forward(ctx, a, "ClassicHeartbeat", stratav1.CoordinatorClient.ClassicHeartbeat, req)
}

// LeaveClassicGroup removes a classic member; forwarded to the coordinator leader.
func (a *Admin) LeaveClassicGroup(ctx context.Context, req *stratav1.LeaveClassicGroupRequest) (*stratav1.LeaveClassicGroupResponse, error) {
	return forward(ctx, a, "LeaveClassicGroup", stratav1.CoordinatorClient.LeaveClassicGroup, req)
}

// CommitClassicOffsets commits offsets at a classic generation; forwarded to the coordinator leader.
func (a *Admin) CommitClassicOffsets(ctx context.Context, req *stratav1.CommitClassicOffsetsRequest) (*stratav1.CommitClassicOffsetsResponse, error) {
	return forward(ctx, a, "CommitClassicOffsets", stratav1.CoordinatorClient.CommitClassicOffsets, req)
}

// DescribeClassicGroup describes a group as Kafka's DescribeGroups does; forwarded to the coordinator leader.
func (a *Admin) DescribeClassicGroup(ctx context.Context, req *stratav1.DescribeClassicGroupRequest) (*stratav1.DescribeClassicGroupResponse, error) {
	return forward(ctx, a, "DescribeClassicGroup", stratav1.CoordinatorClient.DescribeClassicGroup, req)
}

// DeleteOffsets removes a group's committed offsets of some partitions,
// if it has no live members; forwarded to the coordinator leader.
func (a *Admin) DeleteOffsets(ctx context.Context, req *stratav1.DeleteOffsetsRequest) (*stratav1.DeleteOffsetsResponse, error) {
	return forward(ctx, a, "DeleteOffsets", stratav1.CoordinatorClient.DeleteOffsets, req)
}

// DeleteGroup removes a group without members and its offsets; forwarded to the coordinator leader.
func (a *Admin) DeleteGroup(ctx context.Context, req *stratav1.DeleteGroupRequest) (*stratav1.DeleteGroupResponse, error) {
	return forward(ctx, a, "DeleteGroup", stratav1.CoordinatorClient.DeleteGroup, req)
}
