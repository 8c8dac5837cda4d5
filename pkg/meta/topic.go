package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Limits on topics.
const (
	// MaxTopicNameLen is the longest topic name, as in Kafka.
	MaxTopicNameLen = 249
	// MaxPartitions is the most partitions one topic may have.
	MaxPartitions = 10000
)

// Topic is a topic's configuration.
type Topic struct {
	V int `json:"v"`
	// ID is assigned at creation and never reused; data keys use it, so a
	// topic deleted and created again under the same name starts empty.
	ID string `json:"id"`
	// Name is unique in the cluster: 1–249 of [a-zA-Z0-9._-], not "." or "..".
	Name string `json:"name"`
	// Partitions is the partition count, 1..MaxPartitions.
	Partitions int32 `json:"partitions"`
	// RetentionMs deletes data older than this; -1 keeps it forever.
	RetentionMs int64 `json:"retention_ms"`
	// RetentionBytes deletes the oldest data of a partition past this size;
	// -1 means no limit.
	RetentionBytes int64 `json:"retention_bytes"`
	// MaxMessageBytes is the largest record batch a producer may send; 0
	// means the broker's default.
	MaxMessageBytes int32 `json:"max_message_bytes"`
	// CleanupPolicy is CleanupDelete (or empty, for topics created before
	// it existed) or CleanupCompactDelete: retention deletes old data; or
	// CleanupCompact: every record is kept, whatever the retention limits.
	CleanupPolicy string `json:"cleanup_policy,omitempty"`
	// CreatedAt is when the topic was created.
	CreatedAt time.Time `json:"created_at"`
}

// Cleanup policies of a topic, as Kafka names them.
const (
	// CleanupDelete lets retention delete a topic's old data.
	CleanupDelete = "delete"
	// CleanupCompact keeps every record of the topic, whatever its
	// retention limits: so the latest value of every key is kept, which is
	// what Kafka's compacted topics promise. Strata does not yet remove
	// the values a later record of the same key overwrote.
	CleanupCompact = "compact"
	// CleanupCompactDelete is Kafka's "compact,delete" (Kafka Streams'
	// windowed changelogs): retention deletes old data as for
	// CleanupDelete, which keeps every record compaction would within the
	// limits.
	CleanupCompactDelete = "compact,delete"
)

// CleanupPolicyOf returns the cleanup policy p names, "delete,compact"
// being CleanupCompactDelete, and whether p names one.
func CleanupPolicyOf(p string) (string, bool) {
	switch p {
	case CleanupDelete, CleanupCompact, CleanupCompactDelete:
		return p, true
	case "delete,compact":
		return CleanupCompactDelete, true
	}
	return "", false
}

// Compacted reports whether t keeps every record (CleanupCompact).
func (t Topic) Compacted() bool { return t.CleanupPolicy == CleanupCompact }

// ValidateTopicName reports whether name can name a topic.
func ValidateTopicName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	}
	if len(name) > MaxTopicNameLen {
		return fmt.Errorf("%w: name is %d characters, more than %d", ErrInvalidTopic, len(name), MaxTopicNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: name %q is reserved", ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q has %q; use letters, digits, '.', '_' and '-'", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// Validate reports whether t can be stored.
func (t *Topic) Validate() error {
	if err := ValidateTopicName(t.Name); err != nil {
		return err
	}
	if t.Partitions < 1 || t.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions, want 1..%d", ErrInvalidTopic, t.Partitions, MaxPartitions)
	}
	if t.RetentionMs < -1 || t.RetentionMs == 0 {
		return fmt.Errorf("%w: retention_ms %d, want -1 or > 0", ErrInvalidTopic, t.RetentionMs)
	}
	if t.RetentionBytes < -1 || t.RetentionBytes == 0 {
		return fmt.Errorf("%w: retention_bytes %d, want -1 or > 0", ErrInvalidTopic, t.RetentionBytes)
	}
	if t.MaxMessageBytes < 0 {
		return fmt.Errorf("%w: max_message_bytes %d is negative", ErrInvalidTopic, t.MaxMessageBytes)
	}
	return nil
}

// CreateTopic stores a new topic, assigning its ID and creation time, and
// returns it. Its partitions start unassigned (epoch 0) and empty.
func (s *Store) CreateTopic(ctx context.Context, t Topic) (Topic, error) {
	t.V = valueVersion
	if err := t.Validate(); err != nil {
		return Topic{}, err
	}
	t.ID = newID()
	t.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.topic(t.Name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encode(t))).
		Commit()
	if err != nil {
		return Topic{}, fmt.Errorf("meta: create topic %s: %w", t.Name, err)
	}
	if !resp.Succeeded {
		return Topic{}, fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
	}
	return t, nil
}

// GetTopic returns the topic named name.
func (s *Store) GetTopic(ctx context.Context, name string) (Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return Topic{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.topic(name)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return Topic{}, fmt.Errorf("meta: get topic %s: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return Topic{}, fmt.Errorf("%w: %s", ErrTopicNotFound, name)
	}
	var t Topic
	return t, decode(key, resp.Kvs[0].Value, &t)
}

// ListTopics returns every topic, ordered by name, and the etcd revision the
// list was read at.
func (s *Store) ListTopics(ctx context.Context) ([]Topic, int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.keys.topics(), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("meta: list topics: %w", err)
	}
	topics := make([]Topic, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var t Topic
		if err := decode(string(kv.Key), kv.Value, &t); err != nil {
			return nil, 0, err
		}
		topics = append(topics, t)
	}
	return topics, resp.Header.Revision, nil
}

// DeleteTopic removes a topic with its partition state, segment entries,
// log starts and aborted transactions in one transaction. The segment objects stay in object storage
// until garbage collection finds them unreferenced.
func (s *Store) DeleteTopic(ctx context.Context, name string) error {
	t, err := s.GetTopic(ctx, name)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.topic(name)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", encode(t))).
		Then(
			clientv3.OpDelete(key),
			clientv3.OpDelete(s.keys.topicPartitions(t.ID), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.logStarts(t.ID), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.topicSegments(t.ID), clientv3.WithPrefix()),
			clientv3.OpDelete(s.keys.topicAborted(t.ID), clientv3.WithPrefix()),
		).Commit()
	if err != nil {
		return fmt.Errorf("meta: delete topic %s: %w", name, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: topic %s changed while deleting", ErrConflict, name)
	}
	return nil
}

// newID returns a random 128-bit identifier in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
