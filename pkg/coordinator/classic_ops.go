package coordinator

import (
	"context"
	"slices"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// The classic protocol's calls after the join: SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, and session and phase expiry.

// classicMember checks that the member exists (by id; a static member's
// instance id must match) and returns its index. g.mu must be held.
func classicMember(g *group, member, instance string) (*meta.ClassicGroup, int, error) {
	c := g.st.Classic
	i := -1
	if c != nil {
		i = memberIndex(c, member)
	}
	if i < 0 || (instance != "" && c.Members[i].InstanceID != instance) {
		return nil, -1, apierr.Errorf(apierr.ErrUnknownMember, "group %s has no classic member %s", g.name, member)
	}
	return c, i, nil
}

// checkGeneration refuses a call at another generation or during the
// join phase, in Kafka's order: a stale generation first.
func checkGeneration(g *group, c *meta.ClassicGroup, generation int32) error {
	if c.State == classicPreparing {
		return apierr.Errorf(apierr.ErrRebalanceInProgress, "group %s is rebalancing: rejoin", g.name)
	}
	if generation != c.Generation {
		return apierr.Errorf(apierr.ErrIllegalGeneration, "group %s is at generation %d, not %d", g.name, c.Generation, generation)
	}
	return nil
}

// classicSyncResult answers a SyncGroup poll; done is false while the
// leader has not sent the assignment.
type classicSyncResult struct {
	done                   bool
	protocolType, protocol string
	assignment             []byte
}

// syncStep applies one SyncGroup poll with g.mu held.
func (gm *groupManager) syncStep(ctx context.Context, g *group, member, instance string, generation int32, assignments map[string][]byte) (classicSyncResult, error) {
	c, i, err := classicMember(g, member, instance)
	if err != nil {
		return classicSyncResult{}, err
	}
	if err := checkGeneration(g, c, generation); err != nil {
		return classicSyncResult{}, err
	}
	now := time.Now()
	session := time.Duration(c.Members[i].SessionTimeoutMs) * time.Millisecond
	g.deadline[member] = now.Add(session)
	rt := g.classicRT()
	rt.synced[member] = true
	if c.State == classicCompleting && member == c.Leader {
		st := cloneState(g.st)
		for j := range st.Classic.Members {
			m := &st.Classic.Members[j]
			m.Assignment = assignments[m.ID]
		}
		st.Classic.State = classicStable
		if err := gm.saveClassic(ctx, g, st); err != nil {
			return classicSyncResult{}, err
		}
		c, i = g.st.Classic, memberIndex(g.st.Classic, member)
		gm.s.log.Info("groups: classic group stable", "group", g.name, "generation", c.Generation)
	}
	if c.State != classicStable {
		rt.parked[member] = now.Add(parkFor(session))
		return classicSyncResult{}, nil
	}
	delete(rt.parked, member)
	return classicSyncResult{done: true, protocolType: c.ProtocolType, protocol: c.Protocol,
		assignment: c.Members[i].Assignment}, nil
}

// classicHeartbeat keeps a member alive.
func (gm *groupManager) classicHeartbeat(ctx context.Context, group, member, instance string, generation int32) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	c, i, err := classicMember(g, member, instance)
	if err != nil {
		return err
	}
	g.deadline[member] = time.Now().Add(time.Duration(c.Members[i].SessionTimeoutMs) * time.Millisecond)
	return checkGeneration(g, c, generation)
}

// classicLeave removes a member, by id or by instance id, and rebalances
// the others.
func (gm *groupManager) classicLeave(ctx context.Context, group, member, instance string) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	st := cloneState(g.st)
	c := st.Classic
	i := -1
	if c != nil {
		i = slices.IndexFunc(c.Members, func(m meta.ClassicMember) bool {
			return (member == "" || m.ID == member) && (instance == "" || m.InstanceID == instance)
		})
	}
	if i < 0 {
		return apierr.Errorf(apierr.ErrUnknownMember, "group %s has no classic member %s%s", group, member, instance)
	}
	id := c.Members[i].ID
	c.Members = slices.Delete(c.Members, i, i+1)
	gm.removedClassic(g, c, time.Now())
	if err := gm.saveClassic(ctx, g, st); err != nil {
		return err
	}
	delete(g.deadline, id)
	gm.s.log.Info("groups: classic member left", "group", group, "member", id, "generation", c.Generation)
	return nil
}

// removedClassic moves a group that lost members to its next state: a
// rebalance of the others, or Empty at the next generation.
func (gm *groupManager) removedClassic(g *group, c *meta.ClassicGroup, now time.Time) {
	switch {
	case len(c.Members) == 0:
		c.Generation++
		c.State, c.Protocol, c.Leader = classicEmpty, "", ""
	case c.State == classicPreparing:
		gm.maybeCompleteJoin(g, c, now)
	default:
		gm.prepareRebalance(g, c, now)
	}
}

// classicCommit stores offsets for a classic member at its generation,
// or with generation < 0 for a group without members. A group of
// server-side members takes the commit as theirs: KIP-848 members of
// Kafka clients commit with their member epoch as generation, and may
// commit at an older epoch of theirs for partitions they still own, as
// Kafka 4.3 allows — a Kafka client commits revoked partitions at the
// epoch it had before the heartbeat that revoked them.
func (gm *groupManager) classicCommit(ctx context.Context, group, member, instance string, generation int32, offsets []meta.CommittedOffset) error {
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	switch {
	case len(g.st.Members) > 0:
		return gm.commitLocked(ctx, g, member, int64(generation), true, offsets)
	case generation < 0 && member == "":
		if c := g.st.Classic; c != nil && len(c.Members) > 0 {
			return apierr.Errorf(apierr.ErrUnknownMember, "group %s has %d live members: commit without a member refused", group, len(c.Members))
		}
		return gm.writeOffsets(ctx, g, offsets)
	}
	c, i, err := classicMember(g, member, instance)
	if err != nil {
		return err
	}
	if c.State == classicCompleting {
		return apierr.Errorf(apierr.ErrRebalanceInProgress, "group %s is completing a rebalance", group)
	}
	if generation != c.Generation {
		return apierr.Errorf(apierr.ErrIllegalGeneration, "group %s is at generation %d, not %d: commit rejected", group, c.Generation, generation)
	}
	g.deadline[member] = time.Now().Add(time.Duration(c.Members[i].SessionTimeoutMs) * time.Millisecond)
	return gm.writeOffsets(ctx, g, offsets)
}

// txnCommitCheck checks the committer of transactional offsets (Kafka's
// TxnOffsetCommit v3+), whose offsets are staged in the transaction and
// stored only when it commits. As in Kafka, a request naming no member at
// generation -1 passes whatever the group (a producer that does not give
// its consumer's group metadata); otherwise the member must be in the
// group at that generation, or for a server-side member at that epoch.
// Unlike a plain commit it passes while a classic group completes a
// rebalance: the generation alone fences a zombie, whose transaction then
// aborts.
func (gm *groupManager) txnCommitCheck(ctx context.Context, group, member, instance string, generation int32) error {
	if generation < 0 && member == "" && instance == "" {
		return nil
	}
	g, err := gm.get(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	if len(g.st.Members) > 0 {
		return gm.commitLocked(ctx, g, member, int64(generation), false, nil)
	}
	c, _, err := classicMember(g, member, instance)
	if err != nil {
		return err
	}
	if generation != c.Generation {
		return apierr.Errorf(apierr.ErrIllegalGeneration, "group %s is at generation %d, not %d: transactional commit rejected", group, c.Generation, generation)
	}
	return nil
}

// expireClassic removes classic members whose session ended (unless a
// poll of theirs is in flight), ends a join phase whose rebalance timeout
// passed, and ends a sync phase the leader never completed by dropping
// the members that did not sync. g.mu must be held.
func (gm *groupManager) expireClassic(g *group) {
	c := g.st.Classic
	rt := g.classicRT()
	now := time.Now()
	for id, until := range rt.pending {
		if now.After(until) {
			delete(rt.pending, id)
		}
	}
	for id, until := range rt.parked {
		if now.After(until) {
			delete(rt.parked, id)
		}
	}
	if c == nil || len(c.Members) == 0 {
		return
	}
	st := cloneState(g.st)
	c = st.Classic
	var gone []string
	c.Members = slices.DeleteFunc(c.Members, func(m meta.ClassicMember) bool {
		_, parked := rt.parked[m.ID]
		dead := !parked && now.After(g.deadline[m.ID])
		if c.State == classicCompleting && now.After(rt.deadline) && !rt.synced[m.ID] {
			dead = true
		}
		if dead {
			gone = append(gone, m.ID)
		}
		return dead
	})
	switch {
	case len(gone) > 0:
		gm.removedClassic(g, c, now)
	case c.State == classicPreparing && now.After(rt.deadline):
		gm.maybeCompleteJoin(g, c, now)
	default:
		return
	}
	if err := gm.saveClassic(gm.ctx, g, st); err != nil {
		gm.s.log.Warn("groups: cannot expire classic members", "group", g.name, "members", gone, "err", err)
		return
	}
	for _, id := range gone {
		delete(g.deadline, id)
	}
	if len(gone) > 0 {
		gm.s.metrics.groupExpired.Add(float64(len(gone)))
		gm.s.log.Info("groups: classic session timed out", "group", g.name, "members", gone, "generation", c.Generation)
	}
}

// classicMembers is the number of classic members of st.
func classicMembers(st meta.GroupState) int {
	if st.Classic == nil {
		return 0
	}
	return len(st.Classic.Members)
}

// getEmpty returns group, locked as get does, if it has no live members
// (GROUP_NOT_EMPTY otherwise).
func (gm *groupManager) getEmpty(ctx context.Context, group string) (*group, error) {
	g, err := gm.get(ctx, group)
	if err != nil {
		return nil, err
	}
	if n := len(g.st.Members) + classicMembers(g.st); n > 0 {
		g.mu.Unlock()
		return nil, apierr.Errorf(apierr.ErrGroupNotEmpty, "group %s has %d live members", group, n)
	}
	return g, nil
}

// deleteGroup removes a group without members, with its offsets.
func (gm *groupManager) deleteGroup(ctx context.Context, group string) error {
	g, err := gm.getEmpty(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	existed, err := gm.s.cfg.Meta.DeleteGroup(ctx, group, g.st.Revision)
	g.loaded, g.classic = false, nil // read anew: empty, or what beat us
	if err != nil {
		return storageErr(err)
	}
	if !existed {
		return apierr.Errorf(apierr.ErrUnknownGroup, "group %s has no state and no offsets", group)
	}
	gm.s.log.Info("groups: group deleted", "group", group)
	return nil
}

// deleteOffsets removes a group's committed offsets of parts, if the
// group has no live members (GROUP_NOT_EMPTY otherwise: a member may be
// reading from them) and has anything stored (UNKNOWN_GROUP otherwise).
func (gm *groupManager) deleteOffsets(ctx context.Context, group string, parts []meta.GroupPartition) error {
	g, err := gm.getEmpty(ctx, group)
	if err != nil {
		return err
	}
	defer g.mu.Unlock()
	if g.st.Revision == 0 {
		committed, err := gm.s.committed(ctx, group)
		if err != nil {
			return err
		}
		if len(committed) == 0 {
			return apierr.Errorf(apierr.ErrUnknownGroup, "group %s has no state and no offsets", group)
		}
	}
	if err := gm.s.cfg.Meta.DeleteGroupOffsets(ctx, group, g.st.Revision, parts); err != nil {
		g.loaded, g.classic = false, nil // read anew: what beat us
		return storageErr(err)
	}
	gm.s.log.Info("groups: offsets deleted", "group", group, "partitions", len(parts))
	return nil
}

// serverSideOf readies st for a server-side member: a group with classic
// members refuses, an empty classic group becomes a server-side one.
func serverSideOf(st *meta.GroupState, group string) error {
	if n := classicMembers(*st); n > 0 {
		return apierr.Errorf(apierr.ErrInconsistentGroupProtocol, "group %s has %d members of Kafka's classic protocol", group, n)
	}
	st.Classic = nil
	return nil
}

// classicGeneration is st's classic generation, 0 for a server-side
// group: ListGroups shows it as the group's epoch.
func classicGeneration(st meta.GroupState) int64 {
	if st.Classic == nil {
		return 0
	}
	return int64(st.Classic.Generation)
}
