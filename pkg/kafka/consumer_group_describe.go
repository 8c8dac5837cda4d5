package kafka

import (
	"context"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// ConsumerGroupDescribe v0–1 (KIP-848) describes server-side groups, the
// ones KIP-848 consumers and the gRPC SDK join: state (Empty,
// Reconciling, Stable), group epoch (the assignment epoch too: Strata
// computes the target assignment at once), the assignor by Kafka's name,
// and each member with its subscription, the partitions it owns and its
// target. A group that does not exist, or whose members use the classic
// protocol, is GROUP_ID_NOT_FOUND, as in Kafka (DescribeGroups describes
// those). Authorized operations are not computed (-2147483648).
func init() { register(kmsg.ConsumerGroupDescribe, 0, 1, (*Server).handleConsumerGroupDescribe) }

// memberTypeConsumer is ConsumerGroupDescribe's member type (v1) of a
// member that speaks the consumer protocol.
const memberTypeConsumer = 1

func (s *Server) handleConsumerGroupDescribe(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group, g.AuthorizedOperations = name, math.MinInt32
		if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Group(name)); code != 0 {
			g.ErrorCode, g.ErrorMessage = code, errMsg(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		d, err := s.core.Admin.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: name})
		switch {
		case err != nil:
			g.ErrorCode, g.ErrorMessage = errCode(err), errMsg(err)
		case d.GetState() == "Dead" || d.GetClassic() || d.GetAssignor() == "":
			g.ErrorCode = kerr.GroupIDNotFound.Code
			g.ErrorMessage = errMsg(fmt.Errorf("group %q is not a consumer group: it does not exist, or its members use the classic protocol", name))
		default:
			s.describeConsumerGroup(&g, d)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// describeConsumerGroup fills g from the coordinator's description d.
func (s *Server) describeConsumerGroup(g *kmsg.ConsumerGroupDescribeResponseGroup, d *stratav1.DescribeGroupResponse) {
	g.State, g.AssignorName = d.GetState(), kafkaAssignorName(d.GetAssignor())
	g.Epoch = int32(d.GetGroupEpoch())
	g.AssignmentEpoch = g.Epoch
	for _, m := range d.GetMembers() {
		gm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		gm.MemberID, gm.MemberEpoch, gm.ClientID = m.GetMemberId(), int32(m.GetMemberEpoch()), m.GetClientId()
		gm.SubscribedTopics, gm.MemberType = m.GetTopics(), memberTypeConsumer
		if re := m.GetTopicRegex(); re != "" {
			gm.SubscribedTopicRegex = &re
		}
		gm.Assignment.TopicPartitions = s.assignmentTopics(m.GetAssignment())
		gm.TargetAssignment.TopicPartitions = s.assignmentTopics(m.GetTarget())
		g.Members = append(g.Members, gm)
	}
}

// assignmentTopics turns an assignment by topic name into Kafka's, by
// topic id and name; topics this proxy does not know are left out.
func (s *Server) assignmentTopics(tps []*stratav1.TopicPartitions) []kmsg.AssignmentTopicPartition {
	out := []kmsg.AssignmentTopicPartition{}
	for _, tp := range tps {
		t, ok := s.core.View.Topic(tp.GetTopic())
		if !ok {
			continue
		}
		at := kmsg.NewAssignmentTopicPartition()
		at.TopicID, at.Topic, at.Partitions = topicUUID(t.ID), t.Name, tp.GetPartitions()
		out = append(out, at)
	}
	return out
}
