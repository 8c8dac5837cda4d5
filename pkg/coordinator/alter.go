package coordinator

import (
	"context"
	"errors"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// alterRetries bounds AlterTopic's retries when the topic changes under it.
const alterRetries = 3

// AlterTopic changes a topic's retention_ms, retention_bytes,
// max_message_bytes and cleanup_policy, and adds partitions. A zero field
// keeps the current value; the rules for the others are CreateTopic's. A
// field named in reset_to_default goes back to the cluster default, as
// for a topic created without it. Retention applies from the leader's
// next lifecycle pass; new partitions are placed by the next placement
// pass, which the topic's change wakes.
func (s *Server) AlterTopic(ctx context.Context, req *stratav1.AlterTopicRequest) (*stratav1.AlterTopicResponse, error) {
	var resp *stratav1.AlterTopicResponse
	err := s.admin("AlterTopic", func() error {
		if err := meta.ValidateTopicName(req.GetName()); err != nil {
			return err
		}
		if err := s.checkAlter(req); err != nil {
			return err
		}
		c, err := s.withResets(req.GetConfig(), req.GetResetToDefault())
		if err != nil {
			return err
		}
		var t meta.Topic
		for range alterRetries {
			if t, err = s.cfg.Meta.AlterTopic(ctx, req.GetName(), func(t *meta.Topic) error { return applyAlter(t, c, req.GetPartitions()) }); !errors.Is(err, meta.ErrConflict) {
				break
			}
		}
		if err != nil {
			return err
		}
		s.log.Info("altered topic", "by", auth.NameOf(ctx), "topic", t.Name, "retention_ms", t.RetentionMs, "retention_bytes", t.RetentionBytes,
			"max_message_bytes", t.MaxMessageBytes, "cleanup_policy", t.CleanupPolicy, "partitions", t.Partitions)
		resp = &stratav1.AlterTopicResponse{Topic: topicInfo(t)}
		return nil
	})
	return resp, err
}

// checkAlter checks the limits an AlterTopic sets (withResets checks the
// cleanup policy, applyAlter that partitions are only added).
func (s *Server) checkAlter(req *stratav1.AlterTopicRequest) error {
	c := req.GetConfig()
	switch {
	case req.GetPartitions() < 0 || req.GetPartitions() > s.cfg.MaxPartitionsPerTopic:
		return apierr.Errorf(apierr.ErrInvalidRequest, "%d partitions, want 0 (keep) or up to %d", req.GetPartitions(), s.cfg.MaxPartitionsPerTopic)
	case c.GetRetentionMs() < -1:
		return apierr.Errorf(apierr.ErrInvalidRequest, "retention_ms %d, want -1, 0 (keep) or > 0", c.GetRetentionMs())
	case c.GetRetentionBytes() < -1:
		return apierr.Errorf(apierr.ErrInvalidRequest, "retention_bytes %d, want -1, 0 (keep) or > 0", c.GetRetentionBytes())
	case c.GetMaxMessageBytes() < 0:
		return apierr.Errorf(apierr.ErrInvalidRequest, "max_message_bytes %d, want 0 (keep) or > 0", c.GetMaxMessageBytes())
	}
	return nil
}

// applyAlter applies c, with its resets filled in (withResets), and the
// partition count (0 keeps it) to t. Fewer partitions than t has is
// INVALID_REQUEST.
func applyAlter(t *meta.Topic, c *stratav1.TopicConfig, partitions int32) error {
	if partitions != 0 && partitions < t.Partitions {
		return apierr.Errorf(apierr.ErrInvalidRequest, "topic %s has %d partitions; partitions can only be added", t.Name, t.Partitions)
	}
	if partitions != 0 {
		t.Partitions = partitions
	}
	if v := c.GetRetentionMs(); v != 0 {
		t.RetentionMs = v
	}
	if v := c.GetRetentionBytes(); v != 0 {
		t.RetentionBytes = v
	}
	switch v := c.GetMaxMessageBytes(); {
	case v == resetMaxMessageBytes:
		t.MaxMessageBytes = 0
	case v != 0:
		t.MaxMessageBytes = v
	}
	if v := c.GetCleanupPolicy(); v != "" {
		t.CleanupPolicy = v
	}
	return nil
}

// resetMaxMessageBytes stands, inside AlterTopic, for max_message_bytes
// reset to 0 (the brokers' limit), which the request's 0 cannot say.
const resetMaxMessageBytes = -1

// withResets returns c with its cleanup policy checked and normalized
// and each field named in reset set to the cluster default. A field both
// set and reset, or a name that is not a TopicConfig field, is
// INVALID_REQUEST.
func (s *Server) withResets(c *stratav1.TopicConfig, reset []string) (*stratav1.TopicConfig, error) {
	policy, err := cleanupPolicy(c.GetCleanupPolicy(), "")
	if err != nil {
		return nil, err
	}
	out := &stratav1.TopicConfig{RetentionMs: c.GetRetentionMs(), RetentionBytes: c.GetRetentionBytes(), MaxMessageBytes: c.GetMaxMessageBytes(), CleanupPolicy: policy}
	for _, name := range reset {
		var set bool
		switch name {
		case "retention_ms":
			set, out.RetentionMs = out.RetentionMs != 0, s.cfg.DefaultRetentionMs
		case "retention_bytes":
			set, out.RetentionBytes = out.RetentionBytes != 0, DefaultRetentionBytes
		case "max_message_bytes":
			set, out.MaxMessageBytes = out.MaxMessageBytes != 0, resetMaxMessageBytes
		case "cleanup_policy":
			set, out.CleanupPolicy = out.CleanupPolicy != "", meta.CleanupDelete
		default:
			return nil, apierr.Errorf(apierr.ErrInvalidRequest, "cannot reset %q: the topic configs are retention_ms, retention_bytes, max_message_bytes and cleanup_policy", name)
		}
		if set {
			return nil, apierr.Errorf(apierr.ErrInvalidRequest, "%s is both set and reset", name)
		}
	}
	return out, nil
}
