package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// viewCatchUp bounds how long a request waits for the proxy's view to show
// a topic etcd already has (one created a moment ago).
const viewCatchUp = 5 * time.Second

// topicUUID is a topic's Kafka topic id: its Strata id, which is 128
// random bits in hex, as the 16 bytes Kafka expects. It never changes and
// is never reused, as Kafka's are. An id that is not 32 hex digits (none
// are) would be hashed.
func topicUUID(id string) [16]byte {
	var u [16]byte
	if b, err := hex.DecodeString(id); err == nil && len(b) == 16 {
		copy(u[:], b)
		return u
	}
	sum := sha256.Sum256([]byte(id))
	copy(u[:], sum[:])
	return u
}

// topicByUUID finds a topic by its Kafka topic id.
func (s *Server) topicByUUID(u [16]byte) (meta.Topic, bool) {
	return s.core.View.TopicByID(hex.EncodeToString(u[:]))
}

// lookupTopic returns the topic named name, waiting for the view to catch
// up with etcd if it was created a moment ago. A missing topic is
// apierr.ErrUnknownTopic.
func (s *Server) lookupTopic(ctx context.Context, name string) (meta.Topic, error) {
	if t, ok := s.core.View.Topic(name); ok {
		return t, nil
	}
	if err := meta.ValidateTopicName(name); err != nil {
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q: %v", name, err)
	}
	t, err := s.core.View.WaitTopic(ctx, name, viewCatchUp)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, meta.ErrTopicNotFound):
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", name)
	case ctx.Err() != nil:
		return meta.Topic{}, ctx.Err()
	default:
		return meta.Topic{}, apierr.Errorf(apierr.ErrStorageUnavailable, "look up topic %q: %v", name, err)
	}
}

// leaderEpoch is a partition's Kafka leader epoch: its Strata partition
// epoch, which grows by one with every change of owner and never goes
// back.
func leaderEpoch(st meta.PartitionState) int32 {
	return int32(min(st.Epoch, math.MaxInt32))
}
