package meta

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Consumer group state (docs/consumer-groups.md). The coordinator leader
// keeps each group in memory and writes it through to one key per group,
//
//	<root>/groups/<group>/state    GroupState
//
// with a compare on the key's ModRevision, so a coordinator that lost
// leadership without noticing yet cannot overwrite what the new leader
// wrote. Committed offsets stay under <root>/groups/<group>/offsets/.

// Bounds of a group member's session timeout, whichever door it joined
// through: below a second a loaded client misses heartbeats; past five
// minutes a dead member holds its partitions too long.
const (
	MinSessionTimeout = time.Second
	MaxSessionTimeout = 5 * time.Minute
)

// GroupState is the membership and assignment of one consumer group.
type GroupState struct {
	V int `json:"v"`
	// Epoch is the group epoch: it grows whenever membership or a
	// subscription changes and the target assignment is recomputed.
	Epoch int64 `json:"epoch"`
	// Assignor names the server-side assignor ("sticky" or "range").
	Assignor string `json:"assignor"`
	// Members, sorted by ID.
	Members []GroupMember `json:"members"`
	// Classic is set for a group run by Kafka's classic protocol.
	Classic *ClassicGroup `json:"classic,omitempty"`

	// Revision is the state key's ModRevision when read; 0 if absent.
	Revision int64 `json:"-"`
}

// GroupMember is one member of a consumer group.
type GroupMember struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id,omitempty"`
	// Epoch is the member epoch: it grows with every change of the
	// assignment handed to the member.
	Epoch int64 `json:"epoch"`
	// PrevEpoch is the member's epoch before its last change: a heartbeat
	// at it, whose answer was lost, is still accepted (KIP-848).
	PrevEpoch int64    `json:"prev_epoch,omitempty"`
	Topics    []string `json:"topics"`
	// TopicRegex is the member's subscription by regular expression, if
	// any; Topics then includes the topics it matched at the member's
	// last heartbeat (the front end resolves it).
	TopicRegex string `json:"topic_regex,omitempty"`
	// SessionTimeoutMs is the member's session timeout.
	SessionTimeoutMs int32 `json:"session_timeout_ms"`
	// Owned are the partitions the member owns: handed to it and not yet
	// reported given up. No partition is owned by two members.
	Owned []GroupPartition `json:"owned,omitempty"`
	// Target is the member's share of the group's target assignment.
	Target []GroupPartition `json:"target,omitempty"`
	// Assigned is the assignment the member was last told: Owned without
	// the partitions it was asked to revoke. Its epoch grows when this
	// changes.
	Assigned []GroupPartition `json:"assigned,omitempty"`
}

// MaxTopicRegexLen bounds a member's subscription by regular expression.
const MaxTopicRegexLen = 1024

// ValidateTopicRegex reports whether re can be a member's subscription
// by regular expression: RE2 syntax (Go's regexp, what Kafka's RE2/J
// accepts), at most MaxTopicRegexLen bytes. Empty is no subscription.
func ValidateTopicRegex(re string) error {
	if len(re) > MaxTopicRegexLen {
		return fmt.Errorf("topic regular expression of %d bytes, at most %d", len(re), MaxTopicRegexLen)
	}
	if _, err := regexp.Compile(re); err != nil {
		return fmt.Errorf("topic regular expression %q: %w", re, err)
	}
	return nil
}

// GroupPartition is a PartitionID in a group's state.
type GroupPartition = PartitionID

func (k keys) groupState(g string) string { return k.group(g) + "state" }

// GetGroupState reads a group's state. A group without state has epoch 0,
// no members and Revision 0.
func (s *Store) GetGroupState(ctx context.Context, group string) (GroupState, error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupState{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.groupState(group)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return GroupState{}, fmt.Errorf("meta: read group %s: %w", group, err)
	}
	if len(resp.Kvs) == 0 {
		return GroupState{}, nil
	}
	var st GroupState
	if err := decode(key, resp.Kvs[0].Value, &st); err != nil {
		return GroupState{}, err
	}
	st.Revision = resp.Kvs[0].ModRevision
	return st, nil
}

// PutGroupState writes a group's state if the key is still at
// st.Revision (0: absent) and returns the new revision; ErrConflict if it
// changed.
func (s *Store) PutGroupState(ctx context.Context, group string, st GroupState) (int64, error) {
	if err := ValidateGroupName(group); err != nil {
		return 0, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.keys.groupState(group)
	rev := st.Revision
	st.V = valueVersion
	// Sorted on a copy: the caller's slice, and pointers into it, stay
	// as they were.
	st.Members = slices.Clone(st.Members)
	slices.SortFunc(st.Members, func(a, b GroupMember) int { return strings.Compare(a.ID, b.ID) })
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, encode(st))).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("meta: write group %s: %w", group, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%w: group %s state changed", ErrConflict, group)
	}
	return resp.Header.Revision, nil
}

// CommitGroupOffsets stores offsets of a group if its state key is still
// at stateRev (0: absent), so that a coordinator that lost leadership
// cannot commit for members the new leader fenced. The offsets go in as
// few transactions as MaxTxnOps allows (one compare plus MaxTxnOps-1
// puts each); ErrConflict when the state moved.
func (s *Store) CommitGroupOffsets(ctx context.Context, group string, stateRev int64, offsets []CommittedOffset) error {
	ops, err := s.offsetOps(group, offsets)
	if err != nil {
		return err
	}
	return s.groupOps(ctx, group, stateRev, ops, "commit offsets")
}

// groupOps applies ops to group's keys if its state key is still at
// stateRev, in as few transactions as MaxTxnOps allows (one compare and
// MaxTxnOps-1 ops each); ErrConflict when the state moved. what names the
// change in errors.
func (s *Store) groupOps(ctx context.Context, group string, stateRev int64, ops []clientv3.Op, what string) error {
	per := s.cfg.MaxTxnOps - 1
	cmp := clientv3.Compare(clientv3.ModRevision(s.keys.groupState(group)), "=", stateRev)
	for start := 0; start < len(ops); start += per {
		rctx, cancel := s.ctx(ctx)
		resp, err := s.cli.Txn(rctx).If(cmp).Then(ops[start:min(start+per, len(ops))]...).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("meta: %s of %s: %w", what, group, err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("%w: group %s state changed", ErrConflict, group)
		}
	}
	return nil
}

// ListGroups returns the names of every group with state or committed
// offsets, sorted.
func (s *Store) ListGroups(ctx context.Context) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	prefix := s.keys.groups()
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("meta: list groups: %w", err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		name, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), prefix), "/")
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
	}
	return out, nil
}
