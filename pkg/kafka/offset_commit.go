package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// OffsetCommit v2–9 (Kafka 4.0's floor is v2) stores a group's offsets in
// the one offset store gRPC groups use. A connection's commits to one group
// are stored in request order (requestOrder). A classic member commits at its
// generation, a KIP-848 member at its member epoch, a consumer without a
// group (generation -1) only to a group without members. Partitions the
// request cannot name (unknown topic, partition out of range, too long
// metadata, no consume ACL on the topic) get their own error and the
// others are committed together. The retention time (v2–4) and the
// leader epoch (v6+) are not stored.
//
// A KIP-848 member whose epoch or partitions the coordinator does not
// accept gets STALE_MEMBER_EPOCH, as from Kafka (ILLEGAL_GENERATION below
// v9, which has no such code).
func init() { register(kmsg.OffsetCommit, 2, 9, (*Server).handleOffsetCommit) }

func (s *Server) handleOffsetCommit(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	if len(r.turns) != 1 { // the reader claims it; a request built otherwise claims now
		r.turns = r.conn.order.claim(commitKey(req.Group))
	}
	// The group's earlier commits on this connection land first (Kafka
	// serves a connection in order): a commit retried across a
	// coordinator failover must not overwrite a later one.
	defer r.turns[0].done()
	if err := r.turns[0].wait(ctx); err != nil {
		return nil, err
	}
	groupCode, _ := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group))
	cr := &stratav1.CommitClassicOffsetsRequest{Group: req.Group, MemberId: req.MemberID,
		GroupInstanceId: deref(req.InstanceID), Generation: req.Generation}
	// pending are the response partitions whose fate is the commit's.
	var pending []*kmsg.OffsetCommitResponseTopicPartition
	for _, rt := range req.Topics {
		ot, to := s.commitTopic(ctx, r, groupCode, rt)
		if len(to.Partitions) > 0 {
			cr.Topics = append(cr.Topics, to)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if p := &resp.Topics[i].Partitions[j]; p.ErrorCode == 0 {
				pending = append(pending, p)
			}
		}
	}
	if len(cr.Topics) == 0 {
		return resp, nil
	}
	cr.Topics = lastOffsetWins(cr.Topics)
	if _, err := s.core.Admin.CommitClassicOffsets(ctx, cr); err != nil {
		code := commitErrCode(req.Version, err)
		for _, p := range pending {
			p.ErrorCode = code
		}
	}
	return resp, nil
}

// commitTopic checks one topic of an OffsetCommit: its answer, with an
// error for each partition the request cannot name (groupCode, if not 0,
// for every one), and the offsets of the others to commit.
func (s *Server) commitTopic(ctx context.Context, r *request, groupCode int16, rt kmsg.OffsetCommitRequestTopic) (kmsg.OffsetCommitResponseTopic, *stratav1.TopicOffsets) {
	ot := kmsg.NewOffsetCommitResponseTopic()
	ot.Topic = rt.Topic
	code := groupCode
	var t meta.Topic
	if code == 0 {
		code, _ = s.authorize(ctx, r, meta.OpConsume, auth.Topic(rt.Topic))
	}
	if code == 0 {
		var err error
		if t, err = s.lookupTopic(ctx, rt.Topic); err != nil {
			code = errCode(err)
		}
	}
	to := &stratav1.TopicOffsets{Topic: rt.Topic}
	for _, rp := range rt.Partitions {
		op := kmsg.NewOffsetCommitResponseTopicPartition()
		op.Partition, op.ErrorCode = rp.Partition, code
		switch {
		case code != 0:
		case rp.Partition < 0 || rp.Partition >= t.Partitions:
			op.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case rp.Metadata != nil && len(*rp.Metadata) > meta.MaxOffsetMetadata:
			op.ErrorCode = kerr.OffsetMetadataTooLarge.Code
		case rp.Offset < 0:
			op.ErrorCode = kerr.InvalidCommitOffsetSize.Code
		default:
			to.Partitions = append(to.Partitions, &stratav1.PartitionOffset{Partition: rp.Partition, Offset: rp.Offset, Metadata: deref(rp.Metadata)})
		}
		ot.Partitions = append(ot.Partitions, op)
	}
	return ot, to
}

// lastOffsetWins folds a topic named more than once, and a partition
// named more than once, into one entry each, the offset given last
// winning: Kafka applies a commit's partitions in order, and librdkafka's
// CommitOffsets passes one entry per message. The coordinator refuses a
// partition twice (etcd writes a key once per transaction); each entry of
// the request still gets its answer.
func lastOffsetWins(tos []*stratav1.TopicOffsets) []*stratav1.TopicOffsets {
	var out []*stratav1.TopicOffsets
	byTopic := map[string]*stratav1.TopicOffsets{}
	at := map[string]map[int32]int{} // topic → partition → index in its Partitions
	for _, to := range tos {
		m, ok := byTopic[to.Topic]
		if !ok {
			m = &stratav1.TopicOffsets{Topic: to.Topic}
			byTopic[to.Topic], at[to.Topic] = m, map[int32]int{}
			out = append(out, m)
		}
		for _, po := range to.Partitions {
			if i, ok := at[to.Topic][po.Partition]; ok {
				m.Partitions[i] = po
				continue
			}
			at[to.Topic][po.Partition] = len(m.Partitions)
			m.Partitions = append(m.Partitions, po)
		}
	}
	return out
}

// commitErrCode is the Kafka code of a refused commit. The coordinator
// refuses a KIP-848 member's commit as fenced (FENCED_MEMBER_EPOCH on the
// heartbeat), but Kafka answers OffsetCommit with STALE_MEMBER_EPOCH, on
// which librdkafka and franz-go heartbeat for the current epoch and
// commit again; on FENCED_MEMBER_EPOCH they drop the commit.
func commitErrCode(version int16, err error) int16 {
	code := errCode(err)
	if code != kerr.FencedMemberEpoch.Code {
		return code
	}
	if version >= 9 {
		return kerr.StaleMemberEpoch.Code
	}
	return kerr.IllegalGeneration.Code
}
