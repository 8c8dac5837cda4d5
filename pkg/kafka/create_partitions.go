package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// CreatePartitions v0–3 adds partitions to topics (AlterTopic with a
// partition count), as `kafka-topics --alter --partitions N` does. As in
// Kafka, the count must grow (the same count is "already has", a smaller
// one refused, both INVALID_PARTITIONS); a topic named twice is
// INVALID_REQUEST; manual assignments are refused, since Strata places
// partitions itself; validate_only checks without changing. It needs
// alter on the topic. The answer comes once this proxy's view shows the
// new partitions, so the client's next Metadata here lists them.
func init() { register(kmsg.CreatePartitions, 0, 3, (*Server).handleCreatePartitions) }

func (s *Server) handleCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	named := map[string]int{}
	for _, rt := range req.Topics {
		named[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		var err error
		if named[rt.Topic] > 1 {
			err = apierr.Errorf(apierr.ErrInvalidRequest, "topic %q is named more than once", rt.Topic)
		} else {
			err = s.createPartitions(ctx, r, rt, req.ValidateOnly)
		}
		ot.ErrorCode, ot.ErrorMessage = createErrCode(err), errMsg(err)
		resp.Topics = append(resp.Topics, ot)
	}
	return resp, nil
}

// createPartitions checks and applies one topic's new partition count.
func (s *Server) createPartitions(ctx context.Context, r *request, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	if code, err := s.authorize(ctx, r, meta.OpAlter, auth.Topic(rt.Topic)); err != nil {
		return codedError{code, err}
	}
	t, err := s.lookupTopic(ctx, rt.Topic)
	if err != nil {
		return err
	}
	switch {
	case rt.Assignment != nil:
		return codedError{kerr.InvalidReplicaAssignment.Code, errors.New("manual assignments are not supported: Strata places partitions itself")}
	case rt.Count == t.Partitions:
		return codedError{kerr.InvalidPartitions.Code, fmt.Errorf("topic %q already has %d partitions", rt.Topic, t.Partitions)}
	case rt.Count < t.Partitions:
		return codedError{kerr.InvalidPartitions.Code, fmt.Errorf("topic %q has %d partitions, more than the %d asked for: partitions can only be added", rt.Topic, t.Partitions, rt.Count)}
	}
	areq := &stratav1.AlterTopicRequest{Name: rt.Topic, Partitions: rt.Count}
	if err := s.core.CheckLimits(areq); err != nil {
		return codedError{kerr.PolicyViolation.Code, err}
	}
	if validateOnly {
		return nil
	}
	if _, err := s.core.Admin.AlterTopic(ctx, areq); err != nil {
		return err
	}
	s.waitPartitions(ctx, rt.Topic, rt.Count)
	return nil
}

// waitPartitions waits, at most viewCatchUp, for this proxy's view to
// show topic with n partitions or more (etcd has them already).
func (s *Server) waitPartitions(ctx context.Context, topic string, n int32) {
	timer := time.NewTimer(viewCatchUp)
	defer timer.Stop()
	for {
		ch := s.core.View.Changed()
		if t, ok := s.core.View.Topic(topic); !ok || t.Partitions >= n {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}
