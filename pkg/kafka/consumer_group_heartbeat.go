package kafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/meta"
)

// ConsumerGroupHeartbeat v0–1 (KIP-848) runs on Strata's own server-side
// groups (docs/consumer-groups.md), which work the same way: members
// heartbeat, the coordinator computes the assignment and hands it out
// revoke-first. Member epoch 0 joins, -1 and -2 leave. The server
// assignors are "uniform" (Strata's "sticky") and "range".
//
// A subscription by regular expression (RE2, matching whole names, as
// Kafka's RE2/J) is resolved here, at every heartbeat, against this
// proxy's topics, keeping those the principal may describe; the
// coordinator stores the expression with the member and assigns the
// topics it matched, so a topic created later joins the subscription at
// the member's next heartbeat. An expression that does not compile is
// INVALID_REGULAR_EXPRESSION.
//
// Kafka lets a heartbeat leave out what did not change (subscription,
// owned partitions); Strata's heartbeat always carries both, so the proxy
// remembers each member's last ones (memberCache) and, when it does not
// know a member (another proxy served it before), reads them back from
// the coordinator's description of the group.
func init() { register(kmsg.ConsumerGroupHeartbeat, 0, 1, (*Server).handleConsumerGroupHeartbeat) }

// kafkaAssignors maps Kafka's server-side assignor names to Strata's.
var kafkaAssignors = map[string]string{"uniform": coordinator.AssignorSticky, "range": coordinator.AssignorRange}

// kafkaAssignorName is Kafka's name of Strata's assignor a.
func kafkaAssignorName(a string) string {
	for k, v := range kafkaAssignors {
		if v == a {
			return k
		}
	}
	return a
}

// memberCacheSize bounds the remembered KIP-848 members of a proxy; a
// member pushed out costs one DescribeGroup on its next partial
// heartbeat.
const memberCacheSize = 10_000

// memberState is what a KIP-848 member last said.
type memberState struct {
	topics   []string // subscribed by name
	regex    string   // subscribed by regular expression; "" if not
	owned    []*stratav1.TopicPartitions
	assignor string
}

// memberCache is the proxy's memory of KIP-848 members, by group and
// member id.
type memberCache = lru.Cache[[2]string, memberState]

func (s *Server) members() *memberCache {
	s.memberOnce.Do(func() {
		s.memberCache, _ = lru.New[[2]string, memberState](memberCacheSize)
	})
	return s.memberCache
}

func (s *Server) handleConsumerGroupHeartbeat(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16, err error) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = code, errMsg(err)
		return resp, nil
	}
	if code, err := s.authorize(ctx, r, meta.OpConsume, auth.Group(req.Group)); code != 0 {
		return fail(code, err)
	}
	member := req.MemberID
	if member == "" {
		if req.Version >= 1 || req.MemberEpoch != 0 {
			// Kafka: from v1 the client makes its member id, and only a
			// join (epoch 0) of v0 may come without one.
			return fail(kerr.InvalidRequest.Code, errors.New("member id is empty: from ConsumerGroupHeartbeat v1, and at any epoch but 0, the client makes its member id"))
		}
		member = newKIP848MemberID()
	}
	key := [2]string{req.Group, member}
	if req.MemberEpoch < 0 {
		s.members().Remove(key)
		_, err := s.core.Admin.LeaveGroup(ctx, &stratav1.LeaveGroupRequest{Group: req.Group, MemberId: member, MemberEpoch: int64(req.MemberEpoch)})
		resp.MemberID, resp.MemberEpoch, resp.ErrorCode = &member, req.MemberEpoch, errCode(err)
		return resp, nil
	}
	st, code, err := s.memberState(ctx, r, req, member)
	if code != 0 {
		return fail(code, err)
	}
	hb := &stratav1.GroupHeartbeatRequest{Group: req.Group, MemberId: member, MemberEpoch: int64(req.MemberEpoch),
		Topics: s.subscribed(ctx, r, st), TopicRegex: st.regex, Owned: st.owned, Assignor: st.assignor, ClientId: r.clientID,
		SessionTimeoutMs: int32(s.cfg.ConsumerSessionTimeout / time.Millisecond)}
	out, err := s.core.Admin.GroupHeartbeat(ctx, hb)
	if err != nil {
		s.members().Remove(key)
		return fail(errCode(err), err)
	}
	s.members().Add(key, st)
	resp.MemberID, resp.MemberEpoch = &member, int32(out.GetMemberEpoch())
	resp.HeartbeatIntervalMillis = out.GetHeartbeatIntervalMs()
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, tp := range out.GetAssignment() {
		t, ok := s.core.View.Topic(tp.GetTopic())
		if !ok {
			continue
		}
		at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		at.TopicID, at.Partitions = topicUUID(t.ID), tp.GetPartitions()
		a.Topics = append(a.Topics, at)
	}
	resp.Assignment = &a
	return resp, nil
}

// memberState is the member's full heartbeat: what the request says,
// and what it left out from the member's last heartbeat.
func (s *Server) memberState(ctx context.Context, r *request, req *kmsg.ConsumerGroupHeartbeatRequest, member string) (memberState, int16, error) {
	st, known := s.members().Get([2]string{req.Group, member})
	if !known && req.MemberEpoch > 0 && (req.SubscribedTopicNames == nil || req.SubscribedTopicRegex == nil || req.Topics == nil) {
		d, err := s.core.Admin.DescribeGroup(ctx, &stratav1.DescribeGroupRequest{Group: req.Group})
		if err != nil {
			return st, errCode(err), err
		}
		for _, m := range d.GetMembers() {
			if m.GetMemberId() == member {
				st = memberState{topics: m.GetTopics(), regex: m.GetTopicRegex(), owned: m.GetAssignment(), assignor: d.GetAssignor()}
			}
		}
		if st.regex != "" {
			st.topics = nil // what it matched; resolved again below
		}
	}
	if req.SubscribedTopicRegex != nil {
		if err := meta.ValidateTopicRegex(*req.SubscribedTopicRegex); err != nil {
			return st, kerr.InvalidRegularExpression.Code, err
		}
		st.regex = *req.SubscribedTopicRegex
	}
	if req.SubscribedTopicNames != nil {
		st.topics = slices.Clone(req.SubscribedTopicNames)
		for _, t := range st.topics {
			if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(t)); code != 0 {
				return st, code, err
			}
		}
	}
	if req.ServerAssignor != nil {
		a, known := kafkaAssignors[*req.ServerAssignor]
		if !known && *req.ServerAssignor != "" {
			return st, kerr.UnsupportedAssignor.Code, nil
		}
		st.assignor = a
	}
	if req.Topics != nil || req.MemberEpoch == 0 {
		st.owned = nil
		for _, rt := range req.Topics {
			if t, ok := s.topicByUUID(rt.TopicID); ok {
				st.owned = append(st.owned, &stratav1.TopicPartitions{Topic: t.Name, Partitions: rt.Partitions})
			}
		}
	}
	return st, 0, nil
}

// subscribed returns the topics of a member's subscription: those it
// names, and those of this proxy's view its regular expression matches as
// a whole and the principal may describe (the others are left out, as
// Kafka leaves them out).
func (s *Server) subscribed(ctx context.Context, r *request, st memberState) []string {
	if st.regex == "" {
		return st.topics
	}
	re, err := regexp.Compile("^(?:" + st.regex + ")$")
	if err != nil {
		return st.topics // checked when it was set
	}
	out := slices.Clone(st.topics)
	for _, t := range s.core.View.Topics() {
		if re.MatchString(t.Name) && s.allowed(ctx, r, meta.OpDescribe, auth.Topic(t.Name)) {
			out = append(out, t.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// newKIP848MemberID makes a member id for a v0 member that sent none,
// shaped like the ids Kafka clients make (a base64 UUID).
func newKIP848MemberID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
