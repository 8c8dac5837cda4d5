package coordinator

import (
	"cmp"
	"context"
	"errors"
	"slices"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// deleteRetries bounds DeleteTopic's retries when the topic changes under
// it (meta.ErrConflict).
const deleteRetries = 3

// admin runs one admin call if this coordinator leads and counts it by
// method and result.
func (s *Server) admin(method string, call func() error) error {
	err := apierr.Errorf(apierr.ErrNotLeader, "coordinator %s is not the leader", s.cfg.ID)
	if s.leading.Load() {
		err = call()
	}
	s.metrics.observeAdmin(method, err)
	return err
}

// CreateTopic creates a topic. Zero partitions means one; zero config
// values take the defaults (docs/coordinator.md).
func (s *Server) CreateTopic(ctx context.Context, req *stratav1.CreateTopicRequest) (*stratav1.CreateTopicResponse, error) {
	var resp *stratav1.CreateTopicResponse
	err := s.admin("CreateTopic", func() error {
		t, err := s.topicFromRequest(req)
		if err != nil {
			return err
		}
		if t, err = s.cfg.Meta.CreateTopic(ctx, t); err != nil {
			return err
		}
		s.log.Info("created topic", "by", auth.NameOf(ctx), "topic", t.Name, "id", t.ID, "partitions", t.Partitions)
		resp = &stratav1.CreateTopicResponse{Topic: topicInfo(t)}
		return nil
	})
	return resp, err
}

// topicFromRequest validates a CreateTopic request and applies defaults.
func (s *Server) topicFromRequest(req *stratav1.CreateTopicRequest) (meta.Topic, error) {
	if err := meta.ValidateTopicName(req.GetName()); err != nil {
		return meta.Topic{}, err
	}
	t := meta.Topic{
		Name:            req.GetName(),
		Partitions:      req.GetPartitions(),
		RetentionMs:     req.GetConfig().GetRetentionMs(),
		RetentionBytes:  req.GetConfig().GetRetentionBytes(),
		MaxMessageBytes: req.GetConfig().GetMaxMessageBytes(),
	}
	if t.Partitions == 0 {
		t.Partitions = 1
	}
	if t.Partitions < 0 || t.Partitions > s.cfg.MaxPartitionsPerTopic {
		return meta.Topic{}, apierr.Errorf(apierr.ErrInvalidRequest, "%d partitions, want 1..%d", t.Partitions, s.cfg.MaxPartitionsPerTopic)
	}
	switch {
	case t.RetentionMs == 0:
		t.RetentionMs = s.cfg.DefaultRetentionMs
	case t.RetentionMs < -1:
		return meta.Topic{}, apierr.Errorf(apierr.ErrInvalidRequest, "retention_ms %d, want -1, 0 (default) or > 0", t.RetentionMs)
	}
	switch {
	case t.RetentionBytes == 0:
		t.RetentionBytes = DefaultRetentionBytes
	case t.RetentionBytes < -1:
		return meta.Topic{}, apierr.Errorf(apierr.ErrInvalidRequest, "retention_bytes %d, want -1, 0 (default) or > 0", t.RetentionBytes)
	}
	if t.MaxMessageBytes < 0 {
		return meta.Topic{}, apierr.Errorf(apierr.ErrInvalidRequest, "max_message_bytes %d, want 0 (broker default) or > 0", t.MaxMessageBytes)
	}
	var err error
	if t.CleanupPolicy, err = cleanupPolicy(req.GetConfig().GetCleanupPolicy(), meta.CleanupDelete); err != nil {
		return meta.Topic{}, err
	}
	return t, nil
}

// cleanupPolicy checks a requested cleanup policy; empty means def.
func cleanupPolicy(p, def string) (string, error) {
	if p == "" {
		return def, nil
	}
	if policy, ok := meta.CleanupPolicyOf(p); ok {
		return policy, nil
	}
	return "", apierr.Errorf(apierr.ErrInvalidRequest, "cleanup_policy %q, want %q, %q or %q", p, meta.CleanupDelete, meta.CleanupCompact, meta.CleanupCompactDelete)
}

// DeleteTopic deletes a topic's metadata; its objects are left to garbage
// collection.
func (s *Server) DeleteTopic(ctx context.Context, req *stratav1.DeleteTopicRequest) (*stratav1.DeleteTopicResponse, error) {
	err := s.admin("DeleteTopic", func() error {
		var err error
		for range deleteRetries {
			if err = s.cfg.Meta.DeleteTopic(ctx, req.GetName()); !errors.Is(err, meta.ErrConflict) {
				break
			}
		}
		if err == nil {
			s.log.Info("deleted topic", "by", auth.NameOf(ctx), "topic", req.GetName())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.DeleteTopicResponse{}, nil
}

// ListTopics returns every topic, ordered by name, without partition detail.
func (s *Server) ListTopics(ctx context.Context, _ *stratav1.ListTopicsRequest) (*stratav1.ListTopicsResponse, error) {
	var resp *stratav1.ListTopicsResponse
	err := s.admin("ListTopics", func() error {
		topics, _, err := s.cfg.Meta.ListTopics(ctx)
		if err != nil {
			return err
		}
		slices.SortFunc(topics, func(a, b meta.Topic) int { return cmp.Compare(a.Name, b.Name) })
		resp = &stratav1.ListTopicsResponse{Topics: make([]*stratav1.TopicInfo, 0, len(topics))}
		for _, t := range topics {
			resp.Topics = append(resp.Topics, topicInfo(t))
		}
		return nil
	})
	return resp, err
}

// DescribeTopic returns a topic with the state of each partition, read from
// etcd (not from the view) so the high watermarks are current.
func (s *Server) DescribeTopic(ctx context.Context, req *stratav1.DescribeTopicRequest) (*stratav1.DescribeTopicResponse, error) {
	var resp *stratav1.DescribeTopicResponse
	err := s.admin("DescribeTopic", func() error {
		t, err := s.cfg.Meta.GetTopic(ctx, req.GetName())
		if err != nil {
			return err
		}
		info := topicInfo(t)
		ids := make([]meta.PartitionID, t.Partitions)
		for p := range t.Partitions {
			ids[p] = meta.PartitionID{TopicID: t.ID, Partition: p}
		}
		sts, err := s.cfg.Meta.GetPartitions(ctx, ids)
		if err != nil {
			return err
		}
		info.PartitionInfo = make([]*stratav1.PartitionInfo, 0, len(sts))
		for _, st := range sts {
			info.PartitionInfo = append(info.PartitionInfo, &stratav1.PartitionInfo{
				Partition:      st.Partition,
				Broker:         st.Broker,
				Epoch:          st.Epoch,
				HighWatermark:  st.NextOffset,
				LogStartOffset: st.LogStart,
			})
		}
		resp = &stratav1.DescribeTopicResponse{Topic: info}
		return nil
	})
	return resp, err
}

// ClusterStatus returns the leader, every live broker with the partitions it
// owns, and the partitions without a live owner, from the leader's view.
func (s *Server) ClusterStatus(ctx context.Context, _ *stratav1.ClusterStatusRequest) (*stratav1.ClusterStatusResponse, error) {
	var resp *stratav1.ClusterStatusResponse
	err := s.admin("ClusterStatus", func() error {
		select {
		case <-s.view.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
		resp = s.clusterStatus()
		return nil
	})
	return resp, err
}

func (s *Server) clusterStatus() *stratav1.ClusterStatusResponse {
	resp := &stratav1.ClusterStatusResponse{CoordinatorLeader: s.cfg.ID, CoordinatorAddr: s.AdvertiseAddr()}
	byID := map[string]*stratav1.BrokerStatus{}
	for _, b := range s.view.Brokers() {
		bs := &stratav1.BrokerStatus{Id: b.ID, Addr: b.Addr, Zone: b.Zone, BytesInPerSec: b.BytesInPerSec, Draining: b.Draining,
			LastStorageError: b.LastStorageError}
		if !b.LastStorageErrorAt.IsZero() {
			bs.LastStorageErrorMs = b.LastStorageErrorAt.UnixMilli()
		}
		byID[b.ID] = bs
		resp.Brokers = append(resp.Brokers, bs)
	}
	slices.SortFunc(resp.Brokers, func(a, b *stratav1.BrokerStatus) int { return cmp.Compare(a.Id, b.Id) })
	parts := s.view.Partitions()
	names := map[string]string{}
	for _, t := range s.view.Topics() {
		names[t.ID] = t.Name
	}
	slices.SortFunc(parts, func(a, b meta.PartitionState) int {
		return cmp.Or(cmp.Compare(names[a.TopicID], names[b.TopicID]), cmp.Compare(a.Partition, b.Partition))
	})
	for _, p := range parts {
		ref := &stratav1.PartitionRef{Topic: names[p.TopicID], Partition: p.Partition, Epoch: p.Epoch}
		if bs, ok := byID[p.Broker]; ok {
			bs.Partitions = append(bs.Partitions, ref)
		} else {
			resp.Unassigned = append(resp.Unassigned, ref)
		}
	}
	return resp
}

// topicInfo converts a stored topic to its API form, without partitions.
func topicInfo(t meta.Topic) *stratav1.TopicInfo {
	return &stratav1.TopicInfo{
		Name:       t.Name,
		Id:         t.ID,
		Partitions: t.Partitions,
		Config: &stratav1.TopicConfig{
			RetentionMs:     t.RetentionMs,
			RetentionBytes:  t.RetentionBytes,
			MaxMessageBytes: t.MaxMessageBytes,
			CleanupPolicy:   cmp.Or(t.CleanupPolicy, meta.CleanupDelete),
		},
		CreatedAtMs: t.CreatedAt.UnixMilli(),
	}
}
