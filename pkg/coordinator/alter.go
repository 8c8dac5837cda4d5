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

// AlterTopic changes a topic's retention_ms, retention_bytes and
// max_message_bytes. A zero field keeps the current value; the rules for
// the others are CreateTopic's. Retention applies from the leader's next
// lifecycle pass.
func (s *Server) AlterTopic(ctx context.Context, req *stratav1.AlterTopicRequest) (*stratav1.AlterTopicResponse, error) {
	var resp *stratav1.AlterTopicResponse
	err := s.admin("AlterTopic", func() error {
		if err := meta.ValidateTopicName(req.GetName()); err != nil {
			return err
		}
		c := req.GetConfig()
		switch {
		case c.GetRetentionMs() < -1:
			return apierr.Errorf(apierr.ErrInvalidRequest, "retention_ms %d, want -1, 0 (keep) or > 0", c.GetRetentionMs())
		case c.GetRetentionBytes() < -1:
			return apierr.Errorf(apierr.ErrInvalidRequest, "retention_bytes %d, want -1, 0 (keep) or > 0", c.GetRetentionBytes())
		case c.GetMaxMessageBytes() < 0:
			return apierr.Errorf(apierr.ErrInvalidRequest, "max_message_bytes %d, want 0 (keep) or > 0", c.GetMaxMessageBytes())
		}
		change := func(t *meta.Topic) error {
			if v := c.GetRetentionMs(); v != 0 {
				t.RetentionMs = v
			}
			if v := c.GetRetentionBytes(); v != 0 {
				t.RetentionBytes = v
			}
			if v := c.GetMaxMessageBytes(); v != 0 {
				t.MaxMessageBytes = v
			}
			return nil
		}
		var t meta.Topic
		var err error
		for range alterRetries {
			if t, err = s.cfg.Meta.AlterTopic(ctx, req.GetName(), change); !errors.Is(err, meta.ErrConflict) {
				break
			}
		}
		if err != nil {
			return err
		}
		s.log.Info("altered topic", "by", auth.NameOf(ctx), "topic", t.Name, "retention_ms", t.RetentionMs, "retention_bytes", t.RetentionBytes, "max_message_bytes", t.MaxMessageBytes)
		resp = &stratav1.AlterTopicResponse{Topic: topicInfo(t)}
		return nil
	})
	return resp, err
}
