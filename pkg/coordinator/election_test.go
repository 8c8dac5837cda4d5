package coordinator

import (
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
)

// leaderAndStandby waits until exactly one of a and b leads and returns
// them as (leader, standby).
func leaderAndStandby(t *testing.T, a, b *Server) (*Server, *Server) {
	t.Helper()
	waitFor(t, "one leader", func() bool { return a.IsLeader() != b.IsLeader() })
	if a.IsLeader() {
		return a, b
	}
	return b, a
}

func TestElectionFailoverOnClose(t *testing.T) {
	prefix := testenv.Prefix(t)
	ctx := testCtx(t)
	// A long TTL, so a takeover well under it proves the leader resigned.
	longTTL := func(c *Config) { c.SessionTTL = 10 * time.Second }
	c1 := startCoordinator(t, newStore(t, etcd.Endpoints(), prefix), "c1", longTTL)
	c2 := startCoordinator(t, newStore(t, etcd.Endpoints(), prefix), "c2", longTTL)
	leader, standby := leaderAndStandby(t, c1, c2)

	// Exactly one leader, and the election key names it with its address.
	store := newStore(t, etcd.Endpoints(), prefix)
	id, addr, err := LeaderInfo(ctx, store)
	if err != nil || id != leader.ID() || addr != leader.Addr() {
		t.Fatalf("LeaderInfo = %q %q %v, want %q %q", id, addr, err, leader.ID(), leader.Addr())
	}
	resp, err := store.Client().Get(ctx, store.ElectionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader key: %v %v", resp, err)
	}
	var v map[string]string
	if err := json.Unmarshal(resp.Kvs[0].Value, &v); err != nil || len(v) != 2 || v["id"] != leader.ID() || v["addr"] != leader.Addr() {
		t.Fatalf("leader value %s: %v", resp.Kvs[0].Value, err)
	}

	// The standby refuses admin calls with a retriable NOT_LEADER.
	_, err = client(t, standby).ListTopics(ctx, &stratav1.ListTopicsRequest{})
	wantAPIErr(t, err, apierr.ErrNotLeader)
	if !apierr.Retriable(apierr.FromStatus(err)) {
		t.Fatalf("NOT_LEADER is not retriable: %v", err)
	}
	if _, err := client(t, leader).ListTopics(ctx, &stratav1.ListTopicsRequest{}); err != nil {
		t.Fatalf("leader ListTopics: %v", err)
	}

	// Closing the leader resigns; the standby takes over and serves.
	start := time.Now()
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "standby elected", standby.IsLeader)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("takeover after Close took %v; the session revoke should make it immediate", d)
	}
	if _, err := client(t, standby).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "after-failover"}); err != nil {
		t.Fatalf("new leader CreateTopic: %v", err)
	}
	if id, _, err := LeaderInfo(ctx, store); err != nil || id != standby.ID() {
		t.Fatalf("LeaderInfo = %q %v, want %q", id, err, standby.ID())
	}
}

func TestLeaderInfoNoLeader(t *testing.T) {
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	_, _, err := LeaderInfo(testCtx(t), store)
	wantAPIErr(t, err, apierr.ErrNotLeader)
}

// TestLeaderStepsDownWhenSessionRevoked pins that a leader whose etcd
// session ends (here: its lease revoked behind its back) stops leading —
// the standby wins, the old leader answers NOT_LEADER — and campaigns again
// with a new session instead of staying out of the election.
func TestLeaderStepsDownWhenSessionRevoked(t *testing.T) {
	prefix := testenv.Prefix(t)
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), prefix)
	c1 := startCoordinator(t, newStore(t, etcd.Endpoints(), prefix), "c1")
	c2 := startCoordinator(t, newStore(t, etcd.Endpoints(), prefix), "c2")
	leader, standby := leaderAndStandby(t, c1, c2)

	resp, err := store.Client().Get(ctx, store.ElectionPrefix()+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader key: %v %v", resp, err)
	}
	if _, err := store.Client().Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "standby elected", standby.IsLeader)
	waitFor(t, "old leader stepped down", func() bool { return !leader.IsLeader() })
	_, err = client(t, leader).ListTopics(ctx, &stratav1.ListTopicsRequest{})
	wantAPIErr(t, err, apierr.ErrNotLeader)
	// The old leader campaigns again: closing the new one hands leadership back.
	if err := standby.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old leader re-elected", leader.IsLeader)
	if got := testenv.MetricValue(t, leader.metrics.elections); got != 2 {
		t.Errorf("old leader was elected %v times, want 2", got)
	}
}

// TestLeaderStepsDownWhenEtcdUnreachable pauses etcd for longer than the
// session TTL: the leader must stop acting as leader while etcd is gone
// (another coordinator may be elected once the lease expires), and lead
// again after etcd is back.
func TestLeaderStepsDownWhenEtcdUnreachable(t *testing.T) {
	e := testenv.StartEtcd(t)
	store := newStore(t, e.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1", func(c *Config) { c.SessionTTL = time.Second })
	waitFor(t, "leader", c.IsLeader)

	if err := e.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = e.Resume()
		}
	}()
	waitFor(t, "leader stepped down while etcd is paused", func() bool { return !c.IsLeader() })
	_, err := client(t, c).ListTopics(testCtx(t), &stratav1.ListTopicsRequest{})
	wantAPIErr(t, err, apierr.ErrNotLeader)
	if err := e.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitFor(t, "leader again after etcd resumed", c.IsLeader)
	if _, err := client(t, c).ListTopics(testCtx(t), &stratav1.ListTopicsRequest{}); err != nil {
		t.Fatalf("ListTopics after re-election: %v", err)
	}
}
