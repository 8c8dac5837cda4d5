package coordinator

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// ownership is the test's record of which member owns which partition, as
// the members themselves believe after each heartbeat response. A member
// drops a revoked partition before its next heartbeat says so, so a
// partition handed to a second member while the first still holds it is a
// violation of the revoke-before-assign rule.
type ownership struct {
	mu     sync.Mutex
	owner  map[string]map[int32]string // topic → partition → member
	errors []string
}

func newOwnership() *ownership { return &ownership{owner: map[string]map[int32]string{}} }

// update replaces member's partitions with assignment and reports a
// partition some other member holds.
func (o *ownership) update(member string, assignment []*stratav1.TopicPartitions) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ps := range o.owner {
		for p, m := range ps {
			if m == member {
				delete(ps, p)
			}
		}
	}
	for _, tp := range assignment {
		ps := o.owner[tp.GetTopic()]
		if ps == nil {
			ps = map[int32]string{}
			o.owner[tp.GetTopic()] = ps
		}
		for _, p := range tp.GetPartitions() {
			if other, ok := ps[p]; ok && other != member {
				o.errors = append(o.errors, fmt.Sprintf("%s/%d given to %s while %s owns it", tp.GetTopic(), p, member, other))
			}
			ps[p] = member
		}
	}
}

func (o *ownership) drop(member string) { o.update(member, nil) }

// counts returns how many partitions each member owns, and the total.
func (o *ownership) counts() (map[string]int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, total := map[string]int{}, 0
	for _, ps := range o.owner {
		for _, m := range ps {
			out[m]++
			total++
		}
	}
	return out, total
}

func (o *ownership) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range o.errors {
		t.Error(e)
	}
}

// member is a test consumer group member speaking the protocol directly.
type member struct {
	id, group string
	topics    []string
	cli       stratav1.CoordinatorClient
	own       *ownership

	epoch int64
	owned []*stratav1.TopicPartitions
}

// heartbeat sends one heartbeat and applies the answer at once: revoked
// partitions are dropped (as if committed), new ones taken.
func (m *member) heartbeat(ctx context.Context) (*stratav1.GroupHeartbeatResponse, error) {
	resp, err := m.cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{
		Group: m.group, MemberId: m.id, MemberEpoch: m.epoch, Topics: m.topics, Owned: m.owned,
	})
	if err != nil {
		return nil, apierr.FromStatus(err)
	}
	m.epoch, m.owned = resp.GetMemberEpoch(), resp.GetAssignment()
	if m.own != nil {
		m.own.update(m.id, m.owned)
	}
	return resp, nil
}

func (m *member) count() int {
	n := 0
	for _, tp := range m.owned {
		n += len(tp.GetPartitions())
	}
	return n
}

// groupSetup starts a coordinator with fast group timings and a topic of
// parts partitions.
func groupSetup(t *testing.T, parts int32, mutate ...func(*Config)) (*Server, stratav1.CoordinatorClient, *meta.Store) {
	t.Helper()
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1", append([]func(*Config){func(c *Config) {
		c.GroupSessionTimeout = time.Second
		c.GroupHeartbeatInterval = 100 * time.Millisecond
		c.GroupSessionCheckInterval = 20 * time.Millisecond
	}}, mutate...)...)
	waitFor(t, "leader", c.IsLeader)
	cli := client(t, c)
	if _, err := cli.CreateTopic(testCtx(t), &stratav1.CreateTopicRequest{Name: "orders", Partitions: parts}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "topic in view", func() bool { _, ok := c.view.Topic("orders"); return ok })
	return c, cli, store
}

// untilBalanced heartbeats every member in turn until each owns want
// partitions; it fails after a bounded number of rounds.
func untilBalanced(t *testing.T, ctx context.Context, ms []*member, want int) {
	t.Helper()
	for range 200 {
		done := true
		for _, m := range ms {
			if _, err := m.heartbeat(ctx); err != nil {
				t.Fatalf("heartbeat %s: %v", m.id, err)
			}
			done = done && m.count() == want
		}
		if done {
			return
		}
	}
	t.Fatalf("members never balanced at %d partitions each", want)
}

func TestGroupNoPartitionOwnedTwice(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 12)
	own := newOwnership()
	newMember := func(id string) *member {
		return &member{id: id, group: "g", topics: []string{"orders"}, cli: cli, own: own}
	}
	// Members join one at a time while the others keep heartbeating
	// concurrently, then leave one at a time.
	var (
		mu      sync.Mutex
		members []*member
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(m *member) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := m.heartbeat(ctx); err != nil {
				t.Errorf("heartbeat %s: %v", m.id, err)
				return
			}
		}
	}
	waitCounts := func(want map[string]int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("assignment %v", want), func() bool {
			got, _ := own.counts()
			return maps(got, want)
		})
	}
	for i, want := range []map[string]int{
		{"m0": 12},
		{"m0": 6, "m1": 6},
		{"m0": 4, "m1": 4, "m2": 4},
	} {
		m := newMember(fmt.Sprintf("m%d", i))
		mu.Lock()
		members = append(members, m)
		mu.Unlock()
		wg.Add(1)
		go run(m)
		waitCounts(want)
	}
	own.check(t)
	// A fourth member joins: 3,3,3,3; then m1 leaves cleanly: 4,4,4.
	m3 := newMember("m3")
	wg.Add(1)
	go run(m3)
	waitCounts(map[string]int{"m0": 3, "m1": 3, "m2": 3, "m3": 3})
	close(stop)
	wg.Wait()
	if _, err := cli.LeaveGroup(ctx, &stratav1.LeaveGroupRequest{Group: "g", MemberId: "m1", MemberEpoch: members[1].epoch}); err != nil {
		t.Fatal(err)
	}
	own.drop("m1")
	rest := []*member{members[0], members[2], m3}
	untilBalanced(t, ctx, rest, 4)
	own.check(t)

	desc, err := cli.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetState() != "Stable" || len(desc.GetMembers()) != 3 || len(desc.GetPartitions()) != 12 {
		t.Fatalf("describe: state %s, %d members, %d partitions", desc.GetState(), len(desc.GetMembers()), len(desc.GetPartitions()))
	}
}

func maps(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestGroupSessionTimeoutRemovesMember(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 12)
	own := newOwnership()
	ms := []*member{
		{id: "a", group: "g", topics: []string{"orders"}, cli: cli, own: own},
		{id: "b", group: "g", topics: []string{"orders"}, cli: cli, own: own},
		{id: "c", group: "g", topics: []string{"orders"}, cli: cli, own: own},
	}
	untilBalanced(t, ctx, ms, 4)
	// c dies without leaving: the others keep heartbeating and get its
	// partitions once its one-second session ends.
	killed := time.Now()
	live := ms[:2]
	deadline := time.Now().Add(20 * time.Second)
	for live[0].count()+live[1].count() < 12 {
		if time.Now().After(deadline) {
			t.Fatal("the dead member's partitions were never reassigned")
		}
		for _, m := range live {
			resp, err := m.heartbeat(ctx)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond) // the protocol's own pacing
		}
		if live[0].count()+live[1].count() == 12 {
			break
		}
	}
	if took := time.Since(killed); took < time.Second {
		t.Errorf("partitions moved after %v, before the session timeout", took)
	}
	if live[0].count() != 6 || live[1].count() != 6 {
		t.Errorf("after the timeout: %d and %d partitions, want 6 and 6", live[0].count(), live[1].count())
	}
	// The removed member is told so and its commits are rejected.
	_, err := ms[2].heartbeat(ctx)
	wantAPIErr(t, err, apierr.ErrUnknownMember)
}

func TestGroupStaleEpochCannotCommit(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 4)
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a}, 4)
	commit := func(id string, epoch int64, p int32) error {
		_, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: id, MemberEpoch: epoch,
			Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: p, Offset: 10}}}}})
		return err
	}
	if err := commit("a", a.epoch, 0); err != nil {
		t.Fatalf("commit at the current epoch: %v", err)
	}
	oldEpoch := a.epoch
	// b joins: a's assignment changes, and with it a's epoch.
	b := &member{id: "b", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a, b}, 2)
	if a.epoch == oldEpoch {
		t.Fatal("a's epoch did not change with its assignment")
	}
	bp := b.owned[0].GetPartitions()[0]
	tests := []struct {
		name  string
		err   error
		wantE error
	}{
		{"stale epoch", commit("a", oldEpoch, a.owned[0].GetPartitions()[0]), apierr.ErrFencedMember},
		{"partition of another member", commit("a", a.epoch, bp), apierr.ErrFencedMember},
		{"unknown member", commit("zz", 1, 0), apierr.ErrUnknownMember},
		{"negative offset", func() error {
			_, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch,
				Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: -3}}}}})
			return err
		}(), apierr.ErrInvalidRequest},
		{"unknown topic", func() error {
			_, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch,
				Topics: []*stratav1.TopicOffsets{{Topic: "nope", Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: 3}}}}})
			return err
		}(), apierr.ErrUnknownTopic},
		{"stale heartbeat claiming another's partition", func() error {
			_, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "a", MemberEpoch: oldEpoch, Topics: []string{"orders"},
				Owned: []*stratav1.TopicPartitions{{Topic: "orders", Partitions: []int32{bp}}}})
			return err
		}(), apierr.ErrFencedMember},
		{"heartbeat from the future", func() error {
			_, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch + 1, Topics: []string{"orders"}})
			return err
		}(), apierr.ErrFencedMember},
		{"bad group name", func() error {
			_, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "a/b", MemberId: "a"})
			return err
		}(), apierr.ErrInvalidGroupID},
		{"unknown assignor", func() error {
			_, err := cli.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{Group: "g", MemberId: "x", Assignor: "roundrobin"})
			return err
		}(), apierr.ErrInvalidRequest},
		{"reset with live members", func() error {
			_, err := cli.ResetOffsets(ctx, &stratav1.ResetOffsetsRequest{Group: "g",
				Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: 0}}}}})
			return err
		}(), apierr.ErrGroupNotEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantAPIErr(t, tt.err, tt.wantE) })
	}
	// The rejected commits changed nothing.
	offs, err := cli.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if got := offs.GetTopics(); len(got) != 1 || len(got[0].GetPartitions()) != 1 || got[0].GetPartitions()[0].GetOffset() != 10 {
		t.Fatalf("committed offsets %v, want only orders/0@10", got)
	}
}

// TestGroupStateSurvivesLeaderFailover commits offsets, fails the leader
// over, and checks that members keep their epochs and assignment and that
// every committed offset is still there.
func TestGroupStateSurvivesLeaderFailover(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	fast := func(c *Config) {
		c.GroupSessionTimeout = 5 * time.Second
		c.GroupHeartbeatInterval = 100 * time.Millisecond
	}
	c1 := startCoordinator(t, store, "c1", fast)
	waitFor(t, "leader", c1.IsLeader)
	c2 := startCoordinator(t, newStore(t, etcd.Endpoints(), store.Prefix()), "c2", fast)
	cli1 := client(t, c1)
	if _, err := cli1.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "orders", Partitions: 12}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "topic in views", func() bool {
		_, ok1 := c1.view.Topic("orders")
		_, ok2 := c2.view.Topic("orders")
		return ok1 && ok2
	})
	own := newOwnership()
	ms := []*member{
		{id: "a", group: "g", topics: []string{"orders"}, cli: cli1, own: own},
		{id: "b", group: "g", topics: []string{"orders"}, cli: cli1, own: own},
		{id: "c", group: "g", topics: []string{"orders"}, cli: cli1, own: own},
	}
	untilBalanced(t, ctx, ms, 4)
	commitAll := func(cli stratav1.CoordinatorClient, base int64) {
		for _, m := range ms {
			var tos []*stratav1.TopicOffsets
			for _, tp := range m.owned {
				to := &stratav1.TopicOffsets{Topic: tp.GetTopic()}
				for _, p := range tp.GetPartitions() {
					to.Partitions = append(to.Partitions, &stratav1.PartitionOffset{Partition: p, Offset: base + int64(p)})
				}
				tos = append(tos, to)
			}
			if _, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: m.id, MemberEpoch: m.epoch, Topics: tos}); err != nil {
				t.Fatalf("commit %s: %v", m.id, err)
			}
		}
	}
	commitAll(cli1, 100)
	before := map[string][]*stratav1.TopicPartitions{}
	epochs := map[string]int64{}
	for _, m := range ms {
		before[m.id], epochs[m.id] = m.owned, m.epoch
	}

	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "c2 leads", c2.IsLeader)
	cli2 := client(t, c2)
	for _, m := range ms {
		m.cli = cli2
		if _, err := m.heartbeat(ctx); err != nil {
			t.Fatalf("heartbeat %s after failover: %v", m.id, err)
		}
		if m.epoch != epochs[m.id] || fmt.Sprint(m.owned) != fmt.Sprint(before[m.id]) {
			t.Errorf("%s after failover: epoch %d, owned %v; before: %d, %v", m.id, m.epoch, m.owned, epochs[m.id], before[m.id])
		}
	}
	offs, err := cli2.FetchOffsets(ctx, &stratav1.FetchOffsetsRequest{Group: "g", Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, po := range offs.GetTopics()[0].GetPartitions() {
		got = append(got, po.GetOffset()-int64(po.GetPartition()))
	}
	if len(got) != 12 || slices.Max(got) != 100 || slices.Min(got) != 100 {
		t.Fatalf("offsets after failover: %v", offs.GetTopics())
	}
	// The new leader accepts commits at the members' epochs.
	commitAll(cli2, 200)
	own.check(t)
}

func TestGroupResumeAndReset(t *testing.T) {
	ctx := testCtx(t)
	_, cli, _ := groupSetup(t, 2)
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{a}, 2)
	if _, err := cli.CommitOffsets(ctx, &stratav1.CommitOffsetsRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch,
		Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: 0, Offset: 7}, {Partition: 1, Offset: 9}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.LeaveGroup(ctx, &stratav1.LeaveGroupRequest{Group: "g", MemberId: "a", MemberEpoch: a.epoch}); err != nil {
		t.Fatal(err)
	}
	list, err := cli.ListGroups(ctx, &stratav1.ListGroupsRequest{})
	if err != nil || len(list.GetGroups()) != 1 || list.GetGroups()[0].GetState() != "Empty" {
		t.Fatalf("ListGroups = %v, %v", list, err)
	}
	if _, err := cli.ResetOffsets(ctx, &stratav1.ResetOffsetsRequest{Group: "g",
		Topics: []*stratav1.TopicOffsets{{Topic: "orders", Partitions: []*stratav1.PartitionOffset{{Partition: 1, Offset: 0}}}}}); err != nil {
		t.Fatal(err)
	}
	desc, err := cli.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	var committed []int64
	for _, p := range desc.GetPartitions() {
		committed = append(committed, p.GetCommittedOffset())
	}
	if !slices.Equal(committed, []int64{7, 0}) {
		t.Fatalf("committed %v, want [7 0]", committed)
	}
	if d, err := cli.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: "nobody"}); err != nil || d.GetState() != "Dead" {
		t.Fatalf("DescribeGroup(nobody) = %v, %v; want Dead", d, err)
	}
}

func TestAssignors(t *testing.T) {
	topics := map[string]meta.Topic{
		"a": {ID: "ta", Name: "a", Partitions: 5},
		"b": {ID: "tb", Name: "b", Partitions: 2},
	}
	both := []string{"a", "b"}
	count := func(out map[string][]meta.GroupPartition) map[string]int {
		c := map[string]int{}
		for id, ps := range out {
			c[id] = len(ps)
		}
		return c
	}
	// Range: per topic, contiguous, the first members get the extra.
	r := assign(AssignorRange, []assignMember{{id: "m1", topics: both}, {id: "m2", topics: both}}, topics)
	if got := fmt.Sprint(r["m1"]); got != "[{ta 0} {ta 1} {ta 2} {tb 0}]" {
		t.Errorf("range m1 = %s", got)
	}
	// Sticky: balanced, and a new member takes only what balance needs.
	s1 := assign(AssignorSticky, []assignMember{{id: "m1", topics: both}, {id: "m2", topics: both}}, topics)
	if c := count(s1); c["m1"]+c["m2"] != 7 || max(c["m1"], c["m2"])-min(c["m1"], c["m2"]) > 1 {
		t.Errorf("sticky counts %v", c)
	}
	s2 := assign(AssignorSticky, []assignMember{{id: "m1", topics: both, prev: s1["m1"]}, {id: "m2", topics: both, prev: s1["m2"]}, {id: "m3", topics: both}}, topics)
	moved := 0
	for _, id := range []string{"m1", "m2"} {
		for _, gp := range s1[id] {
			if !slices.Contains(s2[id], gp) {
				moved++
			}
		}
	}
	if c := count(s2); moved != c["m3"] || c["m3"] != 2 {
		t.Errorf("sticky after join: counts %v, %d moved", c, moved)
	}
	// Nothing changes when nothing changed.
	s3 := assign(AssignorSticky, []assignMember{{id: "m1", topics: both, prev: s2["m1"]}, {id: "m2", topics: both, prev: s2["m2"]}, {id: "m3", topics: both, prev: s2["m3"]}}, topics)
	if fmt.Sprint(s3) != fmt.Sprint(s2) {
		t.Errorf("sticky is not stable: %v then %v", s2, s3)
	}
	// A member subscribed to nothing existing gets nothing.
	if out := assign(AssignorSticky, []assignMember{{id: "m1", topics: []string{"zzz"}}}, topics); len(out["m1"]) != 0 {
		t.Errorf("unsubscribed member got %v", out["m1"])
	}
}

// TestGroupJoinOutOfIDOrder joins a member whose id sorts before the
// others'. Its answer carries its own epoch and its session is tracked, so
// its next heartbeat is accepted and the session check does not remove it.
// (Members are stored in id order; the heartbeat once kept a pointer into
// the member list across that sort, told the joiner another member's epoch
// and refreshed another member's session instead of its own: Kafka
// clients were fenced or expired at once and gave up partitions without
// committing them.)
func TestGroupJoinOutOfIDOrder(t *testing.T) {
	ctx := testCtx(t)
	c, cli, _ := groupSetup(t, 12)
	z := &member{id: "z", group: "g", topics: []string{"orders"}, cli: cli}
	m := &member{id: "m", group: "g", topics: []string{"orders"}, cli: cli}
	untilBalanced(t, ctx, []*member{z, m}, 6)
	if z.epoch < 2 {
		t.Fatalf("z at epoch %d after giving up half its partitions, want ≥ 2", z.epoch)
	}
	a := &member{id: "a", group: "g", topics: []string{"orders"}, cli: cli}
	if _, err := a.heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if a.epoch != 1 {
		t.Errorf("joining member told epoch %d, want 1 (its own)", a.epoch)
	}
	gm := c.groups.Load()
	gm.mu.Lock()
	g := gm.groups["g"]
	gm.mu.Unlock()
	g.mu.Lock()
	deadline := g.deadline["a"]
	g.mu.Unlock()
	if time.Until(deadline) < time.Second/2 {
		t.Errorf("joining member's session ends at %v, want about a second from now", deadline)
	}
	for _, mb := range []*member{a, m, z} {
		if _, err := mb.heartbeat(ctx); err != nil {
			t.Errorf("heartbeat of %s at its epoch %d: %v", mb.id, mb.epoch, err)
		}
	}
}
