package coordinator

import (
	"context"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// The classic group calls of the Coordinator service. JoinClassicGroup
// and SyncClassicGroup are long polls with a bounded wait: each waits at
// most max_wait_ms for the rebalance and otherwise answers pending, and
// the caller (the proxy's Kafka front end) asks again until its own
// deadline. A wait therefore never outlives a gRPC deadline, and a change
// of coordinator leader in the middle costs one retried poll.

// Bounds of a classic poll's wait.
const (
	// defaultClassicWait keeps a poll well inside the proxy's admin
	// timeout while waking it only a few times per rebalance.
	defaultClassicWait = 5 * time.Second
	// maxClassicWait bounds what a caller may ask for.
	maxClassicWait = 30 * time.Second
	// maxRebalanceTimeout is Kafka's default group.max.session.timeout.ms
	// bound applied to rebalance timeouts too: a join phase cannot hang a
	// group longer.
	maxRebalanceTimeout = 5 * time.Minute
	maxProtocols        = 64
	maxProtocolMetadata = 1 << 20
)

func classicWait(ms int32) (time.Duration, error) {
	switch {
	case ms < 0:
		return 0, apierr.Errorf(apierr.ErrInvalidRequest, "max_wait_ms %d is negative", ms)
	case ms == 0:
		return defaultClassicWait, nil
	}
	return min(time.Duration(ms)*time.Millisecond, maxClassicWait), nil
}

// poll runs step with the group locked until it is done, the wait ends
// or ctx does, sleeping in between on the group's change channel and its
// phase deadline.
func poll[R any](ctx context.Context, gm *groupManager, group string, wait time.Duration,
	step func(g *group) (R, bool, error),
) (R, bool, error) {
	end := time.Now().Add(wait)
	for {
		g, err := gm.get(ctx, group)
		if err != nil {
			var zero R
			return zero, false, err
		}
		res, done, err := step(g)
		rt := g.classicRT()
		changed, phaseEnd := rt.changed, rt.deadline
		g.mu.Unlock()
		if err != nil || done {
			return res, done, err
		}
		now := time.Now()
		if !now.Before(end) {
			return res, false, nil
		}
		sleep := end.Sub(now)
		if phaseEnd.After(now) {
			sleep = min(sleep, phaseEnd.Sub(now)+time.Millisecond)
		} else {
			// The phase is over: the session checker ends it soon.
			sleep = min(sleep, gm.s.cfg.GroupSessionCheckInterval)
		}
		t := time.NewTimer(sleep)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			var zero R
			return zero, false, ctx.Err()
		case <-gm.ctx.Done():
			t.Stop()
			var zero R
			return zero, false, apierr.Errorf(apierr.ErrNotLeader, "coordinator lost leadership")
		}
		t.Stop()
	}
}

// JoinClassicGroup joins a member to a classic group and waits for the
// join phase to complete.
func (s *Server) JoinClassicGroup(ctx context.Context, req *stratav1.JoinClassicGroupRequest) (*stratav1.JoinClassicGroupResponse, error) {
	var resp *stratav1.JoinClassicGroupResponse
	err := s.groupCall(ctx, "JoinClassicGroup", func(gm *groupManager) error {
		jr, wait, err := s.classicJoinRequest(req)
		if err != nil {
			return err
		}
		res, _, err := poll(ctx, gm, jr.group, wait, func(g *group) (classicJoinResult, bool, error) {
			r, err := gm.joinStep(ctx, g, &jr)
			return r, r.done || r.memberIDRequired, err
		})
		if err != nil {
			return err
		}
		resp = &stratav1.JoinClassicGroupResponse{
			Pending: !res.done && !res.memberIDRequired, MemberIdRequired: res.memberIDRequired,
			MemberId: jr.member, Generation: res.generation, ProtocolType: res.protocolType,
			Protocol: res.protocol, Leader: res.leader,
		}
		for _, m := range res.members {
			resp.Members = append(resp.Members, &stratav1.ClassicMemberMetadata{
				MemberId: m.ID, GroupInstanceId: m.InstanceID, Metadata: m.Protocols[0].Metadata})
		}
		return nil
	})
	return resp, err
}

func (s *Server) classicJoinRequest(req *stratav1.JoinClassicGroupRequest) (classicJoin, time.Duration, error) {
	jr := classicJoin{
		group: req.GetGroup(), member: req.GetMemberId(), instance: req.GetGroupInstanceId(),
		protocolType: req.GetProtocolType(), clientID: req.GetClientId(), clientHost: req.GetClientHost(),
		session:        time.Duration(req.GetSessionTimeoutMs()) * time.Millisecond,
		rebalance:      time.Duration(req.GetRebalanceTimeoutMs()) * time.Millisecond,
		requireKnownID: req.GetRequireKnownMemberId(),
	}
	if jr.rebalance <= 0 {
		jr.rebalance = jr.session // JoinGroup v0 has no rebalance timeout
	}
	wait, err := classicWait(req.GetMaxWaitMs())
	if err != nil {
		return jr, 0, err
	}
	// Kafka's order: the group id, then the session timeout, then the
	// rest; clients act on the first two codes.
	if err := meta.ValidateGroupName(jr.group); err != nil {
		return jr, 0, err
	}
	switch {
	case jr.session < meta.MinSessionTimeout || jr.session > meta.MaxSessionTimeout:
		return jr, 0, apierr.Errorf(apierr.ErrInvalidSessionTimeout, "session_timeout_ms %d, want %d..%d",
			req.GetSessionTimeoutMs(), meta.MinSessionTimeout.Milliseconds(), meta.MaxSessionTimeout.Milliseconds())
	case len(jr.member) > maxMemberIDLen || len(jr.instance) > maxMemberIDLen || len(jr.clientID) > maxMemberIDLen || len(jr.clientHost) > maxMemberIDLen:
		return jr, 0, apierr.Errorf(apierr.ErrInvalidRequest, "member_id, group_instance_id, client_id and client_host must be at most %d characters", maxMemberIDLen)
	case jr.protocolType == "":
		// Kafka: a member without a protocol type shares none with a group.
		return jr, 0, apierr.Errorf(apierr.ErrInconsistentGroupProtocol, "protocol_type is empty")
	case len(jr.protocolType) > maxMemberIDLen:
		return jr, 0, apierr.Errorf(apierr.ErrInvalidRequest, "protocol_type must be 1–%d characters", maxMemberIDLen)
	case len(req.GetProtocols()) == 0 || len(req.GetProtocols()) > maxProtocols:
		return jr, 0, apierr.Errorf(apierr.ErrInconsistentGroupProtocol, "%d protocols, want 1–%d", len(req.GetProtocols()), maxProtocols)
	case jr.rebalance > maxRebalanceTimeout:
		return jr, 0, apierr.Errorf(apierr.ErrInvalidRequest, "rebalance_timeout_ms %d, at most %d", req.GetRebalanceTimeoutMs(), maxRebalanceTimeout.Milliseconds())
	}
	size := 0
	for _, p := range req.GetProtocols() {
		if p.GetName() == "" || len(p.GetName()) > maxMemberIDLen {
			return jr, 0, apierr.Errorf(apierr.ErrInvalidRequest, "protocol name must be 1–%d characters", maxMemberIDLen)
		}
		size += len(p.GetMetadata())
		jr.protocols = append(jr.protocols, meta.ClassicProtocol{Name: p.GetName(), Metadata: p.GetMetadata()})
	}
	if size > maxProtocolMetadata {
		return jr, 0, apierr.Errorf(apierr.ErrInvalidRequest, "protocol metadata is %d bytes, at most %d", size, maxProtocolMetadata)
	}
	return jr, wait, nil
}

// SyncClassicGroup takes the leader's assignment and hands each member
// its own, waiting for the leader's.
func (s *Server) SyncClassicGroup(ctx context.Context, req *stratav1.SyncClassicGroupRequest) (*stratav1.SyncClassicGroupResponse, error) {
	var resp *stratav1.SyncClassicGroupResponse
	err := s.groupCall(ctx, "SyncClassicGroup", func(gm *groupManager) error {
		wait, err := classicWait(req.GetMaxWaitMs())
		if err != nil {
			return err
		}
		if err := classicMemberIDs(req.GetGroup(), req.GetMemberId()); err != nil {
			return err
		}
		assignments := map[string][]byte{}
		size := 0
		for _, a := range req.GetAssignments() {
			assignments[a.GetMemberId()] = a.GetAssignment()
			size += len(a.GetAssignment())
		}
		if size > maxProtocolMetadata {
			return apierr.Errorf(apierr.ErrInvalidRequest, "assignments are %d bytes, at most %d", size, maxProtocolMetadata)
		}
		res, _, err := poll(ctx, gm, req.GetGroup(), wait, func(g *group) (classicSyncResult, bool, error) {
			r, err := gm.syncStep(ctx, g, req.GetMemberId(), req.GetGroupInstanceId(), req.GetGeneration(), assignments)
			return r, r.done, err
		})
		if err != nil {
			return err
		}
		resp = &stratav1.SyncClassicGroupResponse{Pending: !res.done, ProtocolType: res.protocolType,
			Protocol: res.protocol, Assignment: res.assignment}
		return nil
	})
	return resp, err
}

// ClassicHeartbeat keeps a classic member alive; REBALANCE_IN_PROGRESS
// tells it to rejoin.
func (s *Server) ClassicHeartbeat(ctx context.Context, req *stratav1.ClassicHeartbeatRequest) (*stratav1.ClassicHeartbeatResponse, error) {
	err := s.groupCall(ctx, "ClassicHeartbeat", func(gm *groupManager) error {
		if err := classicMemberIDs(req.GetGroup(), req.GetMemberId()); err != nil {
			return err
		}
		return gm.classicHeartbeat(ctx, req.GetGroup(), req.GetMemberId(), req.GetGroupInstanceId(), req.GetGeneration())
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.ClassicHeartbeatResponse{}, nil
}

// LeaveClassicGroup removes a classic member at once.
func (s *Server) LeaveClassicGroup(ctx context.Context, req *stratav1.LeaveClassicGroupRequest) (*stratav1.LeaveClassicGroupResponse, error) {
	err := s.groupCall(ctx, "LeaveClassicGroup", func(gm *groupManager) error {
		if err := meta.ValidateGroupName(req.GetGroup()); err != nil {
			return err
		}
		if req.GetMemberId() == "" && req.GetGroupInstanceId() == "" {
			return apierr.Errorf(apierr.ErrUnknownMember, "neither member_id nor group_instance_id is given: no member has them")
		}
		return gm.classicLeave(ctx, req.GetGroup(), req.GetMemberId(), req.GetGroupInstanceId())
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.LeaveClassicGroupResponse{}, nil
}

// CommitClassicOffsets stores offsets of a classic member, of a group
// without members (generation -1), or of a server-side member; with
// check_only it stores nothing and only checks the member, as a Kafka
// transactional offset commit does before staging its offsets.
func (s *Server) CommitClassicOffsets(ctx context.Context, req *stratav1.CommitClassicOffsetsRequest) (*stratav1.CommitClassicOffsetsResponse, error) {
	err := s.groupCall(ctx, "CommitClassicOffsets", func(gm *groupManager) error {
		if err := meta.ValidateGroupName(req.GetGroup()); err != nil {
			return err
		}
		if req.GetGeneration() >= 0 || req.GetMemberId() != "" {
			if err := classicMemberIDs(req.GetGroup(), req.GetMemberId()); err != nil {
				return err
			}
		}
		if req.GetCheckOnly() {
			if len(req.GetTopics()) > 0 {
				return apierr.Errorf(apierr.ErrInvalidRequest, "check_only stores nothing: topics must be empty")
			}
			return gm.txnCommitCheck(ctx, req.GetGroup(), req.GetMemberId(), req.GetGroupInstanceId(), req.GetGeneration())
		}
		offsets, err := s.offsetsFromRequest(req.GetTopics())
		if err != nil {
			return err
		}
		return gm.classicCommit(ctx, req.GetGroup(), req.GetMemberId(), req.GetGroupInstanceId(), req.GetGeneration(), offsets)
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.CommitClassicOffsetsResponse{}, nil
}

// DescribeClassicGroup describes a group the way Kafka's DescribeGroups
// does; a server-side group shows its state and members without
// metadata.
func (s *Server) DescribeClassicGroup(ctx context.Context, req *stratav1.DescribeClassicGroupRequest) (*stratav1.DescribeClassicGroupResponse, error) {
	var resp *stratav1.DescribeClassicGroupResponse
	err := s.groupCall(ctx, "DescribeClassicGroup", func(gm *groupManager) error {
		st, err := gm.snapshot(ctx, req.GetGroup())
		if err != nil {
			return err
		}
		resp = &stratav1.DescribeClassicGroupResponse{State: groupStateName(st), ProtocolType: "consumer"}
		if st.Revision == 0 {
			resp.State = "Dead"
		}
		if c := st.Classic; c != nil && len(c.Members) > 0 {
			resp.ProtocolType, resp.Protocol = c.ProtocolType, c.Protocol
			for _, m := range c.Members {
				resp.Members = append(resp.Members, &stratav1.ClassicMemberDescription{
					MemberId: m.ID, GroupInstanceId: m.InstanceID, ClientId: m.ClientID, ClientHost: m.ClientHost,
					Metadata: protocolMetadata(m, c.Protocol), Assignment: m.Assignment})
			}
			return nil
		}
		if len(st.Members) > 0 {
			resp.State, resp.Protocol = "Stable", st.Assignor
		}
		for _, m := range st.Members {
			resp.Members = append(resp.Members, &stratav1.ClassicMemberDescription{MemberId: m.ID, ClientId: m.ClientID})
		}
		return nil
	})
	return resp, err
}

// DeleteGroup removes a group without live members and its offsets.
func (s *Server) DeleteGroup(ctx context.Context, req *stratav1.DeleteGroupRequest) (*stratav1.DeleteGroupResponse, error) {
	err := s.groupCall(ctx, "DeleteGroup", func(gm *groupManager) error {
		return gm.deleteGroup(ctx, req.GetGroup())
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.DeleteGroupResponse{}, nil
}

// DeleteOffsets removes a group's committed offsets of some partitions,
// if the group has no live members.
func (s *Server) DeleteOffsets(ctx context.Context, req *stratav1.DeleteOffsetsRequest) (*stratav1.DeleteOffsetsResponse, error) {
	err := s.groupCall(ctx, "DeleteOffsets", func(gm *groupManager) error {
		var parts []meta.GroupPartition
		seen := map[meta.GroupPartition]bool{} // etcd refuses a key twice in a transaction
		for _, tp := range req.GetTopics() {
			t, ok := s.view.Topic(tp.GetTopic())
			if !ok {
				return apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", tp.GetTopic())
			}
			for _, p := range tp.GetPartitions() {
				if p < 0 || p >= t.Partitions {
					return apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", p, t.Name, t.Partitions)
				}
				if gp := (meta.GroupPartition{TopicID: t.ID, Partition: p}); !seen[gp] {
					seen[gp] = true
					parts = append(parts, gp)
				}
			}
		}
		if len(parts) == 0 {
			return apierr.Errorf(apierr.ErrInvalidRequest, "DeleteOffsets names no partitions")
		}
		return gm.deleteOffsets(ctx, req.GetGroup(), parts)
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.DeleteOffsetsResponse{}, nil
}
