package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// viewCatchUp bounds how long a request waits for the view to show a topic
// that etcd already has.
const viewCatchUp = 5 * time.Second

// lookupPartition returns the topic named topic after checking that it has
// partition p. A topic the view does not know yet is looked up in etcd: a
// client that just created it must not get UNKNOWN_TOPIC because this
// proxy's watch is a few milliseconds behind. If etcd has it, the request
// waits for the view to catch up.
func lookupPartition(ctx context.Context, v *meta.View, topic string, p int32) (meta.Topic, error) {
	t, ok := v.Topic(topic)
	if !ok {
		var err error
		if t, err = catchUp(ctx, v, topic); err != nil {
			return meta.Topic{}, err
		}
	}
	if p < 0 || p >= t.Partitions {
		return meta.Topic{}, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", p, topic, t.Partitions)
	}
	return t, nil
}

func catchUp(ctx context.Context, v *meta.View, topic string) (meta.Topic, error) {
	if err := meta.ValidateTopicName(topic); err != nil {
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q: %v", topic, err)
	}
	t, err := v.WaitTopic(ctx, topic, viewCatchUp)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, meta.ErrTopicNotFound):
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", topic)
	case errors.Is(err, meta.ErrViewBehind):
		return meta.Topic{}, apierr.Errorf(apierr.ErrStorageUnavailable, "topic %q exists but this proxy's metadata view has not caught up", topic)
	case ctx.Err() != nil:
		return meta.Topic{}, ctx.Err()
	default:
		return meta.Topic{}, apierr.Errorf(apierr.ErrStorageUnavailable, "look up topic %q: %v", topic, err)
	}
}
