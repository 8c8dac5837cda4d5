package kafka

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// Metadata v0–12 answers from the proxy's watched view of etcd. The proxy
// is the only broker it names, and it leads every partition: its produces
// reach the owning broker through proxy.Router and its fetches are served
// here, so a client never needs another address. Leader epochs are
// partition epochs. A Metadata request creates a topic it names only
// with Config.AutoCreateTopics (off by default, as on most managed Kafka
// services; `strata dev` turns it on, as Kafka's own default is); topic
// ids (v10+) are the topics' Strata ids. Topics the principal may not describe
// are left out of a list of all topics and answered with
// TOPIC_AUTHORIZATION_FAILED when named.
func init() { register(kmsg.Metadata, 0, 12, (*Server).handleMetadata) }

func (s *Server) handleMetadata(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	self, node := s.identity()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = node, self.host, self.port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ClusterID = &s.cluster
	resp.ControllerID = node
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		all := s.core.View.Topics()
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		for _, t := range all {
			if s.allowed(ctx, r, meta.OpDescribe, auth.Topic(t.Name)) {
				resp.Topics = append(resp.Topics, s.metadataTopic(t))
			}
		}
		return resp, nil
	}
	create := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		resp.Topics = append(resp.Topics, s.metadataNamed(ctx, r, rt, create))
	}
	return resp, nil
}

// metadataNamed answers one requested topic, named or (v10+) by id; a
// named topic that does not exist is created first when create is set
// (AutoCreateTopics).
func (s *Server) metadataNamed(ctx context.Context, r *request, rt kmsg.MetadataRequestTopic, create bool) kmsg.MetadataResponseTopic {
	fail := func(code int16) kmsg.MetadataResponseTopic {
		out := kmsg.NewMetadataResponseTopic()
		out.Topic, out.TopicID, out.ErrorCode = rt.Topic, rt.TopicID, code
		return out
	}
	var t meta.Topic
	if rt.Topic == nil {
		var ok bool
		if t, ok = s.topicByUUID(rt.TopicID); !ok {
			return fail(kerr.UnknownTopicID.Code)
		}
		if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(t.Name)); err != nil {
			return fail(code)
		}
		return s.metadataTopic(t)
	}
	// Authorization first, so that a principal cannot probe which topics
	// exist.
	if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(*rt.Topic)); err != nil {
		return fail(code)
	}
	t, err := s.lookupTopic(ctx, *rt.Topic)
	if err != nil && create && apierr.KafkaCode(err) == kerr.UnknownTopicOrPartition.Code {
		t, err = s.autoCreate(ctx, r, *rt.Topic)
		if ce := (codedError{}); errors.As(err, &ce) {
			return fail(ce.code)
		}
	}
	if err != nil {
		if apierr.KafkaCode(err) == kerr.UnknownTopicOrPartition.Code {
			return fail(kerr.UnknownTopicOrPartition.Code)
		}
		return fail(errCode(err))
	}
	return s.metadataTopic(t)
}

// autoCreate creates the topic a Metadata request named, with
// AutoCreatePartitions partitions and the default configuration, through
// CreateTopics' checks (Create on the topic, its name, the cluster's
// limits), and returns it. A topic another request created meanwhile is
// returned as it is.
func (s *Server) autoCreate(ctx context.Context, r *request, name string) (meta.Topic, error) {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, int32(s.cfg.AutoCreatePartitions), -1
	ot := kmsg.NewCreateTopicsResponseTopic()
	err := s.createTopic(ctx, r, kmsg.NewPtrCreateTopicsRequest(), rt, &ot)
	if err != nil && apierr.KafkaCode(err) != kerr.TopicAlreadyExists.Code {
		return meta.Topic{}, err
	}
	if err == nil {
		s.log.Info("kafka: topic created by a Metadata request", "topic", name, "partitions", rt.NumPartitions, "client", r.clientID)
	}
	return s.lookupTopic(ctx, name)
}

// metadataTopic describes a topic with every partition led by this proxy.
func (s *Server) metadataTopic(t meta.Topic) kmsg.MetadataResponseTopic {
	_, node := s.identity()
	out := kmsg.NewMetadataResponseTopic()
	name := t.Name
	out.Topic, out.TopicID = &name, topicUUID(t.ID)
	out.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	for p := range t.Partitions {
		st, _ := s.core.View.Partition(t.ID, p)
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p, node, leaderEpoch(st)
		mp.Replicas, mp.ISR, mp.OfflineReplicas = []int32{node}, []int32{node}, []int32{}
		out.Partitions[p] = mp
	}
	return out
}
