package client

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
)

// Errors of consumer groups.
var (
	// ErrFencedMember: the member's epoch is stale; its commits are
	// rejected and it rejoins by itself.
	ErrFencedMember = apierr.ErrFencedMember
	// ErrUnknownMember: the group no longer knows the member (its session
	// ended); it rejoins by itself.
	ErrUnknownMember = apierr.ErrUnknownMember
	// ErrGroupNotEmpty: ResetGroupOffsets, DeleteGroup or
	// DeleteGroupOffsets on a group with live members.
	ErrGroupNotEmpty = apierr.ErrGroupNotEmpty
	// ErrUnknownGroup: DeleteGroup or DeleteGroupOffsets of a group with
	// nothing stored.
	ErrUnknownGroup = apierr.ErrUnknownGroup
	// ErrInvalidGroupID: the group id is empty, too long, or has a
	// control character, a space or '/'. It is an ErrInvalidRequest too.
	ErrInvalidGroupID = apierr.ErrInvalidGroupID
	// ErrInvalidSessionTimeout: the member asked for a session timeout
	// outside 1 s–5 m. It is an ErrInvalidRequest too.
	ErrInvalidSessionTimeout = apierr.ErrInvalidSessionTimeout
)

// GroupConsumer is a member of a consumer group: it shares the partitions
// of its subscribed topics with the group's other members and resumes
// from the group's committed offsets (docs/consumer-groups.md).
//
// A background goroutine heartbeats to the coordinator (through the
// proxy). The coordinator hands out partitions incrementally: a partition
// moving to another member is first revoked here — fetching stops,
// OnRevoked runs, its offset is committed, and the next heartbeat reports
// it given up — and only then assigned to the other member. So two
// members never own a partition at once, and the others keep consuming
// during a rebalance.
//
// Delivery is at least once: records processed but not yet committed when
// a member dies are read again by the partition's next owner.
type GroupConsumer struct {
	c        *Client
	cfg      groupConfig
	cons     *Consumer
	group    string
	memberID string

	// stop ends the background goroutine; done closes when it has ended.
	stop chan struct{}
	done chan struct{}
	// async tracks CommitAsync's goroutines; Close waits for them.
	async sync.WaitGroup

	// rpcMu serialises heartbeats and commits, so that a commit always
	// carries the latest member epoch. It guards epoch and giveUpAt.
	rpcMu sync.Mutex
	epoch int64
	// giveUpAt is when this member drops its partitions if no heartbeat
	// succeeds before (see giveUpTime); zero while it has no epoch.
	giveUpAt time.Time
	// matched are the topics SubscribePattern matched at matchedAt.
	// Guarded by rpcMu.
	matched   []string
	matchedAt time.Time

	mu sync.Mutex // guards the fields below
	// owned are the partitions this member owns.
	owned map[topicPartition]bool
	// marked is the next offset to commit per partition: after the last
	// processed record.
	marked map[topicPartition]int64
	// polled is the offset after the last record the latest Poll
	// returned; without AutoCommitMarks it becomes marked at the next
	// Poll, a commit call or Close.
	polled map[topicPartition]int64
	// committed is the last offset committed per partition.
	committed map[topicPartition]int64
	closed    bool
}

// NewGroupConsumer joins group as a new member, subscribed to the topics
// of Subscribe (required). It returns at once; partitions arrive with the
// first heartbeat answers, and Poll waits for them.
func (c *Client) NewGroupConsumer(group string, opts ...GroupOpt) (*GroupConsumer, error) {
	cfg := defaultGroupConfig()
	for _, o := range opts {
		o.applyGroup(&cfg)
	}
	if group == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalidGroupID)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.topics = slices.Compact(slices.Sorted(slices.Values(cfg.topics)))
	cons, err := c.NewConsumer(cfg.consumer...)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	g := &GroupConsumer{
		c: c, cfg: cfg, cons: cons, group: group, memberID: hex.EncodeToString(b[:]),
		stop: make(chan struct{}), done: make(chan struct{}),
		owned: map[topicPartition]bool{}, marked: map[topicPartition]int64{},
		polled: map[topicPartition]int64{}, committed: map[topicPartition]int64{},
	}
	go g.run()
	return g, nil
}

// MemberID returns the member's ID in the group.
func (g *GroupConsumer) MemberID() string { return g.memberID }

// Assignment returns the partitions this member owns now.
func (g *GroupConsumer) Assignment() []TopicPartition {
	g.mu.Lock()
	defer g.mu.Unlock()
	return exportTPs(mapKeys(g.owned))
}

// Poll returns records of the partitions this member owns, waiting until
// there is at least one or ctx ends (see Consumer.Poll). Without
// AutoCommitMarks, the records of the previous Poll count as processed
// from now on and are committed with the next commit.
func (g *GroupConsumer) Poll(ctx context.Context) ([]*Record, error) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	g.promotePolledLocked()
	g.mu.Unlock()
	for {
		recs, err := g.cons.Poll(ctx)
		g.mu.Lock()
		// Records of partitions revoked while they were on their way are
		// dropped: the partition's next owner reads them.
		recs = slices.DeleteFunc(recs, func(r *Record) bool { return !g.owned[topicPartition{r.Topic, r.Partition}] })
		for _, r := range recs {
			g.polled[topicPartition{r.Topic, r.Partition}] = r.Offset + 1
		}
		g.mu.Unlock()
		if len(recs) > 0 || err != nil {
			return recs, err
		}
	}
}

// promotePolledLocked counts the records Poll returned as processed,
// unless only marks count. g.mu must be held.
func (g *GroupConsumer) promotePolledLocked() {
	if g.cfg.autoCommitMarks {
		return
	}
	for tp, off := range g.polled {
		if g.owned[tp] && off > g.marked[tp] {
			g.marked[tp] = off
		}
	}
	clear(g.polled)
}

// MarkRecords marks records as processed: the next commit stores the
// offset after the highest marked record of each partition. With
// AutoCommitMarks only marked records are committed.
func (g *GroupConsumer) MarkRecords(recs ...*Record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		if g.owned[tp] && r.Offset+1 > g.marked[tp] {
			g.marked[tp] = r.Offset + 1
		}
	}
}

// CommitSync commits what has been consumed (every record Poll returned,
// or the marked ones with AutoCommitMarks) for the partitions this member
// owns, in one request, and waits for the answer. A member whose epoch is
// stale gets ErrFencedMember.
func (g *GroupConsumer) CommitSync(ctx context.Context) error {
	g.mu.Lock()
	g.promotePolledLocked()
	g.mu.Unlock()
	g.rpcMu.Lock()
	defer g.rpcMu.Unlock()
	return g.commitLocked(ctx, nil)
}

// CommitAsync is CommitSync in the background; done (may be nil) gets the
// result. Close waits for commits still running. After Close, done gets
// ErrClosed.
func (g *GroupConsumer) CommitAsync(done func(error)) {
	g.mu.Lock()
	closed := g.closed
	if !closed {
		g.async.Add(1)
	}
	g.mu.Unlock()
	if closed {
		if done != nil {
			done(ErrClosed)
		}
		return
	}
	go func() {
		defer g.async.Done()
		ctx, cancel := context.WithTimeout(context.Background(), g.c.cfg.requestTimeout)
		defer cancel()
		err := g.CommitSync(ctx)
		if done != nil {
			done(err)
		}
	}()
}

// commitLocked commits the marked offsets of owned partitions (of only,
// if not nil) that moved since the last commit. g.rpcMu must be held.
func (g *GroupConsumer) commitLocked(ctx context.Context, only []topicPartition) error {
	g.mu.Lock()
	todo := map[topicPartition]int64{}
	for tp, off := range g.marked {
		if g.owned[tp] && off > g.committed[tp] && (only == nil || slices.Contains(only, tp)) {
			todo[tp] = off
		}
	}
	g.mu.Unlock()
	if len(todo) == 0 || g.epoch == 0 {
		return nil
	}
	req := &stratav1.CommitOffsetsRequest{Group: g.group, MemberId: g.memberID, MemberEpoch: g.epoch}
	byTopic := map[string]*stratav1.TopicOffsets{}
	for _, tp := range slices.SortedFunc(maps.Keys(todo), compareTP) {
		to := byTopic[tp.topic]
		if to == nil {
			to = &stratav1.TopicOffsets{Topic: tp.topic}
			byTopic[tp.topic] = to
			req.Topics = append(req.Topics, to)
		}
		to.Partitions = append(to.Partitions, &stratav1.PartitionOffset{Partition: tp.partition, Offset: todo[tp]})
	}
	if _, err := call(ctx, g.c, g.c.api.CommitOffsets, req); err != nil {
		return err
	}
	g.mu.Lock()
	for tp, off := range todo {
		g.committed[tp] = max(g.committed[tp], off)
	}
	g.mu.Unlock()
	return nil
}

// run heartbeats and auto-commits until Close.
func (g *GroupConsumer) run() {
	defer close(g.done)
	hb := time.NewTimer(0)
	defer hb.Stop()
	var commits <-chan time.Time
	if g.cfg.autoCommitInterval > 0 {
		t := time.NewTicker(g.cfg.autoCommitInterval)
		defer t.Stop()
		commits = t.C
	}
	attempt := 0
	for {
		select {
		case <-g.stop:
			return
		case <-commits:
			// Records of the latest Poll may still be in work: only
			// earlier ones (and marks) are committed.
			g.rpcMu.Lock()
			ctx, cancel := g.rpcContext()
			_ = g.commitLocked(ctx, nil) // a failure is retried at the next tick
			g.rpcMu.Unlock()
			cancel()
			continue
		case <-hb.C:
		}
		next, err := g.heartbeat()
		if err != nil {
			attempt++
			next = g.untilGiveUp(backoff.Delay(g.c.cfg.backoffMin, g.c.cfg.backoffMax, attempt))
		} else {
			attempt = 0
		}
		hb.Reset(next)
	}
}

// heartbeat sends one heartbeat and applies the answer; it returns when
// to send the next one.
func (g *GroupConsumer) heartbeat() (time.Duration, error) {
	g.mu.Lock()
	owned := mapKeys(g.owned)
	g.mu.Unlock()
	resp, lost, err := g.beat(owned)
	ctx, cancel := context.WithTimeout(context.Background(), g.c.cfg.requestTimeout)
	defer cancel()
	switch {
	case lost:
		// The group has moved on without us, or may have: drop
		// everything, commit nothing (it would be rejected), and rejoin.
		g.revoke(ctx, owned, false)
		return 0, nil
	case err != nil:
		return 0, err
	}
	assigned := map[topicPartition]bool{}
	for _, tp := range resp.GetAssignment() {
		for _, p := range tp.GetPartitions() {
			assigned[topicPartition{tp.GetTopic(), p}] = true
		}
	}
	var revoked, added []topicPartition
	for _, tp := range owned {
		if !assigned[tp] {
			revoked = append(revoked, tp)
		}
	}
	g.mu.Lock()
	for tp := range assigned {
		if !g.owned[tp] {
			added = append(added, tp)
		}
	}
	g.mu.Unlock()
	if len(revoked) > 0 {
		g.revoke(ctx, revoked, true)
		return 0, nil // report the revocation at once
	}
	if len(added) > 0 {
		if err := g.assign(ctx, added); err != nil {
			return 0, err
		}
	}
	return time.Duration(resp.GetHeartbeatIntervalMs()) * time.Millisecond, nil
}

// beat sends one heartbeat reporting owned. lost says the member must drop
// its partitions: it was fenced or removed, or its heartbeats failed until
// its give-up time.
func (g *GroupConsumer) beat(owned []topicPartition) (resp *stratav1.GroupHeartbeatResponse, lost bool, err error) {
	g.rpcMu.Lock()
	defer g.rpcMu.Unlock()
	if g.sessionLost() {
		g.epoch, g.giveUpAt = 0, time.Time{}
		return nil, true, nil
	}
	ctx, cancel := g.rpcContext()
	defer cancel()
	sent := time.Now()
	resp, err = g.c.api.GroupHeartbeat(ctx, &stratav1.GroupHeartbeatRequest{
		Group: g.group, MemberId: g.memberID, MemberEpoch: g.epoch, Topics: g.subscription(ctx), TopicRegex: g.cfg.pattern,
		Owned: toTopicPartitions(owned), Assignor: g.cfg.assignor,
		SessionTimeoutMs: int32(g.cfg.sessionTimeout / time.Millisecond), ClientId: g.cfg.clientID,
	})
	if err != nil {
		err = apierr.FromStatus(err)
		if errors.Is(err, ErrFencedMember) || errors.Is(err, ErrUnknownMember) || g.sessionLost() {
			g.epoch, g.giveUpAt = 0, time.Time{}
			return nil, true, nil
		}
		return nil, false, err
	}
	g.epoch = resp.GetMemberEpoch()
	g.giveUpAt = giveUpTime(sent, time.Duration(resp.GetSessionTimeoutMs())*time.Millisecond)
	return resp, false, nil
}

// subscription returns the topics to subscribe to: Subscribe's, and those
// SubscribePattern matches, looked up at most every PatternRefresh. A
// failed lookup keeps the topics matched before. g.rpcMu must be held.
func (g *GroupConsumer) subscription(ctx context.Context) []string {
	if g.cfg.patternRE == nil {
		return g.cfg.topics
	}
	if g.matchedAt.IsZero() || time.Since(g.matchedAt) >= PatternRefresh {
		if resp, err := g.c.api.ListTopics(ctx, &stratav1.ListTopicsRequest{}); err == nil {
			g.matched, g.matchedAt = g.matched[:0], time.Now()
			for _, t := range resp.GetTopics() {
				if g.cfg.patternRE.MatchString(t.GetName()) {
					g.matched = append(g.matched, t.GetName())
				}
			}
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(g.cfg.topics), g.matched...))))
}

// giveUpTime is when a member whose heartbeat sent at sent was answered
// with session timeout session drops its partitions unless a later
// heartbeat succeeds. The coordinator starts the session when it handles
// the heartbeat, after sent, and removes the member only at a session
// check after that: so the group counts the member as owner at least
// until sent+session, and the member keeps its partitions until shortly
// before, by sessionMargin.
func giveUpTime(sent time.Time, session time.Duration) time.Time {
	if session <= 0 {
		session = defaultSessionTimeout
	}
	return sent.Add(session - sessionMargin(session))
}

// sessionMargin is how much earlier than the group's earliest removal a
// member drops its partitions: a tenth of the session, at most a second.
// It covers the member's own lateness in noticing (its heartbeat
// goroutine busy in OnAssigned, a commit or a scheduling delay on a
// loaded host) and any difference in clock rate between the two hosts
// (real clocks drift by well under 0.1%, 30 ms in 30 s). Network delay
// needs no margin: it only moves the coordinator's start later.
func sessionMargin(session time.Duration) time.Duration {
	return min(session/10, time.Second)
}

// sessionLost reports whether the member has gone without a successful
// heartbeat for so long that the group may already have given its
// partitions to others. g.rpcMu must be held.
func (g *GroupConsumer) sessionLost() bool {
	return g.epoch != 0 && !g.giveUpAt.IsZero() && !time.Now().Before(g.giveUpAt)
}

// rpcContext bounds a heartbeat or commit by the request timeout and by
// giveUpAt, so that a hanging request cannot keep the member owning its
// partitions past its session. g.rpcMu must be held.
func (g *GroupConsumer) rpcContext() (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(g.c.cfg.requestTimeout)
	if !g.giveUpAt.IsZero() && g.giveUpAt.Before(deadline) {
		deadline = g.giveUpAt
	}
	return context.WithDeadline(context.Background(), deadline)
}

// untilGiveUp caps a wait before the next heartbeat so that the member
// wakes when it must give up its partitions.
func (g *GroupConsumer) untilGiveUp(d time.Duration) time.Duration {
	g.rpcMu.Lock()
	defer g.rpcMu.Unlock()
	if g.epoch == 0 || g.giveUpAt.IsZero() {
		return d
	}
	return max(min(d, time.Until(g.giveUpAt)), 0)
}

// revoke gives partitions up: stop fetching, OnRevoked, commit (unless
// they were lost), forget them.
func (g *GroupConsumer) revoke(ctx context.Context, tps []topicPartition, commit bool) {
	if len(tps) == 0 {
		return
	}
	slices.SortFunc(tps, compareTP)
	g.cons.unassign(tps)
	if g.cfg.onRevoked != nil {
		g.cfg.onRevoked(ctx, exportTPs(tps))
	}
	if commit {
		// Records of the latest Poll may still be in work, so only
		// earlier ones (and marks) are committed: the next owner may read
		// some again, never skip any.
		g.rpcMu.Lock()
		_ = g.commitLocked(ctx, tps) // failing, the next owner reads again: at least once
		g.rpcMu.Unlock()
	}
	g.mu.Lock()
	for _, tp := range tps {
		delete(g.owned, tp)
		delete(g.marked, tp)
		delete(g.polled, tp)
		delete(g.committed, tp)
	}
	g.mu.Unlock()
}

// assign takes new partitions: position each at the group's committed
// offset (or as ConsumeStart says), then OnAssigned.
func (g *GroupConsumer) assign(ctx context.Context, tps []topicPartition) error {
	slices.SortFunc(tps, compareTP)
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	resp, err := call(ctx, g.c, g.c.api.FetchOffsets, &stratav1.FetchOffsetsRequest{Group: g.group, Topics: topics})
	if err != nil {
		return err // not taken yet: the next heartbeat answer offers them again
	}
	committed := map[topicPartition]int64{}
	for _, to := range resp.GetTopics() {
		for _, po := range to.GetPartitions() {
			committed[topicPartition{to.GetTopic(), po.GetPartition()}] = po.GetOffset()
		}
	}
	for _, tp := range tps {
		if off, ok := committed[tp]; ok && off >= 0 {
			err = g.cons.Seek(tp.topic, tp.partition, off)
		} else {
			err = g.cons.Assign(tp.topic, tp.partition)
		}
		if err != nil {
			return err
		}
	}
	g.mu.Lock()
	for _, tp := range tps {
		g.owned[tp] = true
		if off, ok := committed[tp]; ok {
			g.committed[tp], g.marked[tp] = off, off
		}
	}
	g.mu.Unlock()
	if g.cfg.onAssigned != nil {
		g.cfg.onAssigned(ctx, exportTPs(tps))
	}
	g.cons.wake()
	return nil
}

// Close commits what was consumed (see CommitSync), leaves the group so
// its partitions move to the other members at once, and stops. Poll after
// Close fails with ErrClosed.
func (g *GroupConsumer) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	<-g.done
	g.async.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), g.c.cfg.requestTimeout)
	defer cancel()
	g.mu.Lock()
	g.promotePolledLocked()
	g.mu.Unlock()
	g.rpcMu.Lock()
	defer g.rpcMu.Unlock()
	err := g.commitLocked(ctx, nil)
	if g.epoch != 0 {
		_, lerr := call(ctx, g.c, g.c.api.LeaveGroup, &stratav1.LeaveGroupRequest{Group: g.group, MemberId: g.memberID, MemberEpoch: g.epoch})
		err = errors.Join(err, lerr)
	}
	return errors.Join(err, g.cons.Close())
}

func compareTP(a, b topicPartition) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

func mapKeys(m map[topicPartition]bool) []topicPartition {
	out := make([]topicPartition, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	slices.SortFunc(out, compareTP)
	return out
}

func exportTPs(tps []topicPartition) []TopicPartition {
	out := make([]TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = TopicPartition{Topic: tp.topic, Partition: tp.partition}
	}
	return out
}

func toTopicPartitions(tps []topicPartition) []*stratav1.TopicPartitions {
	var out []*stratav1.TopicPartitions
	for _, tp := range tps { // sorted by topic
		if len(out) == 0 || out[len(out)-1].Topic != tp.topic {
			out = append(out, &stratav1.TopicPartitions{Topic: tp.topic})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, tp.partition)
	}
	return out
}
