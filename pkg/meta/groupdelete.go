package meta

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// DeleteGroup removes a group's state and committed offsets in one
// transaction, if its state key is still at stateRev (0: absent), so a
// member that joined meanwhile is not deleted under it; ErrConflict when
// the state moved. It reports whether the group had any key.
func (s *Store) DeleteGroup(ctx context.Context, group string, stateRev int64) (bool, error) {
	if err := ValidateGroupName(group); err != nil {
		return false, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(s.keys.groupState(group)), "=", stateRev)).
		Then(clientv3.OpDelete(s.keys.group(group), clientv3.WithPrefix())).
		Commit()
	if err != nil {
		return false, fmt.Errorf("meta: delete group %s: %w", group, err)
	}
	if !resp.Succeeded {
		return false, fmt.Errorf("%w: group %s state changed", ErrConflict, group)
	}
	return resp.Responses[0].GetResponseDeleteRange().Deleted > 0, nil
}

// DeleteGroupOffsets removes a group's committed offsets of parts, if its
// state key is still at stateRev (0: absent), so that a member that
// joined meanwhile does not lose offsets it may be reading from;
// ErrConflict when the state moved.
func (s *Store) DeleteGroupOffsets(ctx context.Context, group string, stateRev int64, parts []GroupPartition) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	ops := make([]clientv3.Op, len(parts))
	for i, p := range parts {
		ops[i] = clientv3.OpDelete(s.keys.groupOffset(group, p.TopicID, p.Partition))
	}
	return s.groupOps(ctx, group, stateRev, ops, "delete offsets")
}
