package proxy

import (
	"context"
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/rpc"
)

// fakeCoordinator answers the Coordinator service like a leader would,
// unless its hook returns an error.
type fakeCoordinator struct {
	stratav1.UnimplementedCoordinatorServer
	id    string
	addr  string
	calls atomic.Int64
	hook  func() error // runs on every call, if set before serving
}

func (e *env) startCoordinator(id string, hook func() error) *fakeCoordinator {
	e.t.Helper()
	c := &fakeCoordinator{id: id, hook: hook}
	srv := rpc.NewServer(e.srv.log)
	stratav1.RegisterCoordinatorServer(srv, c)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	c.addr = lis.Addr().String()
	go srv.Serve(lis)
	e.t.Cleanup(srv.Stop)
	return c
}

func (c *fakeCoordinator) call() error {
	c.calls.Add(1)
	if c.hook != nil {
		return c.hook()
	}
	return nil
}

func (c *fakeCoordinator) CreateTopic(_ context.Context, req *stratav1.CreateTopicRequest) (*stratav1.CreateTopicResponse, error) {
	if err := c.call(); err != nil {
		return nil, err
	}
	if req.Name == "exists" {
		return nil, apierr.Errorf(apierr.ErrTopicExists, "topic %q", req.Name)
	}
	return &stratav1.CreateTopicResponse{Topic: &stratav1.TopicInfo{Name: req.Name, Id: "from-" + c.id, Partitions: req.Partitions}}, nil
}

func (c *fakeCoordinator) ClusterStatus(context.Context, *stratav1.ClusterStatusRequest) (*stratav1.ClusterStatusResponse, error) {
	if err := c.call(); err != nil {
		return nil, err
	}
	return &stratav1.ClusterStatusResponse{CoordinatorLeader: c.id, CoordinatorAddr: c.addr}, nil
}

// campaign makes c a candidate in the coordinator election, as the real
// coordinator does; it returns once c leads.
func (e *env) campaign(c *fakeCoordinator) *concurrency.Election {
	e.t.Helper()
	sess, err := concurrency.NewSession(e.meta.Client(), concurrency.WithTTL(10))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sess.Close() })
	val, _ := json.Marshal(coordinator.Leader{ID: c.id, Addr: c.addr})
	el := concurrency.NewElection(sess, e.meta.ElectionPrefix())
	if err := el.Campaign(e.ctx, string(val)); err != nil {
		e.t.Fatal(err)
	}
	return el
}

// TestAdminForwarding: admin calls reach the elected coordinator; when the
// one etcd names answers NOT_LEADER (it just lost the election), the proxy
// finds the new leader and retries there.
func TestAdminForwarding(t *testing.T) {
	e := newEnv(t)
	var elA *concurrency.Election
	a := e.startCoordinator("a", func() error {
		// Step down, as a coordinator losing its lease would, and say so.
		if err := elA.Resign(context.Background()); err != nil {
			return err
		}
		return apierr.Errorf(apierr.ErrNotLeader, "a is not the leader")
	})
	b := e.startCoordinator("b", nil)
	elA = e.campaign(a)
	if id, addr, err := coordinator.LeaderInfo(e.ctx, e.meta); err != nil || id != "a" || addr != a.addr {
		t.Fatalf("LeaderInfo = %s %s, %v; want a at %s", id, addr, err, a.addr)
	}
	campaigned := make(chan struct{})
	go func() { e.campaign(b); close(campaigned) }() // waits until a resigns

	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	resp, err := e.client.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "t", Partitions: 3})
	if err != nil {
		t.Fatalf("create topic across a leader change: %v", err)
	}
	if resp.Topic.GetId() != "from-b" || resp.Topic.GetPartitions() != 3 {
		t.Fatalf("response %+v, want one from b", resp)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Fatalf("calls a=%d b=%d, want 1 and 1", a.calls.Load(), b.calls.Load())
	}
	<-campaigned

	// Errors that are not about leadership pass through unchanged.
	_, err = e.client.CreateTopic(e.ctx, &stratav1.CreateTopicRequest{Name: "exists"})
	wantErr(t, "create existing topic", err, apierr.ErrTopicExists)

	st, err := e.client.ClusterStatus(e.ctx, &stratav1.ClusterStatusRequest{})
	if err != nil || st.CoordinatorLeader != "b" {
		t.Fatalf("cluster status %+v, %v", st, err)
	}
	// Unimplemented at the coordinator: not retried, passed on.
	_, err = e.client.ListTopics(e.ctx, &stratav1.ListTopicsRequest{})
	if err == nil {
		t.Fatal("ListTopics succeeded at a coordinator that lacks it")
	}
}

// TestAdminNoLeader: with no coordinator elected, an admin call retries
// until its deadline and then fails with TIMEOUT.
func TestAdminNoLeader(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := e.client.ClusterStatus(ctx, &stratav1.ClusterStatusRequest{})
	wantErr(t, "cluster status without a leader", err, apierr.ErrTimeout)
	if n := counterValue(e.srv.metrics.adminRetries); n < 1 {
		t.Fatalf("%v admin retries, want >= 1", n)
	}
}
