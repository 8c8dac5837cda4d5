package meta

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-mq/strata/pkg/apierr"
)

// ErrInvalidGroup is returned for a group name that cannot be stored.
var ErrInvalidGroup = apierr.Alias("meta: invalid group", apierr.ErrInvalidGroupID)

// MaxGroupNameLen is the longest consumer group name.
const MaxGroupNameLen = 255

// ValidateGroupName reports whether name can name a consumer group:
// 1–255 printable ASCII characters without '/'.
func ValidateGroupName(name string) error {
	if name == "" || len(name) > MaxGroupNameLen {
		return fmt.Errorf("%w: name must be 1–%d characters", ErrInvalidGroup, MaxGroupNameLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("%w: name %q has %q", ErrInvalidGroup, name, c)
		}
	}
	return nil
}

// CommittedOffset is a consumer group's position in one partition: the
// offset of the next record it will consume.
type CommittedOffset struct {
	V int `json:"v"`
	// Offset is the next offset to consume.
	Offset int64 `json:"offset"`
	// Metadata is an opaque string the client stores with the offset.
	Metadata string `json:"metadata,omitempty"`
	// CommittedAt is when the offset was committed.
	CommittedAt time.Time `json:"committed_at"`

	TopicID   string `json:"-"`
	Partition int32  `json:"-"`
}

// MaxOffsetMetadata bounds CommittedOffset.Metadata.
const MaxOffsetMetadata = 4096

// CommitOffsets stores a group's offsets. Each transaction writes up to
// MaxTxnOps of them atomically.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []CommittedOffset) error {
	ops, err := s.offsetOps(group, offsets)
	if err != nil {
		return err
	}
	for start := 0; start < len(ops); start += s.cfg.MaxTxnOps {
		rctx, cancel := s.ctx(ctx)
		_, err = s.cli.Txn(rctx).Then(ops[start:min(start+s.cfg.MaxTxnOps, len(ops))]...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("meta: commit offsets of %s: %w", group, err)
		}
	}
	return nil
}

// offsetOps validates a group's offsets and returns the puts that store
// them, stamped with one commit time.
func (s *Store) offsetOps(group string, offsets []CommittedOffset) ([]clientv3.Op, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	ops := make([]clientv3.Op, 0, len(offsets))
	for _, o := range offsets {
		if o.TopicID == "" || o.Partition < 0 || o.Offset < 0 {
			return nil, fmt.Errorf("meta: invalid offset commit %s/%d@%d", o.TopicID, o.Partition, o.Offset)
		}
		if len(o.Metadata) > MaxOffsetMetadata {
			return nil, fmt.Errorf("meta: offset metadata is %d bytes, more than %d", len(o.Metadata), MaxOffsetMetadata)
		}
		o.V, o.CommittedAt = valueVersion, now
		ops = append(ops, clientv3.OpPut(s.keys.groupOffset(group, o.TopicID, o.Partition), encode(o)))
	}
	return ops, nil
}

// FetchOffsets returns every offset the group has committed.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]CommittedOffset, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	prefix := s.keys.groupOffsets(group)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("meta: fetch offsets of %s: %w", group, err)
	}
	out := make([]CommittedOffset, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		f := parseTail(string(kv.Key), prefix)
		if len(f) != 2 {
			return nil, fmt.Errorf("meta: malformed offset key %q", kv.Key)
		}
		p, err := parseInt32(f[1])
		if err != nil {
			return nil, fmt.Errorf("meta: malformed offset key %q: %w", kv.Key, err)
		}
		o := CommittedOffset{}
		if err := decode(string(kv.Key), kv.Value, &o); err != nil {
			return nil, err
		}
		o.TopicID, o.Partition = f[0], p
		out = append(out, o)
	}
	return out, nil
}
