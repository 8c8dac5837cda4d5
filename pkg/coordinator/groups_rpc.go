package coordinator

import (
	"cmp"
	"context"
	"slices"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// The consumer group calls of the Coordinator service. Each validates its
// request, then runs on the leader's groupManager (NOT_LEADER elsewhere).

// groupCall runs call on the current term's group manager, once the view
// has loaded, counting it like an admin call.
func (s *Server) groupCall(ctx context.Context, method string, call func(gm *groupManager) error) error {
	return s.admin(method, func() error {
		gm := s.groups.Load()
		if gm == nil {
			return apierr.Errorf(apierr.ErrNotLeader, "coordinator %s is not the leader", s.cfg.ID)
		}
		select {
		case <-s.view.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
		return call(gm)
	})
}

func validMember(id string) error {
	if id == "" || len(id) > maxMemberIDLen {
		return apierr.Errorf(apierr.ErrInvalidRequest, "member_id must be 1–%d characters", maxMemberIDLen)
	}
	return nil
}

// classicMemberIDs checks the ids a classic member names itself by, in
// Kafka's order and with its codes: the group id first, then the member
// id, where an empty one is a member the group does not know (a classic
// member learns its id from JoinGroup, so only a client that never
// joined sends none).
func classicMemberIDs(group, member string) error {
	if err := meta.ValidateGroupName(group); err != nil {
		return err
	}
	if member == "" {
		return apierr.Errorf(apierr.ErrUnknownMember, "member_id is empty: join the group first")
	}
	return validMember(member)
}

// GroupHeartbeat joins a member (epoch 0) or keeps it alive, and answers
// with the partitions it may own now.
func (s *Server) GroupHeartbeat(ctx context.Context, req *stratav1.GroupHeartbeatRequest) (*stratav1.GroupHeartbeatResponse, error) {
	var resp *stratav1.GroupHeartbeatResponse
	err := s.groupCall(ctx, "GroupHeartbeat", func(gm *groupManager) error {
		hr, err := s.heartbeatRequest(req)
		if err != nil {
			return err
		}
		res, err := gm.heartbeat(ctx, hr)
		if err != nil {
			return err
		}
		resp = &stratav1.GroupHeartbeatResponse{
			MemberEpoch:         res.epoch,
			GroupEpoch:          res.groupEpoch,
			HeartbeatIntervalMs: int32(res.interval / time.Millisecond),
			SessionTimeoutMs:    int32(res.sessionTimeout / time.Millisecond),
			Assignment:          s.topicPartitions(res.assignment),
		}
		return nil
	})
	return resp, err
}

func (s *Server) heartbeatRequest(req *stratav1.GroupHeartbeatRequest) (heartbeatRequest, error) {
	hr := heartbeatRequest{
		group: req.GetGroup(), member: req.GetMemberId(), clientID: req.GetClientId(),
		assignor: req.GetAssignor(), epoch: req.GetMemberEpoch(), topicRegex: req.GetTopicRegex(),
		sessionTimeout: time.Duration(req.GetSessionTimeoutMs()) * time.Millisecond,
	}
	if err := meta.ValidateGroupName(hr.group); err != nil {
		return hr, err
	}
	if err := validMember(hr.member); err != nil {
		return hr, err
	}
	switch {
	case hr.epoch < 0:
		return hr, apierr.Errorf(apierr.ErrInvalidRequest, "member_epoch %d is negative", hr.epoch)
	case !validAssignor(hr.assignor):
		return hr, apierr.Errorf(apierr.ErrInvalidRequest, "unknown assignor %q (want %q or %q)", hr.assignor, AssignorSticky, AssignorRange)
	case hr.sessionTimeout != 0 && (hr.sessionTimeout < meta.MinSessionTimeout || hr.sessionTimeout > meta.MaxSessionTimeout):
		return hr, apierr.Errorf(apierr.ErrInvalidSessionTimeout, "session_timeout_ms %d, want 0 or %d..%d",
			req.GetSessionTimeoutMs(), meta.MinSessionTimeout.Milliseconds(), meta.MaxSessionTimeout.Milliseconds())
	case len(req.GetTopics()) > maxGroupTopics:
		return hr, apierr.Errorf(apierr.ErrInvalidRequest, "%d topics, at most %d", len(req.GetTopics()), maxGroupTopics)
	case len(hr.clientID) > maxMemberIDLen:
		return hr, apierr.Errorf(apierr.ErrInvalidRequest, "client_id longer than %d", maxMemberIDLen)
	}
	if err := meta.ValidateTopicRegex(hr.topicRegex); err != nil {
		return hr, apierr.Errorf(apierr.ErrInvalidRequest, "%v", err)
	}
	for _, t := range req.GetTopics() {
		if err := meta.ValidateTopicName(t); err != nil {
			return hr, err
		}
	}
	hr.topics = slices.Compact(slices.Sorted(slices.Values(req.GetTopics())))
	for _, tp := range req.GetOwned() {
		t, ok := s.view.Topic(tp.GetTopic())
		if !ok {
			continue // deleted meanwhile: nothing to own
		}
		for _, p := range tp.GetPartitions() {
			hr.owned = append(hr.owned, meta.GroupPartition{TopicID: t.ID, Partition: p})
		}
	}
	slices.SortFunc(hr.owned, meta.GroupPartition.Compare)
	return hr, nil
}

// topicPartitions converts partitions to their API form, by topic name.
func (s *Server) topicPartitions(gps []meta.GroupPartition) []*stratav1.TopicPartitions {
	byTopic := map[string]*stratav1.TopicPartitions{}
	var out []*stratav1.TopicPartitions
	for _, gp := range gps {
		t, ok := s.view.TopicByID(gp.TopicID)
		if !ok {
			continue
		}
		tp := byTopic[t.Name]
		if tp == nil {
			tp = &stratav1.TopicPartitions{Topic: t.Name}
			byTopic[t.Name] = tp
			out = append(out, tp)
		}
		tp.Partitions = append(tp.Partitions, gp.Partition)
	}
	slices.SortFunc(out, func(a, b *stratav1.TopicPartitions) int { return cmp.Compare(a.Topic, b.Topic) })
	for _, tp := range out {
		slices.Sort(tp.Partitions)
	}
	return out
}

// LeaveGroup removes a member at once, handing its partitions to the
// others.
func (s *Server) LeaveGroup(ctx context.Context, req *stratav1.LeaveGroupRequest) (*stratav1.LeaveGroupResponse, error) {
	err := s.groupCall(ctx, "LeaveGroup", func(gm *groupManager) error {
		if err := validMember(req.GetMemberId()); err != nil {
			return err
		}
		return gm.leave(ctx, req.GetGroup(), req.GetMemberId(), req.GetMemberEpoch())
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.LeaveGroupResponse{}, nil
}

// offsetsFromRequest validates offsets and resolves topic names.
func (s *Server) offsetsFromRequest(tos []*stratav1.TopicOffsets) ([]meta.CommittedOffset, error) {
	var out []meta.CommittedOffset
	seen := map[meta.GroupPartition]bool{}
	for _, to := range tos {
		if err := meta.ValidateTopicName(to.GetTopic()); err != nil {
			return nil, err
		}
		t, ok := s.view.Topic(to.GetTopic())
		if !ok {
			return nil, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", to.GetTopic())
		}
		for _, po := range to.GetPartitions() {
			switch {
			case po.GetPartition() < 0 || po.GetPartition() >= t.Partitions:
				return nil, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", po.GetPartition(), t.Name, t.Partitions)
			case po.GetOffset() < 0:
				return nil, apierr.Errorf(apierr.ErrInvalidRequest, "offset %d of %s/%d is negative", po.GetOffset(), t.Name, po.GetPartition())
			case len(po.GetMetadata()) > meta.MaxOffsetMetadata:
				return nil, apierr.Errorf(apierr.ErrInvalidRequest, "metadata of %s/%d is longer than %d bytes", t.Name, po.GetPartition(), meta.MaxOffsetMetadata)
			}
			gp := meta.GroupPartition{TopicID: t.ID, Partition: po.GetPartition()}
			if seen[gp] {
				return nil, apierr.Errorf(apierr.ErrInvalidRequest, "%s/%d given twice", t.Name, po.GetPartition())
			}
			seen[gp] = true
			out = append(out, meta.CommittedOffset{TopicID: t.ID, Partition: po.GetPartition(), Offset: po.GetOffset(), Metadata: po.GetMetadata()})
		}
	}
	return out, nil
}

// CommitOffsets stores a member's offsets: one request per group carries
// every partition, written in as few etcd transactions as possible.
func (s *Server) CommitOffsets(ctx context.Context, req *stratav1.CommitOffsetsRequest) (*stratav1.CommitOffsetsResponse, error) {
	err := s.groupCall(ctx, "CommitOffsets", func(gm *groupManager) error {
		if err := meta.ValidateGroupName(req.GetGroup()); err != nil {
			return err
		}
		if err := validMember(req.GetMemberId()); err != nil {
			return err
		}
		offsets, err := s.offsetsFromRequest(req.GetTopics())
		if err != nil {
			return err
		}
		return gm.commit(ctx, req.GetGroup(), req.GetMemberId(), req.GetMemberEpoch(), offsets)
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.CommitOffsetsResponse{}, nil
}

// ResetOffsets overwrites offsets of a group that has no live members.
func (s *Server) ResetOffsets(ctx context.Context, req *stratav1.ResetOffsetsRequest) (*stratav1.ResetOffsetsResponse, error) {
	err := s.groupCall(ctx, "ResetOffsets", func(gm *groupManager) error {
		if err := meta.ValidateGroupName(req.GetGroup()); err != nil {
			return err
		}
		offsets, err := s.offsetsFromRequest(req.GetTopics())
		if err != nil {
			return err
		}
		if len(offsets) == 0 {
			return apierr.Errorf(apierr.ErrInvalidRequest, "no offsets to reset")
		}
		return gm.reset(ctx, req.GetGroup(), offsets)
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.ResetOffsetsResponse{}, nil
}

// committed returns the group's committed offsets of existing topics, by
// partition.
func (s *Server) committed(ctx context.Context, group string) (map[meta.GroupPartition]meta.CommittedOffset, error) {
	offs, err := s.cfg.Meta.FetchOffsets(ctx, group)
	if err != nil {
		return nil, storageErr(err)
	}
	out := make(map[meta.GroupPartition]meta.CommittedOffset, len(offs))
	for _, o := range offs {
		if _, ok := s.view.TopicByID(o.TopicID); ok {
			out[meta.GroupPartition{TopicID: o.TopicID, Partition: o.Partition}] = o
		}
	}
	return out, nil
}

// FetchOffsets returns a group's committed offsets, of the topics asked
// for or of all.
func (s *Server) FetchOffsets(ctx context.Context, req *stratav1.FetchOffsetsRequest) (*stratav1.FetchOffsetsResponse, error) {
	var resp *stratav1.FetchOffsetsResponse
	err := s.groupCall(ctx, "FetchOffsets", func(gm *groupManager) error {
		if err := meta.ValidateGroupName(req.GetGroup()); err != nil {
			return err
		}
		want := map[string]bool{}
		for _, t := range req.GetTopics() {
			want[t] = true
		}
		offs, err := s.committed(ctx, req.GetGroup())
		if err != nil {
			return err
		}
		byTopic := map[string]*stratav1.TopicOffsets{}
		resp = &stratav1.FetchOffsetsResponse{}
		for gp, o := range offs {
			t, _ := s.view.TopicByID(gp.TopicID)
			if len(want) > 0 && !want[t.Name] {
				continue
			}
			to := byTopic[t.Name]
			if to == nil {
				to = &stratav1.TopicOffsets{Topic: t.Name}
				byTopic[t.Name] = to
				resp.Topics = append(resp.Topics, to)
			}
			to.Partitions = append(to.Partitions, &stratav1.PartitionOffset{Partition: gp.Partition, Offset: o.Offset, Metadata: o.Metadata})
		}
		slices.SortFunc(resp.Topics, func(a, b *stratav1.TopicOffsets) int { return cmp.Compare(a.Topic, b.Topic) })
		for _, to := range resp.Topics {
			slices.SortFunc(to.Partitions, func(a, b *stratav1.PartitionOffset) int { return cmp.Compare(a.Partition, b.Partition) })
		}
		return nil
	})
	return resp, err
}

// ListGroups lists every group with state or committed offsets.
func (s *Server) ListGroups(ctx context.Context, _ *stratav1.ListGroupsRequest) (*stratav1.ListGroupsResponse, error) {
	var resp *stratav1.ListGroupsResponse
	err := s.groupCall(ctx, "ListGroups", func(gm *groupManager) error {
		names, err := s.cfg.Meta.ListGroups(ctx)
		if err != nil {
			return storageErr(err)
		}
		resp = &stratav1.ListGroupsResponse{}
		for _, name := range names {
			st, err := gm.snapshot(ctx, name)
			if err != nil {
				return err
			}
			resp.Groups = append(resp.Groups, &stratav1.GroupSummary{
				Group: name, State: groupStateName(st), Members: int32(len(st.Members) + classicMembers(st)),
				GroupEpoch: max(st.Epoch, classicGeneration(st)), Assignor: st.Assignor,
			})
		}
		return nil
	})
	return resp, err
}

// DescribeGroup returns a group's members and, for every partition it
// subscribes to or has committed, the owner, committed offset and lag.
func (s *Server) DescribeGroup(ctx context.Context, req *stratav1.DescribeGroupRequest) (*stratav1.DescribeGroupResponse, error) {
	var resp *stratav1.DescribeGroupResponse
	err := s.groupCall(ctx, "DescribeGroup", func(gm *groupManager) error {
		st, err := gm.snapshot(ctx, req.GetGroup())
		if err != nil {
			return err
		}
		offs, err := s.committed(ctx, req.GetGroup())
		if err != nil {
			return err
		}
		resp = &stratav1.DescribeGroupResponse{Group: req.GetGroup(), State: groupStateName(st), GroupEpoch: st.Epoch, Assignor: st.Assignor}
		if st.Revision == 0 && len(offs) == 0 {
			resp.State = "Dead"
		}
		owner := map[meta.GroupPartition]string{}
		parts := map[meta.GroupPartition]bool{}
		for gp := range offs {
			parts[gp] = true
		}
		s.describeMembers(resp, st, owner, parts)
		s.describeClassic(resp, st, owner, parts)
		return s.describeLags(ctx, resp, parts, owner, offs)
	})
	return resp, err
}

// describeMembers adds a group's consumer-protocol members to a
// DescribeGroup answer, each with its assignment and the partitions it is
// still to receive. owner gains the partitions the members own, parts the
// partitions of the topics they subscribe to.
func (s *Server) describeMembers(resp *stratav1.DescribeGroupResponse, st meta.GroupState,
	owner map[meta.GroupPartition]string, parts map[meta.GroupPartition]bool,
) {
	for _, m := range st.Members {
		gm := &stratav1.GroupMember{MemberId: m.ID, MemberEpoch: m.Epoch, ClientId: m.ClientID, Topics: m.Topics,
			TopicRegex: m.TopicRegex, Assignment: s.topicPartitions(m.Owned), SessionTimeoutMs: m.SessionTimeoutMs}
		var pending []meta.GroupPartition
		for _, gp := range m.Target {
			if _, in := slices.BinarySearchFunc(m.Owned, gp, meta.GroupPartition.Compare); !in {
				pending = append(pending, gp)
			}
		}
		gm.Pending, gm.Target = s.topicPartitions(pending), s.topicPartitions(m.Target)
		resp.Members = append(resp.Members, gm)
		for _, gp := range m.Owned {
			owner[gp] = m.ID
		}
		for _, name := range m.Topics {
			if t, ok := s.view.Topic(name); ok {
				for p := range t.Partitions {
					parts[meta.GroupPartition{TopicID: t.ID, Partition: p}] = true
				}
			}
		}
	}
}

// describeLags fills a DescribeGroup answer's partitions, sorted by topic
// name and partition: each with its owner, committed offset (-1 if none),
// high watermark, log start and lag, reading the partitions' states in
// batches (meta.Store.GetPartitions).
func (s *Server) describeLags(ctx context.Context, resp *stratav1.DescribeGroupResponse, parts map[meta.GroupPartition]bool,
	owner map[meta.GroupPartition]string, offs map[meta.GroupPartition]meta.CommittedOffset,
) error {
	sorted := make([]meta.GroupPartition, 0, len(parts))
	for gp := range parts {
		sorted = append(sorted, gp)
	}
	names := func(gp meta.GroupPartition) string { t, _ := s.view.TopicByID(gp.TopicID); return t.Name }
	slices.SortFunc(sorted, func(a, b meta.GroupPartition) int {
		return cmp.Or(cmp.Compare(names(a), names(b)), cmp.Compare(a.Partition, b.Partition))
	})
	ids := make([]meta.PartitionID, len(sorted))
	for i, gp := range sorted {
		ids[i] = meta.PartitionID(gp)
	}
	sts, err := s.cfg.Meta.GetPartitions(ctx, ids)
	if err != nil {
		return storageErr(err)
	}
	resp.Partitions = make([]*stratav1.GroupPartitionLag, len(sorted))
	for i, gp := range sorted {
		ps := sts[i]
		lag := &stratav1.GroupPartitionLag{Topic: names(gp), Partition: gp.Partition, MemberId: owner[gp],
			CommittedOffset: -1, HighWatermark: ps.NextOffset, LogStartOffset: ps.LogStart}
		from := ps.LogStart
		if o, ok := offs[gp]; ok {
			lag.CommittedOffset, from = o.Offset, o.Offset
		}
		lag.Lag = max(ps.NextOffset-max(from, ps.LogStart), 0)
		resp.Partitions[i] = lag
	}
	return nil
}
