package client

import (
	"context"
	"fmt"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// GroupSummary is one consumer group as ListGroups shows it.
type GroupSummary struct {
	Group string
	// State is "Stable", "Reconciling" (partitions are moving), "Empty"
	// (no members) or "Dead" (nothing stored).
	State      string
	Members    int
	GroupEpoch int64
	Assignor   string
}

// GroupMemberInfo is one member of a group.
type GroupMemberInfo struct {
	MemberID       string
	MemberEpoch    int64
	ClientID       string
	Topics         []string
	Assignment     []TopicPartition
	Pending        []TopicPartition // target partitions not handed over yet
	SessionTimeout int32            // milliseconds
}

// GroupPartitionInfo is a group's position in one partition.
type GroupPartitionInfo struct {
	Topic     string
	Partition int32
	// MemberID owns the partition now; empty if none.
	MemberID string
	// Committed is the committed offset, -1 if none.
	Committed      int64
	HighWatermark  int64
	LogStartOffset int64
	// Lag is HighWatermark - Committed (from the log start without a
	// commit).
	Lag int64
}

// GroupDescription is the answer of DescribeGroup.
type GroupDescription struct {
	GroupSummary
	MemberInfo []GroupMemberInfo
	Partitions []GroupPartitionInfo
}

// ListGroups returns every consumer group with state or committed offsets.
func (c *Client) ListGroups(ctx context.Context) ([]GroupSummary, error) {
	resp, err := call(ctx, c, c.api.ListGroups, &stratav1.ListGroupsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]GroupSummary, 0, len(resp.GetGroups()))
	for _, g := range resp.GetGroups() {
		out = append(out, GroupSummary{Group: g.GetGroup(), State: g.GetState(), Members: int(g.GetMembers()),
			GroupEpoch: g.GetGroupEpoch(), Assignor: g.GetAssignor()})
	}
	return out, nil
}

// DescribeGroup returns a group's members and, per partition, its owner,
// committed offset and lag.
func (c *Client) DescribeGroup(ctx context.Context, group string) (*GroupDescription, error) {
	if group == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalidGroupID)
	}
	resp, err := call(ctx, c, c.api.DescribeGroup, &stratav1.DescribeGroupRequest{Group: group})
	if err != nil {
		return nil, err
	}
	out := &GroupDescription{GroupSummary: GroupSummary{Group: resp.GetGroup(), State: resp.GetState(),
		Members: len(resp.GetMembers()), GroupEpoch: resp.GetGroupEpoch(), Assignor: resp.GetAssignor()}}
	for _, m := range resp.GetMembers() {
		out.MemberInfo = append(out.MemberInfo, GroupMemberInfo{MemberID: m.GetMemberId(), MemberEpoch: m.GetMemberEpoch(),
			ClientID: m.GetClientId(), Topics: m.GetTopics(), Assignment: fromTopicPartitions(m.GetAssignment()),
			Pending: fromTopicPartitions(m.GetPending()), SessionTimeout: m.GetSessionTimeoutMs()})
	}
	for _, p := range resp.GetPartitions() {
		out.Partitions = append(out.Partitions, GroupPartitionInfo{Topic: p.GetTopic(), Partition: p.GetPartition(),
			MemberID: p.GetMemberId(), Committed: p.GetCommittedOffset(), HighWatermark: p.GetHighWatermark(),
			LogStartOffset: p.GetLogStartOffset(), Lag: p.GetLag()})
	}
	return out, nil
}

// CommittedOffsets returns a group's committed offsets (the next offset to
// consume) of the given topics, or of all.
func (c *Client) CommittedOffsets(ctx context.Context, group string, topics ...string) (map[TopicPartition]int64, error) {
	if group == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalidGroupID)
	}
	resp, err := call(ctx, c, c.api.FetchOffsets, &stratav1.FetchOffsetsRequest{Group: group, Topics: topics})
	if err != nil {
		return nil, err
	}
	out := map[TopicPartition]int64{}
	for _, to := range resp.GetTopics() {
		for _, po := range to.GetPartitions() {
			out[TopicPartition{to.GetTopic(), po.GetPartition()}] = po.GetOffset()
		}
	}
	return out, nil
}

// ResetGroupOffsets overwrites committed offsets of a group. It fails with
// ErrGroupNotEmpty while the group has live members.
func (c *Client) ResetGroupOffsets(ctx context.Context, group string, offsets map[TopicPartition]int64) error {
	if group == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidRequest)
	}
	req := &stratav1.ResetOffsetsRequest{Group: group}
	byTopic := map[string]*stratav1.TopicOffsets{}
	for tp, off := range offsets {
		to := byTopic[tp.Topic]
		if to == nil {
			to = &stratav1.TopicOffsets{Topic: tp.Topic}
			byTopic[tp.Topic] = to
			req.Topics = append(req.Topics, to)
		}
		to.Partitions = append(to.Partitions, &stratav1.PartitionOffset{Partition: tp.Partition, Offset: off})
	}
	_, err := call(ctx, c, c.api.ResetOffsets, req)
	return err
}

// DeleteGroup removes a group and its committed offsets. It fails with
// ErrGroupNotEmpty while the group has live members, and with
// ErrUnknownGroup if the group has nothing stored.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	if group == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidRequest)
	}
	_, err := call(ctx, c, c.api.DeleteGroup, &stratav1.DeleteGroupRequest{Group: group})
	return err
}

// DeleteGroupOffsets removes a group's committed offsets of partitions
// (a partition without one is no error), as Kafka's OffsetDelete. It fails
// with ErrGroupNotEmpty while the group has live members, and with
// ErrUnknownGroup if the group has nothing stored.
func (c *Client) DeleteGroupOffsets(ctx context.Context, group string, partitions []TopicPartition) error {
	if group == "" {
		return fmt.Errorf("%w: empty group name", ErrInvalidRequest)
	}
	req := &stratav1.DeleteOffsetsRequest{Group: group}
	byTopic := map[string]*stratav1.TopicPartitions{}
	for _, tp := range partitions {
		t := byTopic[tp.Topic]
		if t == nil {
			t = &stratav1.TopicPartitions{Topic: tp.Topic}
			byTopic[tp.Topic] = t
			req.Topics = append(req.Topics, t)
		}
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	_, err := call(ctx, c, c.api.DeleteOffsets, req)
	return err
}

func fromTopicPartitions(in []*stratav1.TopicPartitions) []TopicPartition {
	var out []TopicPartition
	for _, tp := range in {
		for _, p := range tp.GetPartitions() {
			out = append(out, TopicPartition{tp.GetTopic(), p})
		}
	}
	return out
}
