package meta

// ClassicGroup is the state of a consumer group run by Kafka's classic
// protocol (JoinGroup/SyncGroup, client-side assignors), stored in the
// group's GroupState beside the server-side members so that both kinds
// share one state key, one revision to fence commits on, and one offset
// store. A group holds members of one kind at a time.
type ClassicGroup struct {
	// ProtocolType is the members' protocol type ("consumer").
	ProtocolType string `json:"protocol_type"`
	// Protocol is the assignor chosen for Generation.
	Protocol string `json:"protocol,omitempty"`
	// Generation grows with every completed join phase.
	Generation int32 `json:"generation"`
	// Leader is the member that computes the assignment.
	Leader string `json:"leader,omitempty"`
	// State is Kafka's group state: Empty, PreparingRebalance,
	// CompletingRebalance or Stable.
	State string `json:"state"`
	// Members, sorted by ID.
	Members []ClassicMember `json:"members,omitempty"`
}

// ClassicMember is one member of a classic group.
type ClassicMember struct {
	ID         string `json:"id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id,omitempty"`
	ClientHost string `json:"client_host,omitempty"`
	// SessionTimeoutMs and RebalanceTimeoutMs are the member's timeouts.
	SessionTimeoutMs   int32 `json:"session_timeout_ms"`
	RebalanceTimeoutMs int32 `json:"rebalance_timeout_ms"`
	// Protocols are the assignors the member supports, by preference.
	Protocols []ClassicProtocol `json:"protocols"`
	// Joined is set when the member has joined the rebalance under way
	// (or the last one, once it completed).
	Joined bool `json:"joined,omitempty"`
	// Assignment is what the leader assigned the member for Generation.
	Assignment []byte `json:"assignment,omitempty"`
}

// ClassicProtocol is an assignor name with the member's metadata for it.
type ClassicProtocol struct {
	Name     string `json:"name"`
	Metadata []byte `json:"metadata,omitempty"`
}
