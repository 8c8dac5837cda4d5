package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Consumer group coordination (docs/consumer-groups.md), in the manner of
// Kafka's KIP-848: members heartbeat; the leader computes a target
// assignment with a server-side assignor and hands it out incrementally. A
// partition moves from member A to member B in two steps: A's heartbeat
// response leaves it out (revoke), A stops fetching, commits and reports it
// no longer owned in its next heartbeat, and only then does B's heartbeat
// response include it. No partition is ever owned by two members.
//
// The leader keeps every group in memory (groupManager, made anew for each
// leadership term) and writes each change through to etcd before it
// answers (meta.PutGroupState, a compare on the state key's revision), so
// a new leader continues from exactly what members were told.

// Limits of group requests.
const (
	maxMemberIDLen      = 255
	maxGroupTopics      = 1000
	minHeartbeatBackoff = 50 * time.Millisecond
	minRebalanceTimeout = time.Second
)

// groupManager holds the consumer groups while this coordinator leads.
type groupManager struct {
	s   *Server
	ctx context.Context // the leadership term

	mu     sync.Mutex        // guards groups
	groups map[string]*group // by name; entries are never removed in a term
}

// group is one consumer group. mu serialises every operation on it,
// etcd writes included, so the revision it compares is always its own.
type group struct {
	name string

	mu sync.Mutex // guards the fields below
	// loaded is false until st was read from etcd, and again after a
	// failed write (the next operation reads it anew).
	loaded bool
	st     meta.GroupState
	// deadline is each member's session deadline; not stored in etcd — a
	// new leader gives every member a full session timeout.
	deadline map[string]time.Time
	// revokeBy is, for each member with partitions to give up, when its
	// rebalance timeout ends: set when a revocation is first asked of it,
	// cleared when it owns no partition outside its target. Not stored
	// either; a new leader gives a full rebalance timeout.
	revokeBy map[string]time.Time
	// classic is the in-memory part of a classic group (classic.go).
	classic *classicRuntime
}

func newGroupManager(ctx context.Context, s *Server) *groupManager {
	return &groupManager{s: s, ctx: ctx, groups: map[string]*group{}}
}

// get returns the group, loaded and locked; the caller unlocks g.mu.
func (gm *groupManager) get(ctx context.Context, name string) (*group, error) {
	if err := meta.ValidateGroupName(name); err != nil {
		return nil, err
	}
	gm.mu.Lock()
	g := gm.groups[name]
	if g == nil {
		g = &group{name: name}
		gm.groups[name] = g
	}
	gm.mu.Unlock()
	g.mu.Lock()
	if !g.loaded {
		st, err := gm.s.cfg.Meta.GetGroupState(ctx, name)
		if err != nil {
			g.mu.Unlock()
			return nil, storageErr(err)
		}
		g.st, g.loaded = st, true
		g.deadline, g.revokeBy = map[string]time.Time{}, map[string]time.Time{}
		now := time.Now()
		for _, m := range st.Members {
			g.deadline[m.ID] = now.Add(time.Duration(m.SessionTimeoutMs) * time.Millisecond)
		}
		if st.Classic != nil {
			for _, m := range st.Classic.Members {
				g.deadline[m.ID] = now.Add(time.Duration(m.SessionTimeoutMs) * time.Millisecond)
			}
		}
		gm.trackRevocations(g, now)
	}
	return g, nil
}

// storageErr maps a metadata failure to an API error: a lost compare
// means another coordinator leads now (NOT_LEADER), an error that already
// has an API reason stays, anything else is STORAGE_UNAVAILABLE.
func storageErr(err error) error {
	switch {
	case errors.Is(err, meta.ErrConflict):
		return apierr.Errorf(apierr.ErrNotLeader, "group state was changed by another coordinator: %v", err)
	case status.Code(apierr.Status(err)) != codes.Internal:
		return err
	}
	return apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
}

// save writes st through to etcd and installs it; on failure the group is
// read anew by the next operation.
func (gm *groupManager) save(ctx context.Context, g *group, st meta.GroupState) error {
	rev, err := gm.s.cfg.Meta.PutGroupState(ctx, g.name, st)
	if err != nil {
		g.loaded = false
		return storageErr(err)
	}
	st.Revision = rev
	g.st = st
	gm.trackRevocations(g, time.Now())
	return nil
}

// trackRevocations starts the rebalance timeout of each member that now
// has partitions to give up and ends it for those that have none.
func (gm *groupManager) trackRevocations(g *group, now time.Time) {
	live := map[string]bool{}
	for _, m := range g.st.Members {
		live[m.ID] = true
		if !revoking(m) {
			delete(g.revokeBy, m.ID)
		} else if _, ok := g.revokeBy[m.ID]; !ok {
			g.revokeBy[m.ID] = now.Add(gm.s.cfg.GroupRebalanceTimeout)
		}
	}
	for id := range g.revokeBy {
		if !live[id] {
			delete(g.revokeBy, id)
		}
	}
}

// revoking reports whether m owns a partition outside its target.
func revoking(m meta.GroupMember) bool {
	for _, gp := range m.Owned {
		if _, in := slices.BinarySearchFunc(m.Target, gp, meta.GroupPartition.Compare); !in {
			return true
		}
	}
	return false
}

// loadAll loads every stored group at the start of a term, so that members
// of groups that never heartbeat again still time out.
func (gm *groupManager) loadAll(ctx context.Context) {
	names, err := gm.s.cfg.Meta.ListGroups(ctx)
	if err != nil {
		if ctx.Err() == nil {
			gm.s.log.Warn("groups: cannot list groups", "err", err)
		}
		return
	}
	for _, name := range names {
		if g, err := gm.get(ctx, name); err == nil {
			g.mu.Unlock()
		}
	}
}

// run expires sessions until the term ends.
func (gm *groupManager) run() {
	gm.loadAll(gm.ctx)
	t := time.NewTicker(gm.s.cfg.GroupSessionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-gm.ctx.Done():
			return
		case <-t.C:
		}
		gm.mu.Lock()
		gs := make([]*group, 0, len(gm.groups))
		for _, g := range gm.groups {
			gs = append(gs, g)
		}
		gm.mu.Unlock()
		for _, g := range gs {
			gm.expire(g)
		}
	}
}

// expire removes the members of g whose session ended.
func (gm *groupManager) expire(g *group) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.loaded {
		return
	}
	if g.st.Classic != nil {
		gm.expireClassic(g)
		return
	}
	now := time.Now()
	st := cloneState(g.st)
	var expired, stuck []string
	st.Members = slices.DeleteFunc(st.Members, func(m meta.GroupMember) bool {
		if now.After(g.deadline[m.ID]) {
			expired = append(expired, m.ID)
			return true
		}
		if by, ok := g.revokeBy[m.ID]; ok && now.After(by) {
			stuck = append(stuck, m.ID)
			return true
		}
		return false
	})
	if len(expired)+len(stuck) == 0 {
		return
	}
	gm.retarget(&st)
	if err := gm.save(gm.ctx, g, st); err != nil {
		gm.s.log.Warn("groups: cannot remove expired members", "group", g.name, "members", append(expired, stuck...), "err", err)
		return
	}
	for _, id := range append(expired, stuck...) {
		delete(g.deadline, id)
	}
	if len(expired) > 0 {
		gm.s.metrics.groupExpired.Add(float64(len(expired)))
		gm.s.log.Info("groups: session timed out", "group", g.name, "members", expired, "group_epoch", st.Epoch)
	}
	if len(stuck) > 0 {
		gm.s.metrics.groupRebalanceTimeouts.Add(float64(len(stuck)))
		gm.s.log.Warn("groups: rebalance timeout: member kept a revoked partition", "group", g.name, "members", stuck,
			"rebalance_timeout", gm.s.cfg.GroupRebalanceTimeout, "group_epoch", st.Epoch)
	}
}

// retarget recomputes the target assignment and, if it changed, bumps the
// group epoch. Owned partitions of deleted topics are dropped.
func (gm *groupManager) retarget(st *meta.GroupState) {
	topics := map[string]meta.Topic{}
	ids := map[string]bool{}
	for _, t := range gm.s.view.Topics() {
		topics[t.Name] = t
		ids[t.ID] = true
	}
	in := make([]assignMember, len(st.Members))
	for i, m := range st.Members {
		in[i] = assignMember{id: m.ID, topics: m.Topics, prev: m.Target}
	}
	target := assign(st.Assignor, in, topics)
	changed := false
	for i := range st.Members {
		m := &st.Members[i]
		m.Owned = slices.DeleteFunc(m.Owned, func(gp meta.GroupPartition) bool { return !ids[gp.TopicID] })
		if !slices.Equal(m.Target, target[m.ID]) {
			m.Target, changed = target[m.ID], true
		}
	}
	if changed {
		st.Epoch++
	}
}

// heartbeatRequest is a validated GroupHeartbeat.
type heartbeatRequest struct {
	group, member, clientID, assignor string
	topicRegex                        string
	epoch                             int64
	topics                            []string
	owned                             []meta.GroupPartition
	sessionTimeout                    time.Duration
}

// heartbeatResult is what the member is told.
type heartbeatResult struct {
	epoch, groupEpoch int64
	assignment        []meta.GroupPartition
	interval          time.Duration
	sessionTimeout    time.Duration
}

// heartbeat applies one heartbeat: join or check the member epoch, note
// the acknowledged revocations, recompute the target, and hand the member
// its partitions that nobody else owns.
func (gm *groupManager) heartbeat(ctx context.Context, req heartbeatRequest) (heartbeatResult, error) {
	g, err := gm.get(ctx, req.group)
	if err != nil {
		return heartbeatResult{}, err
	}
	defer g.mu.Unlock()
	st := cloneState(g.st)
	if err := serverSideOf(&st, req.group); err != nil {
		return heartbeatResult{}, err
	}
	if err := gm.joinOrCheck(&st, req); err != nil {
		return heartbeatResult{}, err
	}
	gm.retarget(&st)
	m := &st.Members[slices.IndexFunc(st.Members, func(m meta.GroupMember) bool { return m.ID == req.member })]
	assignment, pending := handOut(m, st.Members)
	if req.epoch == 0 || !slices.Equal(assignment, m.Assigned) {
		m.PrevEpoch = m.Epoch
		m.Epoch++
		m.Assigned = assignment
	}
	if !st.Equal(g.st) {
		if err := gm.save(ctx, g, st); err != nil {
			return heartbeatResult{}, err
		}
	}
	timeout := time.Duration(m.SessionTimeoutMs) * time.Millisecond
	g.deadline[m.ID] = time.Now().Add(timeout)
	interval := min(gm.s.cfg.GroupHeartbeatInterval, timeout/3)
	if pending {
		interval = max(interval/10, minHeartbeatBackoff)
	}
	return heartbeatResult{epoch: m.Epoch, groupEpoch: st.Epoch, assignment: assignment, interval: interval, sessionTimeout: timeout}, nil
}

// joinOrCheck adds a joining member (epoch 0) to st or checks a member's
// epoch, then records what its heartbeat says: session timeout (on join),
// client id, subscription, and the revocations it acknowledged.
func (gm *groupManager) joinOrCheck(st *meta.GroupState, req heartbeatRequest) error {
	i := slices.IndexFunc(st.Members, func(m meta.GroupMember) bool { return m.ID == req.member })
	switch {
	case req.epoch == 0 && i < 0:
		if len(st.Members) == 0 && req.assignor != "" {
			st.Assignor = req.assignor
		}
		if st.Assignor == "" {
			st.Assignor = AssignorSticky
		}
		// Members are kept in ID order, the order they are stored in.
		i, _ = slices.BinarySearchFunc(st.Members, req.member, func(m meta.GroupMember, id string) int { return strings.Compare(m.ID, id) })
		st.Members = slices.Insert(st.Members, i, meta.GroupMember{ID: req.member})
	case req.epoch == 0:
		// A rejoin: the member owns nothing any more.
		st.Members[i].Owned = nil
	case i < 0:
		return apierr.Errorf(apierr.ErrUnknownMember, "group %s has no member %s", req.group, req.member)
	case req.epoch != st.Members[i].Epoch && !previousEpochOK(st.Members[i], req):
		return apierr.Errorf(apierr.ErrFencedMember, "member %s of group %s has epoch %d, not %d",
			req.member, req.group, st.Members[i].Epoch, req.epoch)
	}
	m := &st.Members[i]
	if req.epoch == 0 {
		timeout := req.sessionTimeout
		if timeout == 0 {
			timeout = gm.s.cfg.GroupSessionTimeout
		}
		m.SessionTimeoutMs = int32(timeout / time.Millisecond)
	}
	m.ClientID = req.clientID
	m.Topics, m.TopicRegex = req.topics, req.topicRegex
	if req.epoch != 0 {
		// Partitions missing from owned were given up (revocations
		// acknowledged); the member cannot claim others by listing them.
		m.Owned = slices.DeleteFunc(m.Owned, func(gp meta.GroupPartition) bool {
			_, found := slices.BinarySearchFunc(req.owned, gp, meta.GroupPartition.Compare)
			return !found
		})
	}
	return nil
}

// previousEpochOK accepts a heartbeat at the member's previous epoch whose
// answer was lost (KIP-848): the member missed one assignment change, but
// it claims no partition the group does not count as its own, so
// carrying on from its report is safe — what it lists is checked against
// Owned, what it left out counts as given up, and the answer tells it the
// current epoch and assignment.
func previousEpochOK(m meta.GroupMember, req heartbeatRequest) bool {
	if m.PrevEpoch == 0 || req.epoch != m.PrevEpoch {
		return false
	}
	for _, gp := range req.owned {
		if _, in := slices.BinarySearchFunc(m.Owned, gp, meta.GroupPartition.Compare); !in {
			return false
		}
	}
	return true
}

// handOut gives m the partitions of its target that no other member owns
// (revoke before assign) and keeps those it must still revoke in m.Owned.
// It returns the assignment to tell m, and whether part of its target
// waits for another member to give it up.
func handOut(m *meta.GroupMember, members []meta.GroupMember) (assignment []meta.GroupPartition, pending bool) {
	owner := map[meta.GroupPartition]string{}
	for _, o := range members {
		for _, gp := range o.Owned {
			owner[gp] = o.ID
		}
	}
	var revoking []meta.GroupPartition
	for _, gp := range m.Owned {
		if _, in := slices.BinarySearchFunc(m.Target, gp, meta.GroupPartition.Compare); !in {
			revoking = append(revoking, gp)
		}
	}
	for _, gp := range m.Target {
		switch owner[gp] {
		case "", m.ID:
			assignment = append(assignment, gp)
		default:
			pending = true // waiting for its owner to revoke it
		}
	}
	m.Owned = append(slices.Clone(assignment), revoking...)
	slices.SortFunc(m.Owned, meta.GroupPartition.Compare)
	return assignment, pending
}

// leave removes a member at once; a negative epoch matches any.
func (gm *groupManager) leave(ctx context.Context, group, member string, epoch int64) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	st := cloneState(g.st)
	i := slices.IndexFunc(st.Members, func(m meta.GroupMember) bool { return m.ID == member })
	if i < 0 {
		return nil // gone already: leaving is idempotent
	}
	// A negative epoch leaves at whatever epoch the member is (Kafka's
	// ConsumerGroupHeartbeat leaves with -1 or -2).
	if epoch >= 0 && epoch != st.Members[i].Epoch {
		return apierr.Errorf(apierr.ErrFencedMember, "member %s of group %s has epoch %d, not %d", member, group, st.Members[i].Epoch, epoch)
	}
	st.Members = slices.Delete(st.Members, i, i+1)
	gm.retarget(&st)
	if err := gm.save(ctx, g, st); err != nil {
		return err
	}
	delete(g.deadline, member)
	gm.s.log.Info("groups: member left", "group", group, "member", member, "group_epoch", st.Epoch)
	return nil
}

// commit stores offsets for a member, which must be at its current epoch
// and own every partition it commits.
func (gm *groupManager) commit(ctx context.Context, group, member string, epoch int64, offsets []meta.CommittedOffset) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	return gm.commitLocked(ctx, g, member, epoch, false, offsets)
}

// commitLocked is commit with g.mu held; older accepts an earlier epoch
// of the member (never 0) for partitions it still owns.
func (gm *groupManager) commitLocked(ctx context.Context, g *group, member string, epoch int64, older bool, offsets []meta.CommittedOffset) error {
	group := g.name
	i := slices.IndexFunc(g.st.Members, func(m meta.GroupMember) bool { return m.ID == member })
	if i < 0 {
		return apierr.Errorf(apierr.ErrUnknownMember, "group %s has no member %s", group, member)
	}
	m := g.st.Members[i]
	if epoch != m.Epoch && (!older || epoch <= 0 || epoch > m.Epoch) {
		return gm.rejectCommit(apierr.Errorf(apierr.ErrFencedMember, "member %s of group %s has epoch %d, not %d: commit rejected", member, group, m.Epoch, epoch))
	}
	for _, o := range offsets {
		gp := meta.GroupPartition{TopicID: o.TopicID, Partition: o.Partition}
		if _, in := slices.BinarySearchFunc(m.Owned, gp, meta.GroupPartition.Compare); !in {
			return gm.rejectCommit(apierr.Errorf(apierr.ErrFencedMember, "member %s of group %s does not own partition %d of topic %s: commit rejected",
				member, group, o.Partition, o.TopicID))
		}
	}
	return gm.writeOffsets(ctx, g, offsets)
}

// rejectCommit logs a member's commit refused by its epoch or ownership,
// which a client that keeps committing and never rejoins (its lag then
// stays) would otherwise show nowhere on the server, and returns err.
func (gm *groupManager) rejectCommit(err error) error {
	gm.s.log.Info("groups: commit rejected", "err", err)
	return err
}

// reset stores offsets for a group without members.
func (gm *groupManager) reset(ctx context.Context, group string, offsets []meta.CommittedOffset) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	if n := len(g.st.Members) + classicMembers(g.st); n > 0 {
		return apierr.Errorf(apierr.ErrGroupNotEmpty, "group %s has %d live members; stop them first", group, n)
	}
	return gm.writeOffsets(ctx, g, offsets)
}

// writeOffsets commits offsets with a compare on the group's state
// revision. g.mu must be held.
func (gm *groupManager) writeOffsets(ctx context.Context, g *group, offsets []meta.CommittedOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	if err := gm.s.cfg.Meta.CommitGroupOffsets(ctx, g.name, g.st.Revision, offsets); err != nil {
		if errors.Is(err, meta.ErrConflict) {
			g.loaded = false
		}
		return storageErr(err)
	}
	gm.s.metrics.groupCommits.Inc()
	gm.s.metrics.groupCommitOffsets.Add(float64(len(offsets)))
	return nil
}

// snapshot returns a copy of the group's state.
func (gm *groupManager) snapshot(ctx context.Context, group string) (meta.GroupState, error) {
	g, err := gm.get(ctx, group)
	if err != nil {
		return meta.GroupState{}, err
	}
	defer g.mu.Unlock()
	return cloneState(g.st), nil
}

// groupStateName is a group's state as ListGroups and DescribeGroup show
// it.
func groupStateName(st meta.GroupState) string {
	if classicMembers(st) > 0 {
		return st.Classic.State
	}
	if len(st.Members) == 0 {
		return "Empty"
	}
	for _, m := range st.Members {
		if !slices.Equal(m.Owned, m.Target) {
			return "Reconciling"
		}
	}
	return "Stable"
}

func cloneState(st meta.GroupState) meta.GroupState {
	out := st
	out.Members = make([]meta.GroupMember, len(st.Members))
	for i, m := range st.Members {
		m.Topics = slices.Clone(m.Topics)
		m.Owned = slices.Clone(m.Owned)
		m.Target = slices.Clone(m.Target)
		m.Assigned = slices.Clone(m.Assigned)
		out.Members[i] = m
	}
	if st.Classic != nil {
		c := *st.Classic
		c.Members = slices.Clone(c.Members)
		for i := range c.Members {
			c.Members[i].Protocols = slices.Clone(c.Members[i].Protocols)
		}
		out.Classic = &c
	}
	return out
}

func (c *Config) setGroupDefaults() {
	if c.GroupSessionTimeout == 0 {
		c.GroupSessionTimeout = DefaultGroupSessionTimeout
	}
	if c.GroupHeartbeatInterval == 0 {
		c.GroupHeartbeatInterval = DefaultGroupHeartbeatInterval
	}
	if c.GroupSessionCheckInterval == 0 {
		c.GroupSessionCheckInterval = DefaultGroupSessionCheckInterval
	}
	if c.GroupRebalanceTimeout == 0 {
		c.GroupRebalanceTimeout = DefaultGroupRebalanceTimeout
	}
}

func (c Config) validateGroups() error {
	switch {
	case c.GroupSessionTimeout < meta.MinSessionTimeout || c.GroupSessionTimeout > meta.MaxSessionTimeout:
		return fmt.Errorf("coordinator: config: GroupSessionTimeout %v, want %v..%v", c.GroupSessionTimeout, meta.MinSessionTimeout, meta.MaxSessionTimeout)
	case c.GroupHeartbeatInterval < 10*time.Millisecond || c.GroupHeartbeatInterval > c.GroupSessionTimeout:
		return fmt.Errorf("coordinator: config: GroupHeartbeatInterval %v, want 10ms..GroupSessionTimeout", c.GroupHeartbeatInterval)
	case c.GroupSessionCheckInterval <= 0:
		return fmt.Errorf("coordinator: config: GroupSessionCheckInterval %v must be positive", c.GroupSessionCheckInterval)
	case c.GroupRebalanceTimeout < minRebalanceTimeout || c.GroupRebalanceTimeout > maxRebalanceTimeout:
		return fmt.Errorf("coordinator: config: GroupRebalanceTimeout %v, want %v..%v", c.GroupRebalanceTimeout, minRebalanceTimeout, maxRebalanceTimeout)
	}
	return nil
}

// runGroups coordinates consumer groups until ctx (the leadership) ends
// and closes the returned channel when it has stopped.
func (s *Server) runGroups(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	gm := newGroupManager(ctx, s)
	s.groups.Store(gm)
	go func() {
		defer close(done)
		gm.run()
		s.groups.CompareAndSwap(gm, nil)
	}()
	return done
}
