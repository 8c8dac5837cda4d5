package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
)

// classicClient is a test client of the classic protocol, polling the
// long-poll calls the way the proxy's Kafka front end does.
type classicClient struct {
	cli        stratav1.CoordinatorClient
	group, id  string
	instance   string
	session    time.Duration
	rebalance  time.Duration
	generation int32
	leader     string
	members    []string // from the join response, if leader
	assignment string
}

func (m *classicClient) joinReq() *stratav1.JoinClassicGroupRequest {
	return &stratav1.JoinClassicGroupRequest{Group: m.group, MemberId: m.id, GroupInstanceId: m.instance,
		ProtocolType: "consumer", ClientId: "test",
		Protocols:            []*stratav1.ClassicProtocol{{Name: "range", Metadata: []byte("meta-" + m.instance)}},
		SessionTimeoutMs:     int32(m.session / time.Millisecond),
		RebalanceTimeoutMs:   int32(m.rebalance / time.Millisecond),
		RequireKnownMemberId: true, MaxWaitMs: 200}
}

// join polls JoinClassicGroup until the join phase completes (a bounded
// number of polls).
func (m *classicClient) join(ctx context.Context) error {
	for range 500 {
		resp, err := m.cli.JoinClassicGroup(ctx, m.joinReq())
		if err != nil {
			return apierr.FromStatus(err)
		}
		m.id = resp.GetMemberId()
		if resp.GetPending() || resp.GetMemberIdRequired() {
			continue
		}
		m.generation, m.leader, m.members = resp.GetGeneration(), resp.GetLeader(), nil
		for _, o := range resp.GetMembers() {
			m.members = append(m.members, o.GetMemberId())
		}
		return nil
	}
	return fmt.Errorf("%s: join never completed", m.id)
}

// sync polls SyncClassicGroup; the leader assigns each member its id
// with the generation.
func (m *classicClient) sync(ctx context.Context) error {
	req := &stratav1.SyncClassicGroupRequest{Group: m.group, MemberId: m.id, GroupInstanceId: m.instance, Generation: m.generation, MaxWaitMs: 200}
	for _, o := range m.members {
		req.Assignments = append(req.Assignments, &stratav1.ClassicAssignment{MemberId: o, Assignment: fmt.Appendf(nil, "%s@%d", o, m.generation)})
	}
	for range 500 {
		resp, err := m.cli.SyncClassicGroup(ctx, req)
		if err != nil {
			return apierr.FromStatus(err)
		}
		if !resp.GetPending() {
			m.assignment = string(resp.GetAssignment())
			return nil
		}
	}
	return fmt.Errorf("%s: sync never completed", m.id)
}

func (m *classicClient) heartbeat(ctx context.Context) error {
	_, err := m.cli.ClassicHeartbeat(ctx, &stratav1.ClassicHeartbeatRequest{Group: m.group, MemberId: m.id, GroupInstanceId: m.instance, Generation: m.generation})
	return apierr.FromStatus(err)
}

func (m *classicClient) commit(ctx context.Context, generation int32, offset int64) error {
	_, err := m.cli.CommitClassicOffsets(ctx, &stratav1.CommitClassicOffsetsRequest{Group: m.group, MemberId: m.id, Generation: generation,
		Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: offset}}}}})
	return apierr.FromStatus(err)
}

// rebalanceAll joins and syncs every member concurrently.
func rebalanceAll(t *testing.T, ctx context.Context, ms ...*classicClient) {
	t.Helper()
	errs := make(chan error, len(ms))
	for _, m := range ms {
		go func() {
			err := m.join(ctx)
			if err == nil {
				err = m.sync(ctx)
			}
			errs <- err
		}()
	}
	for range ms {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		if m.generation != ms[0].generation || m.leader != ms[0].leader {
			t.Fatalf("members disagree: %s at %d led by %s, %s at %d led by %s", m.id, m.generation, m.leader, ms[0].id, ms[0].generation, ms[0].leader)
		}
		if want := fmt.Sprintf("%s@%d", m.id, m.generation); m.assignment != want {
			t.Fatalf("%s got assignment %q, want %q", m.id, m.assignment, want)
		}
	}
}

func newClassic(cli stratav1.CoordinatorClient) *classicClient {
	return &classicClient{cli: cli, group: "cg", session: 2 * time.Second, rebalance: 3 * time.Second}
}

// untilErr heartbeats m until it gets want, within a bound.
func untilErr(t *testing.T, ctx context.Context, m *classicClient, want error) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s heartbeat error %v", m.id, want), func() bool {
		err := m.heartbeat(ctx)
		if err != nil && !isErr(err, want) {
			t.Fatalf("heartbeat of %s: %v, waiting for %v", m.id, err, want)
		}
		return isErr(err, want)
	})
}

func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return err != nil && fmt.Sprint(apierr.FromStatus(err).(*apierr.Error).Unwrap()) == fmt.Sprint(want)
}

// TestClassicJoinSyncRebalance runs a classic group through a member
// joining, leaving and timing out: each change rebalances the group at a
// new generation, the leader gets every member's metadata, every member
// gets the leader's assignment, and calls at an old generation fail.
func TestClassicJoinSyncRebalance(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 4)
	a := newClassic(cli)
	rebalanceAll(t, ctx, a)
	if a.generation != 1 || a.leader != a.id || len(a.members) != 1 {
		t.Fatalf("first join: generation %d, leader %s, members %v", a.generation, a.leader, a.members)
	}
	if err := a.commit(ctx, a.generation, 7); err != nil {
		t.Fatalf("commit at generation 1: %v", err)
	}

	// b joins: a learns by heartbeat and rejoins; one new generation.
	b := newClassic(cli)
	addMember(t, ctx, b, a)
	if a.generation != 2 || a.leader != a.id || len(a.members) != 2 || len(b.members) != 0 {
		t.Fatalf("second generation: %d, leader %s, leader saw %v, follower saw %v", a.generation, a.leader, a.members, b.members)
	}
	wantAPIErr(t, a.commit(ctx, 1, 9), apierr.ErrIllegalGeneration)
	stale := *a
	stale.generation = 1
	wantAPIErr(t, stale.heartbeat(ctx), apierr.ErrIllegalGeneration)
	if err := b.commit(ctx, 2, 11); err != nil {
		t.Fatalf("commit at generation 2: %v", err)
	}

	// b leaves: a rebalances alone.
	if _, err := cli.LeaveClassicGroup(ctx, &stratav1.LeaveClassicGroupRequest{Group: "cg", MemberId: b.id}); err != nil {
		t.Fatal(err)
	}
	untilErr(t, ctx, a, apierr.ErrRebalanceInProgress)
	rebalanceAll(t, ctx, a)
	if a.generation != 3 || len(a.members) != 1 {
		t.Fatalf("after leave: generation %d, members %v", a.generation, a.members)
	}
	wantAPIErr(t, b.heartbeat(ctx), apierr.ErrUnknownMember)

	// c joins and then goes silent: its session times out and a
	// rebalances alone again.
	c := newClassic(cli)
	addMember(t, ctx, c, a)
	untilErr(t, ctx, a, apierr.ErrRebalanceInProgress)
	rebalanceAll(t, ctx, a)
	if a.generation != 5 || len(a.members) != 1 {
		t.Fatalf("after c's session timeout: generation %d, members %v", a.generation, a.members)
	}
	wantAPIErr(t, c.heartbeat(ctx), apierr.ErrUnknownMember)

	// Offsets committed by classic members are the group's offsets on
	// the gRPC API too, and DescribeGroup shows the lag.
	offs, err := cli.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "cg"})
	if err != nil {
		t.Fatal(err)
	}
	if got := offs.GetTopics(); len(got) != 1 || got[0].GetPartitions()[0].GetOffset() != 11 {
		t.Fatalf("committed offsets %v, want orders/0@11", got)
	}
	list, err := cli.ListGroups(ctx, &stratav1.ListGroupsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if gs := list.GetGroups(); len(gs) != 1 || gs[0].GetMembers() != 1 || gs[0].GetGroupEpoch() != 5 || gs[0].GetState() != "Stable" {
		t.Fatalf("ListGroups: %v", gs)
	}
	desc, err := cli.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: "cg"})
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetState() != "Stable" || len(desc.GetPartitions()) == 0 || desc.GetPartitions()[0].GetCommittedOffset() != 11 {
		t.Fatalf("describe: state %s, partitions %v", desc.GetState(), desc.GetPartitions())
	}
}

// addMember joins m to the stable group of ms: the others learn of the
// rebalance by heartbeat and rejoin.
func addMember(t *testing.T, ctx context.Context, m *classicClient, ms ...*classicClient) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.join(ctx) }()
	for _, o := range ms {
		untilErr(t, ctx, o, apierr.ErrRebalanceInProgress)
	}
	rebalanceAllAfter(t, ctx, done, append(ms, m)...)
}

// rebalanceAllAfter finishes the join a goroutine started for the last
// member and rebalances the others with it.
func rebalanceAllAfter(t *testing.T, ctx context.Context, joined <-chan error, ms ...*classicClient) {
	t.Helper()
	last := ms[len(ms)-1]
	others := ms[:len(ms)-1]
	errs := make(chan error, len(others))
	for _, m := range others {
		go func() {
			err := m.join(ctx)
			if err == nil {
				err = m.sync(ctx)
			}
			errs <- err
		}()
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if err := last.sync(ctx); err != nil {
		t.Fatal(err)
	}
	for range others {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		if want := fmt.Sprintf("%s@%d", m.id, m.generation); m.generation != ms[0].generation || m.assignment != want {
			t.Fatalf("%s at generation %d got %q, want %q", m.id, m.generation, m.assignment, want)
		}
	}
}

// TestClassicRebalanceTimeout: a member that does not rejoin within the
// rebalance timeout is dropped, and the join completes without it.
func TestClassicRebalanceTimeout(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 2)
	a := newClassic(cli)
	a.session = 10 * time.Second
	rebalanceAll(t, ctx, a)
	b := newClassic(cli)
	b.rebalance = time.Second
	start := time.Now()
	// a keeps heartbeating (its session stays alive) but never rejoins.
	if err := b.join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if b.generation != 2 || b.leader != b.id || len(b.members) != 1 {
		t.Fatalf("join after the rebalance timeout: generation %d, leader %s, members %v", b.generation, b.leader, b.members)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("join completed after %v, before a's rebalance timeout", waited)
	}
	wantAPIErr(t, a.heartbeat(ctx), apierr.ErrUnknownMember)
}

// TestClassicProtocolsDoNotMix: a group holds members of one protocol;
// commits without a member are refused while it has members and taken
// once it is empty.
func TestClassicProtocolsDoNotMix(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 2)
	a := newClassic(cli)
	rebalanceAll(t, ctx, a)
	_, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "cg", MemberId: "x", Topics: []string{"orders"}})
	wantAPIErr(t, err, apierr.ErrInconsistentGroupProtocol)
	if _, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "sg", MemberId: "x", Topics: []string{"orders"}}); err != nil {
		t.Fatal(err)
	}
	s := newClassic(cli)
	s.group = "sg"
	wantAPIErr(t, s.join(ctx), apierr.ErrInconsistentGroupProtocol)

	simple := &classicClient{cli: cli, group: "cg"}
	wantAPIErr(t, simple.commit(ctx, -1, 5), apierr.ErrUnknownMember)
	if _, err := cli.LeaveClassicGroup(ctx, &stratav1.LeaveClassicGroupRequest{Group: "cg", MemberId: a.id}); err != nil {
		t.Fatal(err)
	}
	if err := simple.commit(ctx, -1, 5); err != nil {
		t.Fatalf("commit to an empty group: %v", err)
	}
	// A member with no protocol in common with the group is refused.
	b := newClassic(cli)
	rebalanceAll(t, ctx, b)
	odd := newClassic(cli)
	req := odd.joinReq()
	req.Protocols[0].Name = "roundrobin"
	_, err = cli.JoinClassicGroup(ctx, req)
	wantAPIErr(t, err, apierr.ErrInconsistentGroupProtocol)

	// A group is deleted, offsets and all, only once it has no members.
	_, err = cli.DeleteGroup(ctx, &stratav1.DeleteGroupRequest{Group: "cg"})
	wantAPIErr(t, err, apierr.ErrGroupNotEmpty)
	if _, err := cli.LeaveClassicGroup(ctx, &stratav1.LeaveClassicGroupRequest{Group: "cg", MemberId: b.id}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.DeleteGroup(ctx, &stratav1.DeleteGroupRequest{Group: "cg"}); err != nil {
		t.Fatalf("delete an empty group: %v", err)
	}
	_, err = cli.DeleteGroup(ctx, &stratav1.DeleteGroupRequest{Group: "cg"})
	wantAPIErr(t, err, apierr.ErrUnknownGroup)
	offs, err := cli.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "cg"})
	if err != nil || len(offs.GetTopics()) != 0 {
		t.Fatalf("offsets of a deleted group: %v, %v", offs.GetTopics(), err)
	}
	// The name is free again, for either protocol.
	rebalanceAll(t, ctx, newClassic(cli))
}

// TestClassicStateSurvivesLeaderFailover: members keep their generation,
// leader and assignment across a change of coordinator leader, and a
// member that was waiting to join finishes against the new leader.
func TestClassicStateSurvivesLeaderFailover(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	fast := func(c *Config) { c.GroupSessionCheckInterval = 20 * time.Millisecond }
	c1 := startCoordinator(t, store, "c1", fast)
	waitFor(t, "leader", c1.IsLeader)
	c2 := startCoordinator(t, newStore(t, etcd.Endpoints(), store.Prefix()), "c2", fast)
	cli1 := client(t, c1)
	if _, err := cli1.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "topic in views", func() bool {
		_, ok1 := c1.view.Topic("orders")
		_, ok2 := c2.view.Topic("orders")
		return ok1 && ok2
	})
	a, b := newClassic(cli1), newClassic(cli1)
	a.session, b.session = 10*time.Second, 10*time.Second
	rebalanceAll(t, ctx, a)
	addMember(t, ctx, b, a)
	if err := a.commit(ctx, a.generation, 42); err != nil {
		t.Fatal(err)
	}
	gen := a.generation

	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c2 leads", c2.IsLeader)
	cli2 := client(t, c2)
	for _, m := range []*classicClient{a, b} {
		m.cli = cli2
		if err := m.heartbeat(ctx); err != nil {
			t.Fatalf("heartbeat of %s at generation %d after failover: %v", m.id, gen, err)
		}
	}
	if err := b.commit(ctx, gen, 43); err != nil {
		t.Fatalf("commit at generation %d after failover: %v", gen, err)
	}
	desc, err := cli2.DescribeClassicGroup(ctx, &stratav1.DescribeClassicGroupRequest{Group: "cg"})
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetState() != "Stable" || len(desc.GetMembers()) != 2 || desc.GetProtocol() != "range" {
		t.Fatalf("described after failover: %v", desc)
	}
	for _, m := range desc.GetMembers() {
		if want := fmt.Sprintf("%s@%d", m.GetMemberId(), gen); string(m.GetAssignment()) != want {
			t.Fatalf("assignment of %s after failover: %q, want %q", m.GetMemberId(), m.GetAssignment(), want)
		}
	}
}

// TestKafkaMemberCommitsAtOlderEpoch: a KIP-848 member of a Kafka client
// commits through the Kafka path at the epoch it had before the heartbeat
// that moved it on (its revoke commit); that is taken for partitions it
// still owns, refused for others, and refused on the gRPC path.
func TestKafkaMemberCommitsAtOlderEpoch(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 4)
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a}, 4)
	old := a.epoch
	b := &member{id: "b", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a, b}, 2)
	if a.epoch == old {
		t.Fatal("a's epoch did not move with its assignment")
	}
	commit := func(epoch int64, p int32) error {
		_, err := cli.CommitClassicOffsets(ctx, &stratav1.CommitClassicOffsetsRequest{Group: "g", MemberId: "a", Generation: int32(epoch),
			Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: p, Offset: 5}}}}})
		return err
	}
	mine, theirs := a.owned[0].GetPartitions()[0], b.owned[0].GetPartitions()[0]
	if err := commit(old, mine); err != nil {
		t.Fatalf("commit at the previous epoch of an owned partition: %v", err)
	}
	wantAPIErr(t, commit(old, theirs), apierr.ErrFencedMember)
	wantAPIErr(t, commit(a.epoch+1, mine), apierr.ErrFencedMember)
	_, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: "a", MemberEpoch: old,
		Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: mine, Offset: 6}}}}})
	wantAPIErr(t, err, apierr.ErrFencedMember)
}

// TestClassicTxnCommitCheck checks members as a Kafka transactional
// offset commit does (check_only): at the member's generation it passes,
// even while the group completes a rebalance, where a plain commit is
// refused; a stale generation or an unknown member is refused; no member
// at generation -1 passes whatever the group; and a check stores nothing.
func TestClassicTxnCommitCheck(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 4)
	check := func(member string, generation int32, topics ...*stratav1.TopicOffsets) error {
		_, err := cli.CommitClassicOffsets(ctx, &stratav1.CommitClassicOffsetsRequest{Group: "cg", MemberId: member,
			Generation: generation, CheckOnly: true, Topics: topics})
		return apierr.FromStatus(err)
	}
	a := newClassic(cli)
	rebalanceAll(t, ctx, a)
	if err := check(a.id, a.generation); err != nil {
		t.Fatalf("check at the member's generation: %v", err)
	}
	wantAPIErr(t, check(a.id, a.generation-1), apierr.ErrIllegalGeneration)
	wantAPIErr(t, check("stranger", a.generation), apierr.ErrUnknownMember)
	if err := check("", -1); err != nil {
		t.Fatalf("check naming no member: %v", err)
	}
	wantAPIErr(t, check(a.id, a.generation, &stratav1.TopicOffsets{Topic: "orders",
		Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: 5}}}), apierr.ErrInvalidRequest)

	// b joins and both rejoin; before they sync, the group completes the
	// rebalance at generation 2.
	b := newClassic(cli)
	joined := make(chan error, 1)
	go func() { joined <- b.join(ctx) }()
	untilErr(t, ctx, a, apierr.ErrRebalanceInProgress)
	if err := a.join(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	wantAPIErr(t, a.commit(ctx, a.generation, 9), apierr.ErrRebalanceInProgress)
	if err := check(a.id, a.generation); err != nil {
		t.Fatalf("check while completing a rebalance: %v", err)
	}
	offs, err := cli.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "cg"})
	if err != nil {
		t.Fatal(err)
	}
	if len(offs.GetTopics()) != 0 {
		t.Fatalf("checks stored offsets: %v", offs.GetTopics())
	}
}
