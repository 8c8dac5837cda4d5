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
func lookupPartition(ctx context.Context, v *meta.View, ms *meta.Store, topic string, p int32) (meta.Topic, error) {
	t, ok := v.Topic(topic)
	if !ok {
		var err error
		if t, err = catchUp(ctx, v, ms, topic); err != nil {
			return meta.Topic{}, err
		}
	}
	if p < 0 || p >= t.Partitions {
		return meta.Topic{}, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", p, topic, t.Partitions)
	}
	return t, nil
}

func catchUp(ctx context.Context, v *meta.View, ms *meta.Store, topic string) (meta.Topic, error) {
	if err := meta.ValidateTopicName(topic); err != nil {
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q: %v", topic, err)
	}
	stored, err := ms.GetTopic(ctx, topic)
	switch {
	case errors.Is(err, meta.ErrTopicNotFound):
		return meta.Topic{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", topic)
	case err != nil:
		if ctx.Err() != nil {
			return meta.Topic{}, ctx.Err()
		}
		return meta.Topic{}, apierr.Errorf(apierr.ErrStorageUnavailable, "look up topic %q: %v", topic, err)
	}
	timer := time.NewTimer(viewCatchUp)
	defer timer.Stop()
	for {
		ch := v.Changed()
		if t, ok := v.Topic(topic); ok && t.ID == stored.ID {
			return t, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return meta.Topic{}, ctx.Err()
		case <-timer.C:
			return meta.Topic{}, apierr.Errorf(apierr.ErrStorageUnavailable, "topic %q exists but this proxy's metadata view has not caught up", topic)
		}
	}
}
