package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
)

// TopicConfig is a topic's configuration. Zero fields mean the cluster's
// defaults.
type TopicConfig struct {
	// Retention is how long data is kept; negative means forever.
	Retention time.Duration
	// RetentionBytes is the size kept per partition; negative means no limit.
	RetentionBytes int64
	// MaxMessageBytes is the largest produce request accepted.
	MaxMessageBytes int32
	// CleanupPolicy is "delete" (retention deletes old data) or "compact"
	// (every record is kept: see CleanupPolicy).
	CleanupPolicy string
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	ID         string
	Partitions int32
	Config     TopicConfig
	CreatedAt  time.Time
	// PartitionInfo is filled by DescribeTopic, not by ListTopics.
	PartitionInfo []PartitionInfo
}

// PartitionInfo is the state of one partition.
type PartitionInfo struct {
	Partition int32
	// Broker is the owning broker's id; empty while unassigned.
	Broker string
	// Epoch is the owner's epoch; it grows on every ownership change.
	Epoch int64
	// HighWatermark is the next offset to be written: every offset below
	// it is committed and readable.
	HighWatermark int64
	// LogStartOffset is the first offset still readable.
	LogStartOffset int64
}

// PartitionRef names a partition and its owner epoch.
type PartitionRef struct {
	Topic     string
	Partition int32
	Epoch     int64
}

// BrokerStatus is one live broker.
type BrokerStatus struct {
	ID            string
	Addr          string
	Zone          string
	BytesInPerSec float64
	Draining      bool
	Partitions    []PartitionRef
	// LastStorageError is the broker's last object-storage error, empty
	// if it has had none since it started; LastStorageErrorAt is when.
	LastStorageError   string
	LastStorageErrorAt time.Time
}

// timeFromMs converts Unix milliseconds to a time; 0 is the zero time.
func timeFromMs(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// ClusterStatus is the cluster as the coordinator leader sees it.
type ClusterStatus struct {
	// CoordinatorLeader and CoordinatorAddr identify the leader.
	CoordinatorLeader string
	CoordinatorAddr   string
	Brokers           []BrokerStatus
	// Unassigned lists partitions with no live owner.
	Unassigned []PartitionRef
}

// CreateTopic creates a topic with the given number of partitions. It
// fails with ErrTopicExists if the topic exists and ErrInvalidTopic if the
// name is not valid. Like every admin call, it is retried on retriable
// errors (AdminAttempts); a retried create whose first attempt did succeed
// reports ErrTopicExists.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, opts ...TopicOpt) (*TopicInfo, error) {
	if err := validTopic(name); err != nil {
		return nil, err
	}
	if partitions < 1 {
		return nil, fmt.Errorf("%w: partitions must be at least 1, got %d", ErrInvalidRequest, partitions)
	}
	var tc topicConfig
	for _, o := range opts {
		o.applyTopic(&tc)
	}
	if tc.maxMessageBytes < 0 {
		return nil, fmt.Errorf("%w: max message bytes must not be negative, got %d", ErrInvalidRequest, tc.maxMessageBytes)
	}
	if len(tc.reset) > 0 {
		return nil, fmt.Errorf("%w: ResetTopicConfig is for AlterTopic: a new topic gets the defaults of the configs it is not given", ErrInvalidRequest)
	}
	resp, err := call(ctx, c, c.api.CreateTopic, &stratav1.CreateTopicRequest{
		Name:       name,
		Partitions: partitions,
		Config: &stratav1.TopicConfig{
			RetentionMs:     tc.retentionMs,
			RetentionBytes:  tc.retentionBytes,
			MaxMessageBytes: tc.maxMessageBytes,
			CleanupPolicy:   tc.cleanupPolicy,
		},
	})
	if err != nil {
		return nil, err
	}
	return topicInfo(resp.GetTopic()), nil
}

// DeleteTopic deletes a topic. It fails with ErrUnknownTopic if there is
// none of that name.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	if err := validTopic(name); err != nil {
		return err
	}
	_, err := call(ctx, c, c.api.DeleteTopic, &stratav1.DeleteTopicRequest{Name: name})
	return err
}

// ListTopics returns every topic, without partition details.
func (c *Client) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	resp, err := call(ctx, c, c.api.ListTopics, &stratav1.ListTopicsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(resp.GetTopics()))
	for _, t := range resp.GetTopics() {
		out = append(out, *topicInfo(t))
	}
	return out, nil
}

// DescribeTopic returns a topic with the state of each partition: owner,
// epoch, high watermark and log start. It fails with ErrUnknownTopic if
// the topic does not exist.
func (c *Client) DescribeTopic(ctx context.Context, name string) (*TopicInfo, error) {
	if err := validTopic(name); err != nil {
		return nil, err
	}
	resp, err := call(ctx, c, c.api.DescribeTopic, &stratav1.DescribeTopicRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return topicInfo(resp.GetTopic()), nil
}

// ClusterStatus returns the coordinator leader, the live brokers with the
// partitions each owns, and the partitions without an owner.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	resp, err := call(ctx, c, c.api.ClusterStatus, &stratav1.ClusterStatusRequest{})
	if err != nil {
		return nil, err
	}
	out := &ClusterStatus{
		CoordinatorLeader: resp.GetCoordinatorLeader(),
		CoordinatorAddr:   resp.GetCoordinatorAddr(),
		Unassigned:        partitionRefs(resp.GetUnassigned()),
	}
	for _, b := range resp.GetBrokers() {
		out.Brokers = append(out.Brokers, BrokerStatus{
			ID:            b.GetId(),
			Addr:          b.GetAddr(),
			Zone:          b.GetZone(),
			BytesInPerSec: b.GetBytesInPerSec(),
			Draining:      b.GetDraining(),
			Partitions:    partitionRefs(b.GetPartitions()),

			LastStorageError:   b.GetLastStorageError(),
			LastStorageErrorAt: timeFromMs(b.GetLastStorageErrorMs()),
		})
	}
	return out, nil
}

func partitionRefs(in []*stratav1.PartitionRef) []PartitionRef {
	out := make([]PartitionRef, 0, len(in))
	for _, p := range in {
		out = append(out, PartitionRef{Topic: p.GetTopic(), Partition: p.GetPartition(), Epoch: p.GetEpoch()})
	}
	return out
}

func topicInfo(t *stratav1.TopicInfo) *TopicInfo {
	out := &TopicInfo{
		Name:       t.GetName(),
		ID:         t.GetId(),
		Partitions: t.GetPartitions(),
		Config: TopicConfig{
			Retention:       time.Duration(t.GetConfig().GetRetentionMs()) * time.Millisecond,
			RetentionBytes:  t.GetConfig().GetRetentionBytes(),
			MaxMessageBytes: t.GetConfig().GetMaxMessageBytes(),
			CleanupPolicy:   t.GetConfig().GetCleanupPolicy(),
		},
	}
	if ms := t.GetCreatedAtMs(); ms != 0 {
		out.CreatedAt = time.UnixMilli(ms)
	}
	for _, p := range t.GetPartitionInfo() {
		out.PartitionInfo = append(out.PartitionInfo, PartitionInfo{
			Partition:      p.GetPartition(),
			Broker:         p.GetBroker(),
			Epoch:          p.GetEpoch(),
			HighWatermark:  p.GetHighWatermark(),
			LogStartOffset: p.GetLogStartOffset(),
		})
	}
	return out
}

// AlterTopic changes a topic's configs and adds partitions (Partitions);
// options not given keep their current value (Retention(-1) removes the
// time limit), and ResetTopicConfig sets configs back to the cluster's
// defaults. It fails with ErrUnknownTopic if the topic does not exist.
func (c *Client) AlterTopic(ctx context.Context, name string, opts ...TopicOpt) (*TopicInfo, error) {
	if err := validTopic(name); err != nil {
		return nil, err
	}
	var tc topicConfig
	for _, o := range opts {
		o.applyTopic(&tc)
	}
	resp, err := call(ctx, c, c.api.AlterTopic, &stratav1.AlterTopicRequest{
		Name: name,
		Config: &stratav1.TopicConfig{
			RetentionMs:     tc.retentionMs,
			RetentionBytes:  tc.retentionBytes,
			MaxMessageBytes: tc.maxMessageBytes,
			CleanupPolicy:   tc.cleanupPolicy,
		},
		ResetToDefault: tc.reset,
		Partitions:     tc.partitions,
	})
	if err != nil {
		return nil, err
	}
	return topicInfo(resp.GetTopic()), nil
}

// DeleteToEnd, as an offset to DeleteRecords, deletes every record of the
// partition written so far (its high watermark), as Kafka's -1 does.
const DeleteToEnd int64 = -1

// DeleteRecords deletes the records of topic below the given offset of
// each partition, as Kafka's DeleteRecords does: the partition's log start
// moves forward to it (DeleteToEnd: to the high watermark), consumers no
// longer read below it, and storage drops what lies wholly below it. An
// offset at or below the log start changes nothing; one past the high
// watermark fails with ErrOffsetOutOfRange. It returns each partition's
// log start after the call. Partitions succeed or fail on their own: a
// failed one is missing from the map, and its error, naming it, is joined
// into err (errors.Is works on it).
func (c *Client) DeleteRecords(ctx context.Context, topic string, before map[int32]int64) (map[int32]int64, error) {
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	if len(before) == 0 {
		return nil, fmt.Errorf("%w: DeleteRecords needs at least one partition", ErrInvalidRequest)
	}
	req := &stratav1.DeleteRecordsRequest{Topic: topic}
	for p, off := range before {
		req.Partitions = append(req.Partitions, &stratav1.DeleteRecordsPartition{Partition: p, Offset: off})
	}
	resp, err := call(ctx, c, c.api.DeleteRecords, req)
	if err != nil {
		return nil, err
	}
	starts := make(map[int32]int64, len(before))
	var errs []error
	for _, r := range resp.GetResults() {
		if err := apierr.FromPart(r.GetError()); err != nil {
			errs = append(errs, fmt.Errorf("partition %d of %q: %w", r.GetPartition(), topic, err))
			continue
		}
		starts[r.GetPartition()] = r.GetLogStartOffset()
	}
	return starts, errors.Join(errs...)
}
