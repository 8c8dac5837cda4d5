package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Kafka's classic group protocol (docs/consumer-groups.md), beside the
// server-side groups of groups.go and in the same groupManager: members
// join (JoinGroup), the coordinator waits until every known member has
// rejoined or the rebalance timeout passed, starts a new generation and
// elects a leader; the leader computes the assignment with a client-side
// assignor and hands it in with SyncGroup; members heartbeat at their
// generation. The state (members with their protocol metadata,
// generation, leader, assignments) is written through to the group's
// state key like server-side groups, so a new coordinator leader continues
// the generation; what lives only in memory is listed on classicRuntime.

// Classic group states, with Kafka's names.
const (
	classicEmpty      = "Empty"
	classicPreparing  = "PreparingRebalance"
	classicCompleting = "CompletingRebalance"
	classicStable     = "Stable"
)

// classicRuntime is the in-memory part of a classic group. A new leader
// starts it empty: waiting members' polls continue (they re-poll), the
// rebalance timeout starts anew, and new members that got an id but have
// not joined with it yet get UNKNOWN_MEMBER and join again from scratch.
type classicRuntime struct {
	// changed is closed and replaced on every change, to wake long polls.
	changed chan struct{}
	// deadline ends the current join phase (PreparingRebalance) or sync
	// phase (CompletingRebalance).
	deadline time.Time
	// parked holds, per member, until when a poll of it is in flight;
	// a parked member is alive whatever its session says.
	parked map[string]time.Time
	// pending are ids handed out with MEMBER_ID_REQUIRED, until when they
	// may join.
	pending map[string]time.Time
	// synced are the members that sent SyncGroup in this generation.
	synced map[string]bool
}

// classicRT returns g's runtime, made on first use. g.mu must be held.
func (g *group) classicRT() *classicRuntime {
	if g.classic == nil {
		// A phase found in etcd gets its full timeout anew.
		var timeout time.Duration
		if c := g.st.Classic; c != nil {
			for _, m := range c.Members {
				timeout = max(timeout, time.Duration(m.RebalanceTimeoutMs)*time.Millisecond)
			}
		}
		g.classic = &classicRuntime{
			changed:  make(chan struct{}),
			deadline: time.Now().Add(timeout),
			parked:   map[string]time.Time{},
			pending:  map[string]time.Time{},
			synced:   map[string]bool{},
		}
	}
	return g.classic
}

// notify wakes every long poll on g. g.mu must be held.
func (g *group) notify() {
	rt := g.classicRT()
	close(rt.changed)
	rt.changed = make(chan struct{})
}

// classicJoin is a validated JoinGroup.
type classicJoin struct {
	group, member, instance, protocolType string
	clientID, clientHost                  string
	protocols                             []meta.ClassicProtocol
	session, rebalance                    time.Duration
	requireKnownID                        bool
}

// classicJoinResult answers a join; done is false while the rebalance
// is under way.
type classicJoinResult struct {
	done, memberIDRequired bool
	member                 string
	generation             int32
	protocolType, protocol string
	leader                 string
	members                []meta.ClassicMember // to the leader: with the chosen protocol's metadata
}

// classicOf returns st's classic group for a classic request, made if
// absent; a group with server-side members refuses.
func classicOf(st *meta.GroupState) (*meta.ClassicGroup, error) {
	if len(st.Members) > 0 {
		return nil, apierr.Errorf(apierr.ErrInconsistentGroupProtocol,
			"group has %d members of the server-side (KIP-848) protocol; a classic member cannot join", len(st.Members))
	}
	if st.Classic == nil {
		st.Classic = &meta.ClassicGroup{State: classicEmpty}
	}
	return st.Classic, nil
}

func memberIndex(c *meta.ClassicGroup, id string) int {
	return slices.IndexFunc(c.Members, func(m meta.ClassicMember) bool { return m.ID == id })
}

func newMemberID(clientID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// joinStep applies one JoinGroup poll with g.mu held: it adds or updates
// the member, starts or advances the rebalance, and says whether the
// member's join phase completed.
func (gm *groupManager) joinStep(ctx context.Context, g *group, req *classicJoin) (classicJoinResult, error) {
	st := cloneState(g.st)
	c, err := classicOf(&st)
	if err != nil {
		return classicJoinResult{}, err
	}
	rt := g.classicRT()
	now := time.Now()
	if len(c.Members) > 0 && c.ProtocolType != req.protocolType {
		return classicJoinResult{}, apierr.Errorf(apierr.ErrInconsistentGroupProtocol,
			"group has protocol type %q, member asks for %q", c.ProtocolType, req.protocolType)
	}
	if !sharesProtocol(c, req) {
		return classicJoinResult{}, apierr.Errorf(apierr.ErrInconsistentGroupProtocol,
			"member %s supports none of the assignors every other member of group %s supports", req.member, req.group)
	}
	i, err := gm.classicMemberFor(g, c, req, now)
	if err != nil {
		return classicJoinResult{}, err
	}
	if i < 0 {
		return classicJoinResult{memberIDRequired: true, member: req.member}, nil
	}
	m := &c.Members[i]
	changed := !m.Joined || !slices.EqualFunc(m.Protocols, req.protocols, equalProtocol)
	m.ClientID, m.ClientHost, m.Protocols = req.clientID, req.clientHost, req.protocols
	m.SessionTimeoutMs = int32(req.session / time.Millisecond)
	m.RebalanceTimeoutMs = int32(req.rebalance / time.Millisecond)
	c.ProtocolType = req.protocolType
	switch {
	case c.State == classicPreparing:
		m.Joined = true
	case changed || c.State == classicEmpty || (c.State == classicStable && m.ID == c.Leader):
		// A new member, new metadata, or the leader asking to rebalance.
		gm.prepareRebalance(g, c, now)
		c.Members[i].Joined = true
	}
	if c.State == classicPreparing {
		gm.maybeCompleteJoin(g, c, now)
	}
	if err := gm.saveClassic(ctx, g, st); err != nil {
		return classicJoinResult{}, err
	}
	rt.parked[req.member] = now.Add(parkFor(req.session))
	g.deadline[req.member] = now.Add(req.session)
	c = g.st.Classic
	if c.State == classicPreparing || memberIndex(c, req.member) < 0 {
		return classicJoinResult{member: req.member}, nil
	}
	res := classicJoinResult{done: true, member: req.member, generation: c.Generation,
		protocolType: c.ProtocolType, protocol: c.Protocol, leader: c.Leader}
	if req.member == c.Leader {
		for _, o := range c.Members {
			o.Protocols = []meta.ClassicProtocol{{Name: c.Protocol, Metadata: protocolMetadata(o, c.Protocol)}}
			res.members = append(res.members, o)
		}
	}
	return res, nil
}

// classicMemberFor finds the joining member's index in c, adding a new
// member. An empty req.member with require-known-id gets a fresh id in
// req.member and -1; an unknown id is UNKNOWN_MEMBER.
func (gm *groupManager) classicMemberFor(g *group, c *meta.ClassicGroup, req *classicJoin, now time.Time) (int, error) {
	rt := g.classicRT()
	if req.member != "" {
		if i := memberIndex(c, req.member); i >= 0 {
			return i, nil
		}
		if until, ok := rt.pending[req.member]; !ok || now.After(until) {
			return -1, apierr.Errorf(apierr.ErrUnknownMember, "group %s has no member %s", req.group, req.member)
		}
		delete(rt.pending, req.member)
	} else {
		req.member = newMemberID(req.clientID)
		if req.instance == "" && req.requireKnownID {
			rt.pending[req.member] = now.Add(req.session)
			return -1, nil
		}
	}
	if req.instance != "" {
		// A static member coming back replaces its old incarnation, which
		// is fenced (UNKNOWN_MEMBER on its next call).
		if j := slices.IndexFunc(c.Members, func(m meta.ClassicMember) bool { return m.InstanceID == req.instance }); j >= 0 {
			old := c.Members[j].ID
			c.Members[j].ID, c.Members[j].Joined = req.member, false
			if c.Leader == old {
				c.Leader = req.member
			}
			delete(g.deadline, old)
			sortClassic(c)
			return memberIndex(c, req.member), nil
		}
	}
	c.Members = append(c.Members, meta.ClassicMember{ID: req.member, InstanceID: req.instance})
	sortClassic(c)
	return memberIndex(c, req.member), nil
}

func sortClassic(c *meta.ClassicGroup) {
	slices.SortFunc(c.Members, func(a, b meta.ClassicMember) int { return strings.Compare(a.ID, b.ID) })
}

func equalProtocol(a, b meta.ClassicProtocol) bool {
	return a.Name == b.Name && string(a.Metadata) == string(b.Metadata)
}

// parkFor is how long a member stays alive after a poll began: the
// longest poll and a margin for the caller to ask again.
func parkFor(session time.Duration) time.Duration {
	return max(session, maxClassicWait+2*time.Second)
}

// sharesProtocol reports whether the joining member supports an assignor
// that every other member supports.
func sharesProtocol(c *meta.ClassicGroup, req *classicJoin) bool {
	for _, p := range req.protocols {
		all := true
		for _, m := range c.Members {
			if m.ID == req.member {
				continue
			}
			if !slices.ContainsFunc(m.Protocols, func(q meta.ClassicProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// prepareRebalance starts a join phase: every member must join again
// before the longest rebalance timeout passes.
func (gm *groupManager) prepareRebalance(g *group, c *meta.ClassicGroup, now time.Time) {
	var timeout time.Duration
	for i := range c.Members {
		c.Members[i].Joined = false
		timeout = max(timeout, time.Duration(c.Members[i].RebalanceTimeoutMs)*time.Millisecond)
	}
	c.State = classicPreparing
	g.classicRT().deadline = now.Add(timeout)
	gm.s.log.Info("groups: classic rebalance", "group", g.name, "generation", c.Generation, "members", len(c.Members))
}

// maybeCompleteJoin ends the join phase once every member joined or the
// deadline passed (dropping those that did not): a new generation, its
// protocol and leader.
func (gm *groupManager) maybeCompleteJoin(g *group, c *meta.ClassicGroup, now time.Time) {
	rt := g.classicRT()
	all := !slices.ContainsFunc(c.Members, func(m meta.ClassicMember) bool { return !m.Joined })
	if !all && now.Before(rt.deadline) {
		return
	}
	c.Members = slices.DeleteFunc(c.Members, func(m meta.ClassicMember) bool { return !m.Joined })
	c.Generation++
	clear(rt.synced)
	for i := range c.Members {
		c.Members[i].Assignment = nil
	}
	if len(c.Members) == 0 {
		c.State, c.Protocol, c.Leader = classicEmpty, "", ""
		return
	}
	if memberIndex(c, c.Leader) < 0 {
		c.Leader = c.Members[0].ID
	}
	c.Protocol = chooseProtocol(c)
	c.State = classicCompleting
	var timeout time.Duration
	for _, m := range c.Members {
		timeout = max(timeout, time.Duration(m.RebalanceTimeoutMs)*time.Millisecond)
	}
	rt.deadline = now.Add(timeout)
	gm.s.log.Info("groups: classic generation", "group", g.name, "generation", c.Generation,
		"protocol", c.Protocol, "leader", c.Leader, "members", len(c.Members))
}

// chooseProtocol picks the assignor every member supports that most
// members prefer (Kafka's vote); ties go to the leader's preference.
func chooseProtocol(c *meta.ClassicGroup) string {
	var leader meta.ClassicMember
	if i := memberIndex(c, c.Leader); i >= 0 {
		leader = c.Members[i]
	}
	votes := map[string]int{}
	for _, m := range c.Members {
		for _, p := range m.Protocols {
			if supportedByAll(c, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, p := range leader.Protocols {
		if supportedByAll(c, p.Name) && (best == "" || votes[p.Name] > votes[best]) {
			best = p.Name
		}
	}
	return best
}

func supportedByAll(c *meta.ClassicGroup, name string) bool {
	for _, m := range c.Members {
		if !slices.ContainsFunc(m.Protocols, func(p meta.ClassicProtocol) bool { return p.Name == name }) {
			return false
		}
	}
	return true
}

func protocolMetadata(m meta.ClassicMember, name string) []byte {
	for _, p := range m.Protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

// saveClassic writes st if it changed and wakes the long polls.
func (gm *groupManager) saveClassic(ctx context.Context, g *group, st meta.GroupState) error {
	if st.Equal(g.st) {
		return nil
	}
	if err := gm.save(ctx, g, st); err != nil {
		return err
	}
	g.notify()
	return nil
}
