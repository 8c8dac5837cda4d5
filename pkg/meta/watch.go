package meta

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// EventType says whether a watched key was written or removed.
type EventType int

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change to a watched kind of value. Err is set on the last
// event of a watch that failed (for example because etcd compacted past the
// revision it started from); the channel closes after it and the caller
// lists again.
type Event[T any] struct {
	Type     EventType
	Value    T
	Revision int64
	Err      error
}

// WatchBrokers streams broker registrations and departures after revision
// rev (from ListBrokers). On delete, Value holds only the ID. The channel
// closes when ctx ends or the watch fails.
func (s *Store) WatchBrokers(ctx context.Context, rev int64) <-chan Event[BrokerInfo] {
	prefix := s.keys.brokers()
	return watch(ctx, s, prefix, rev, func(key, value []byte) (BrokerInfo, error) {
		if value == nil {
			return BrokerInfo{ID: strings.TrimPrefix(string(key), prefix)}, nil
		}
		var b BrokerInfo
		return b, decode(string(key), value, &b)
	})
}

// WatchPartitions streams changes of partition state (assignments and
// commits) of every topic after revision rev (from ListPartitions). On
// delete, Value holds only TopicID and Partition.
func (s *Store) WatchPartitions(ctx context.Context, rev int64) <-chan Event[PartitionState] {
	return watch(ctx, s, s.keys.partitions(), rev, func(key, value []byte) (PartitionState, error) {
		return s.decodePartition(key, value, 0)
	})
}

// WatchTopics streams topic creation and deletion after revision rev (from
// ListTopics). On delete, Value holds only Name.
func (s *Store) WatchTopics(ctx context.Context, rev int64) <-chan Event[Topic] {
	prefix := s.keys.topics()
	return watch(ctx, s, prefix, rev, func(key, value []byte) (Topic, error) {
		if value == nil {
			return Topic{Name: strings.TrimPrefix(string(key), prefix)}, nil
		}
		var t Topic
		return t, decode(string(key), value, &t)
	})
}

// watch turns an etcd prefix watch into a channel of typed events. value is
// nil for deletes.
func watch[T any](ctx context.Context, s *Store, prefix string, rev int64, dec func(key, value []byte) (T, error)) <-chan Event[T] {
	out := make(chan Event[T], 64)
	wctx := clientv3.WithRequireLeader(ctx)
	wch := s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	go func() {
		defer close(out)
		send := func(ev Event[T]) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for resp := range wch {
			if err := resp.Err(); err != nil {
				send(Event[T]{Err: fmt.Errorf("meta: watch %s: %w", prefix, err)})
				return
			}
			for _, ev := range resp.Events {
				e := Event[T]{Type: EventPut, Revision: ev.Kv.ModRevision}
				value := ev.Kv.Value
				if ev.Type == clientv3.EventTypeDelete {
					e.Type, value = EventDelete, nil
				}
				v, err := dec(ev.Kv.Key, value)
				if err != nil {
					send(Event[T]{Err: err})
					return
				}
				if ps, ok := any(&v).(*PartitionState); ok && e.Type == EventPut {
					ps.Revision = ev.Kv.ModRevision
				}
				e.Value = v
				if !send(e) {
					return
				}
			}
		}
		if ctx.Err() == nil {
			send(Event[T]{Err: fmt.Errorf("meta: watch %s ended", prefix)})
		}
	}()
	return out
}
