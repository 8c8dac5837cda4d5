package meta

import (
	"bytes"
	"slices"
)

// Equal reports whether a and b hold the same group state, ignoring
// Revision (where it was read, not what it says). A nil and an empty list
// are the same: both encode to no members, partitions or bytes. The
// coordinator writes a state only when it is not Equal to the stored one.
func (a GroupState) Equal(b GroupState) bool {
	return a.V == b.V && a.Epoch == b.Epoch && a.Assignor == b.Assignor &&
		slices.EqualFunc(a.Members, b.Members, GroupMember.Equal) &&
		(a.Classic == nil) == (b.Classic == nil) &&
		(a.Classic == nil || a.Classic.Equal(*b.Classic))
}

// Equal reports whether two members are the same in every field.
func (a GroupMember) Equal(b GroupMember) bool {
	return a.ID == b.ID && a.ClientID == b.ClientID && a.Epoch == b.Epoch &&
		a.PrevEpoch == b.PrevEpoch && a.SessionTimeoutMs == b.SessionTimeoutMs &&
		slices.Equal(a.Topics, b.Topics) && a.TopicRegex == b.TopicRegex && slices.Equal(a.Owned, b.Owned) &&
		slices.Equal(a.Target, b.Target) && slices.Equal(a.Assigned, b.Assigned)
}

// Equal reports whether two classic groups are the same in every field.
func (a ClassicGroup) Equal(b ClassicGroup) bool {
	return a.ProtocolType == b.ProtocolType && a.Protocol == b.Protocol &&
		a.Generation == b.Generation && a.Leader == b.Leader && a.State == b.State &&
		slices.EqualFunc(a.Members, b.Members, ClassicMember.Equal)
}

// Equal reports whether two classic members are the same in every field.
func (a ClassicMember) Equal(b ClassicMember) bool {
	return a.ID == b.ID && a.InstanceID == b.InstanceID && a.ClientID == b.ClientID &&
		a.ClientHost == b.ClientHost && a.SessionTimeoutMs == b.SessionTimeoutMs &&
		a.RebalanceTimeoutMs == b.RebalanceTimeoutMs && a.Joined == b.Joined &&
		bytes.Equal(a.Assignment, b.Assignment) &&
		slices.EqualFunc(a.Protocols, b.Protocols, func(x, y ClassicProtocol) bool {
			return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
		})
}
