package coordinator

import (
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
)

// TestGroupRebalanceTimeoutMovesStuckPartition: a member keeps
// heartbeating but never gives up the partitions it is asked to revoke.
// After the rebalance timeout it is removed and the partitions move; never
// before, and never to two members at once.
func TestGroupRebalanceTimeoutMovesStuckPartition(t *testing.T) {
	const rebalance = 2 * time.Second
	ctx := testCtx(t)
	c, cli, _ := groupSetup(t, 4, func(c *Config) { c.GroupRebalanceTimeout = rebalance })
	own := newOwnership()
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli, own: own}
	untilBalanced(t, ctx, []*member{a}, 4)
	stuck := a.owned // what a keeps reporting, whatever it is told
	b := &member{id: "b", group: "g", topics: []string{"orders"}, cli: cli, own: own}
	if _, err := b.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	asked := time.Now() // b's join retargeted the group: a must revoke 2 now
	var removed time.Time
	for range 2000 {
		resp, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{
			Group: "g", MemberId: "a", MemberEpoch: a.epoch, Topics: a.topics, Owned: stuck})
		if err = apierr.FromStatus(err); err != nil {
			wantAPIErr(t, err, apierr.ErrUnknownMember)
			removed = time.Now()
			own.drop("a")
			break
		}
		a.epoch = resp.GetMemberEpoch() // a follows the epoch, never the assignment
		if _, err := b.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		if b.count() > 0 {
			t.Fatalf("b got %v while a still owns every partition", b.owned)
		}
		time.Sleep(time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond)
	}
	if removed.IsZero() {
		t.Fatal("the stuck member was never removed")
	}
	if took := removed.Sub(asked); took < rebalance {
		t.Errorf("removed %v after the revocation, before the %v rebalance timeout", took, rebalance)
	}
	untilBalanced(t, ctx, []*member{b}, 4)
	own.check(t)
	var m dto.Metric
	if err := c.metrics.groupRebalanceTimeouts.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 1 {
		t.Errorf("group_rebalance_timeouts_total = %v, want 1", got)
	}
}

// TestGroupAcceptsPreviousEpoch: a member whose heartbeat answer was lost
// heartbeats again at its previous epoch; it is accepted when it claims
// only partitions the group counts as its own (KIP-848), and told the
// current epoch and assignment. Claiming another's partition is fenced.
func TestGroupAcceptsPreviousEpoch(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 4)
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a}, 4)
	prev, prevOwned := a.epoch, a.owned
	b := &member{id: "b", group: "g", topics: []string{"orders"}, cli: cli}
	if _, err := b.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	// a's heartbeat is answered with a new epoch and a revocation, and the
	// answer is lost.
	lost, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "a", MemberEpoch: prev, Topics: a.topics, Owned: prevOwned})
	if err != nil {
		t.Fatal(err)
	}
	if lost.GetMemberEpoch() == prev {
		t.Fatalf("the revocation did not change a's epoch %d", prev)
	}
	// a, still at prev, reports its four partitions again: accepted.
	if _, err := a.heartbeat(ctx); err != nil {
		t.Fatalf("heartbeat at the previous epoch: %v", err)
	}
	if a.epoch != lost.GetMemberEpoch() || a.count() != 2 {
		t.Fatalf("after the retry: epoch %d with %d partitions, want epoch %d with 2", a.epoch, a.count(), lost.GetMemberEpoch())
	}
	untilBalanced(t, ctx, []*member{a, b}, 2)
	// b owns what a gave up; a claiming one of them at its previous epoch
	// is fenced, and so is an epoch a never had.
	_, err = cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "a", MemberEpoch: prev, Topics: a.topics,
		Owned: []*stratav1.TopicPartitions{{Topic: "orders", Partitions: b.owned[0].GetPartitions()[:1]}}})
	wantAPIErr(t, err, apierr.ErrFencedMember)
	_, err = cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch + 1, Topics: a.topics, Owned: a.owned})
	wantAPIErr(t, err, apierr.ErrFencedMember)
	// Neither failed heartbeat changed anything.
	untilBalanced(t, ctx, []*member{a, b}, 2)
	if slices.ContainsFunc(a.owned, func(tp *stratav1.TopicPartitions) bool {
		return slices.ContainsFunc(tp.GetPartitions(), func(p int32) bool { return slices.Contains(b.owned[0].GetPartitions(), p) })
	}) {
		t.Fatalf("a %v and b %v share a partition", a.owned, b.owned)
	}
}
