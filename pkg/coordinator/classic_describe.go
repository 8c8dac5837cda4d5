package coordinator

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/meta"
)

// describeClassic adds a classic group's members to a DescribeGroup
// answer, so `strata group describe` shows a Kafka client's group like a
// gRPC one. Members of protocol type "consumer" carry Kafka's consumer
// protocol (subscription metadata, assignment), decoded here with kmsg to
// show their topics and partitions; other protocol types (Kafka Connect)
// show their members only. owner and parts gain the members' partitions.
func (s *Server) describeClassic(resp *stratav1.DescribeGroupResponse, st meta.GroupState,
	owner map[meta.GroupPartition]string, parts map[meta.GroupPartition]bool,
) {
	c := st.Classic
	if c == nil || len(c.Members) == 0 {
		return
	}
	resp.GroupEpoch, resp.Assignor, resp.Classic = int64(c.Generation), c.Protocol, true
	for _, m := range c.Members {
		gm := &stratav1.GroupMember{MemberId: m.ID, MemberEpoch: int64(c.Generation), ClientId: m.ClientID, SessionTimeoutMs: m.SessionTimeoutMs}
		if c.ProtocolType == "consumer" {
			var md kmsg.ConsumerMemberMetadata
			if md.ReadFrom(protocolMetadata(m, c.Protocol)) == nil {
				gm.Topics = slices.Sorted(slices.Values(md.Topics))
			}
			var as kmsg.ConsumerMemberAssignment
			if len(m.Assignment) > 0 && as.ReadFrom(m.Assignment) == nil {
				var gps []meta.GroupPartition
				for _, t := range as.Topics {
					topic, ok := s.view.Topic(t.Topic)
					if !ok {
						continue
					}
					for _, p := range t.Partitions {
						gp := meta.GroupPartition{TopicID: topic.ID, Partition: p}
						gps = append(gps, gp)
						owner[gp] = m.ID
					}
				}
				slices.SortFunc(gps, meta.GroupPartition.Compare)
				gm.Assignment = s.topicPartitions(gps)
			}
			for _, name := range gm.Topics {
				if t, ok := s.view.Topic(name); ok {
					for p := range t.Partitions {
						parts[meta.GroupPartition{TopicID: t.ID, Partition: p}] = true
					}
				}
			}
		}
		resp.Members = append(resp.Members, gm)
	}
}
