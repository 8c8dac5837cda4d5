package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// OffsetFetch v1–9 reads a group's committed offsets from the offset
// store gRPC groups share; v8+ asks for several groups at once. A
// partition without a commit answers offset -1; no topics asks for every
// committed partition (v2+). With RequireStable (v7+, a read_committed
// consumer's), a partition whose offset a transaction has staged and not
// yet committed answers UNSTABLE_OFFSET_COMMIT, which the client retries
// until the transaction ends (KIP-447). Leader epochs are not stored (-1).
func init() { register(kmsg.OffsetFetch, 1, 9, (*Server).handleOffsetFetch) }

// fetchedPartition is one partition's answer, in the v8+ shape.
type fetchedPartition = kmsg.OffsetFetchResponseGroupTopicPartition

func (s *Server) handleOffsetFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			for _, t := range g.Topics {
				topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
			out := s.fetchGroupOffsets(ctx, r, g.Group, topics, g.Topics == nil)
			if req.RequireStable {
				s.markUnstable(ctx, &out)
			}
			resp.Groups = append(resp.Groups, out)
		}
		return resp, nil
	}
	g := s.fetchGroupOffsets(ctx, r, req.Group, req.Topics, req.Topics == nil)
	if req.RequireStable {
		s.markUnstable(ctx, &g)
	}
	resp.ErrorCode = g.ErrorCode
	for _, t := range g.Topics {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = t.Topic
		for _, p := range t.Partitions {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition, op.Offset, op.LeaderEpoch, op.Metadata, op.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			if req.Version < 2 && g.ErrorCode != 0 {
				op.ErrorCode = g.ErrorCode // v0–1 have no group-level error
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// fetchGroupOffsets answers one group: the partitions asked for, or all
// committed ones when all is set.
func (s *Server) fetchGroupOffsets(ctx context.Context, r *request, group string, topics []kmsg.OffsetFetchRequestTopic, all bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = group
	if code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.Group(group)); code != 0 {
		out.ErrorCode = code
		return out
	}
	fr := &stratav1.FetchOffsetsRequest{Group: group}
	for _, t := range topics {
		fr.Topics = append(fr.Topics, t.Topic)
	}
	got, err := s.core.Admin.FetchOffsets(ctx, fr)
	if err != nil {
		out.ErrorCode = errCode(err)
		return out
	}
	committed := map[string]map[int32]*stratav1.PartitionOffset{}
	for _, to := range got.GetTopics() {
		ps := map[int32]*stratav1.PartitionOffset{}
		for _, po := range to.GetPartitions() {
			ps[po.GetPartition()] = po
		}
		committed[to.GetTopic()] = ps
	}
	answer := func(topic string, p int32, code int16) fetchedPartition {
		fp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		// Metadata is "" without a commit, never null: Kafka answers so,
		// and Sarama cannot decode a null there.
		md := ""
		fp.Partition, fp.Offset, fp.LeaderEpoch, fp.ErrorCode, fp.Metadata = p, -1, -1, code, &md
		if po, ok := committed[topic][p]; ok && code == 0 {
			md = po.GetMetadata()
			fp.Offset = po.GetOffset()
		}
		return fp
	}
	if all {
		for _, to := range got.GetTopics() {
			if !s.allowed(ctx, r, meta.OpDescribe, auth.Topic(to.GetTopic())) {
				continue
			}
			ot := kmsg.NewOffsetFetchResponseGroupTopic()
			ot.Topic = to.GetTopic()
			for _, po := range to.GetPartitions() {
				ot.Partitions = append(ot.Partitions, answer(to.GetTopic(), po.GetPartition(), 0))
			}
			out.Topics = append(out.Topics, ot)
		}
		return out
	}
	for _, t := range topics {
		ot := kmsg.NewOffsetFetchResponseGroupTopic()
		ot.Topic = t.Topic
		code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(t.Topic))
		for _, p := range t.Partitions {
			ot.Partitions = append(ot.Partitions, answer(t.Topic, p, code))
		}
		out.Topics = append(out.Topics, ot)
	}
	return out
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT, with no offset, for each
// partition of g whose offset a transaction has staged and not committed
// yet; for every partition while this proxy's transaction coordinator has
// not loaded the transactions.
func (s *Server) markUnstable(ctx context.Context, g *kmsg.OffsetFetchResponseGroup) {
	pending, loaded := s.txn.PendingOffsets(g.Group)
	if loaded && len(pending) == 0 {
		return
	}
	for i := range g.Topics {
		t := &g.Topics[i]
		id := ""
		if mt, err := s.lookupTopic(ctx, t.Topic); err == nil {
			id = mt.ID
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if _, staged := pending[meta.PartitionID{TopicID: id, Partition: p.Partition}]; p.ErrorCode == 0 && (staged || !loaded) {
				p.ErrorCode, p.Offset = kerr.UnstableOffsetCommit.Code, -1
			}
		}
	}
}
