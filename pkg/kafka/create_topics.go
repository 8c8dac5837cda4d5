package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// CreateTopics v0–7 creates topics through the coordinator (proxy.Admin),
// after the same ACL check (create on the topic) and limits (partitions
// per topic, topics in the cluster) as gRPC's CreateTopic. Strata keeps no
// replicas — object storage is the replication — so any replication
// factor is accepted and answered as 1; manual replica assignments are
// refused. NumPartitions -1 means one partition. Configs: see configs.go.
func init() { register(kmsg.CreateTopics, 0, 7, (*Server).handleCreateTopics) }

func (s *Server) handleCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic, ot.NumPartitions, ot.ReplicationFactor = rt.Topic, -1, -1
		var err error
		if seen[rt.Topic] > 1 {
			err = apierr.Errorf(apierr.ErrInvalidRequest, "topic %q is named more than once", rt.Topic)
		} else {
			err = s.createTopic(ctx, r, req, rt, &ot)
		}
		if err != nil {
			ot.ErrorCode, ot.ErrorMessage = createErrCode(err), errMsg(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// createErrCode is the Kafka code of a failed topic creation or
// partition addition.
func createErrCode(err error) int16 {
	var ce codedError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, errInvalidConfig):
		return kerr.InvalidConfig.Code
	default:
		return errCode(err)
	}
}

// codedError carries a Kafka error code chosen by the handler.
type codedError struct {
	code int16
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func (s *Server) createTopic(ctx context.Context, r *request, req *kmsg.CreateTopicsRequest, rt kmsg.CreateTopicsRequestTopic, ot *kmsg.CreateTopicsResponseTopic) error {
	if code, err := s.authorize(ctx, r, meta.OpCreate, auth.Topic(rt.Topic)); err != nil {
		return codedError{code, err}
	}
	if len(rt.ReplicaAssignment) > 0 {
		return codedError{kerr.InvalidReplicaAssignment.Code, errors.New("manual replica assignments are not supported: Strata places partitions itself")}
	}
	n := rt.NumPartitions
	switch {
	case n == -1:
		n = 1
	case n < 1:
		return codedError{kerr.InvalidPartitions.Code, fmt.Errorf("%d partitions: want -1 (default) or at least 1", n)}
	}
	if rf := rt.ReplicationFactor; rf != -1 && rf < 1 {
		return codedError{kerr.InvalidReplicationFactor.Code, fmt.Errorf("replication factor %d: want -1 (default) or at least 1", rf)}
	}
	if err := meta.ValidateTopicName(rt.Topic); err != nil {
		return codedError{kerr.InvalidTopicException.Code, err}
	}
	tc, err := topicConfigFromKafka(createConfigs(rt.Configs))
	if err != nil {
		return err
	}
	creq := &stratav1.CreateTopicRequest{Name: rt.Topic, Partitions: n, Config: tc}
	if err := s.core.CheckLimits(creq); err != nil {
		return codedError{kerr.PolicyViolation.Code, err}
	}
	if _, exists := s.core.View.Topic(rt.Topic); exists {
		return apierr.Errorf(apierr.ErrTopicExists, "topic %q already exists", rt.Topic)
	}
	ot.NumPartitions, ot.ReplicationFactor = n, 1
	if req.ValidateOnly {
		return nil
	}
	cresp, err := s.core.Admin.CreateTopic(ctx, creq)
	if err != nil {
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		return err
	}
	t := meta.Topic{
		ID: cresp.GetTopic().GetId(), Name: rt.Topic, Partitions: cresp.GetTopic().GetPartitions(),
		RetentionMs: cresp.GetTopic().GetConfig().GetRetentionMs(), RetentionBytes: cresp.GetTopic().GetConfig().GetRetentionBytes(),
		MaxMessageBytes: cresp.GetTopic().GetConfig().GetMaxMessageBytes(),
	}
	ot.TopicID = topicUUID(t.ID)
	for _, e := range topicConfigEntries(t, s.core.Limits.MaxBatchBytes) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value, c.ReadOnly = e.name, &e.value, e.readOnly
		c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		if e.isDefault {
			c.Source = int8(kmsg.ConfigSourceDefaultConfig)
		}
		ot.Configs = append(ot.Configs, c)
	}
	return nil
}
