package kafka_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
)

// joinReq is a JoinGroup of a consumer subscribed to orders with the
// range assignor.
func joinReq(version int16, member string) *kmsg.JoinGroupRequest {
	md := kmsg.ConsumerMemberMetadata{Topics: []string{"orders"}}
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID, req.ProtocolType = version, "wire", member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 6000, 6000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", md.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return req
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: error code %d (%v), want %v", what, got, kerr.ErrorForCode(got), want)
	}
}

// TestClassicGroupOverTheWire drives the classic group APIs at their
// floor and newer versions over raw connections: the member-id handshake
// of JoinGroup v4+, a leader's sync, heartbeats at good and stale
// generations, a second member joining by v0 (which rebalances the
// first), per-partition errors of OffsetCommit, OffsetFetch in the v1 and
// batched v8 shapes, DescribeGroups, a batched LeaveGroup, ListGroups and
// DeleteGroups.
func TestClassicGroupOverTheWire(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("orders", 2)
	r1, r2 := c.raw(), c.raw()

	first := r1.roundTrip(joinReq(4, "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "JoinGroup v4 without an id", first.ErrorCode, kerr.MemberIDRequired)
	a := first.MemberID
	j := r1.roundTrip(joinReq(4, a)).(*kmsg.JoinGroupResponse)
	wantCode(t, "JoinGroup v4 with the id", j.ErrorCode, nil)
	if j.Generation != 1 || j.LeaderID != a || len(j.Members) != 1 || *j.Protocol != "range" {
		t.Fatalf("first join: generation %d, leader %s, %d members, protocol %s", j.Generation, j.LeaderID, len(j.Members), *j.Protocol)
	}
	assignment := (&kmsg.ConsumerMemberAssignment{Topics: []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 1}}}}).AppendTo(nil)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation = 3, "wire", a, 1
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: a, MemberAssignment: assignment}}
	s := r1.roundTrip(sync).(*kmsg.SyncGroupResponse)
	wantCode(t, "SyncGroup", s.ErrorCode, nil)
	if !bytes.Equal(s.MemberAssignment, assignment) {
		t.Fatalf("SyncGroup assignment %x, want %x", s.MemberAssignment, assignment)
	}
	hb := func(r *raw, member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.Generation = 3, "wire", member, gen
		return r.roundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	wantCode(t, "Heartbeat", hb(r1, a, 1), nil)
	wantCode(t, "Heartbeat at a stale generation", hb(r1, a, 0), kerr.IllegalGeneration)
	wantCode(t, "Heartbeat of a stranger", hb(r1, "stranger", 1), kerr.UnknownMemberID)

	checkCommitAndFetch(t, r1, a)

	// A v0 member joins (the coordinator names it); the first learns of
	// the rebalance by heartbeat and rejoins; both get generation 2.
	r2.send(joinReq(0, ""))
	waitFor(t, "the rebalance to start", func() bool {
		code := hb(r1, a, 1)
		if code != 0 && code != kerr.RebalanceInProgress.Code {
			t.Fatalf("heartbeat while b joins: %v", kerr.ErrorForCode(code))
		}
		return code == kerr.RebalanceInProgress.Code
	})
	j = r1.roundTrip(joinReq(4, a)).(*kmsg.JoinGroupResponse)
	j2 := kmsg.NewPtrJoinGroupResponse()
	j2.Version = 0
	r2.recv(j2)
	wantCode(t, "rejoin", j.ErrorCode, nil)
	wantCode(t, "JoinGroup v0", j2.ErrorCode, nil)
	b := j2.MemberID
	if j.Generation != 2 || j2.Generation != 2 || j.LeaderID != a || len(j.Members) != 2 || len(j2.Members) != 0 || b == "" {
		t.Fatalf("second generation: %d/%d, leader %s, members %d/%d, v0 member %q", j.Generation, j2.Generation, j.LeaderID, len(j.Members), len(j2.Members), b)
	}

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Version, describe.Groups = 5, []string{"wire"}
	d := r1.roundTrip(describe).(*kmsg.DescribeGroupsResponse).Groups[0]
	if d.State != "CompletingRebalance" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("DescribeGroups: %+v", d)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 3, "wire"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: a}, {MemberID: b}, {MemberID: "stranger"}}
	l := r1.roundTrip(leave).(*kmsg.LeaveGroupResponse)
	for i, want := range []*kerr.Error{nil, nil, kerr.UnknownMemberID} {
		wantCode(t, "LeaveGroup of "+l.Members[i].MemberID, l.Members[i].ErrorCode, want)
	}

	list := kmsg.NewPtrListGroupsRequest()
	list.Version, list.StatesFilter = 4, []string{"empty"}
	lg := r1.roundTrip(list).(*kmsg.ListGroupsResponse)
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "wire" || lg.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("ListGroups of empty groups: %+v", lg.Groups)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Version, del.Groups = 2, []string{"wire", "never-was"}
	dg := r1.roundTrip(del).(*kmsg.DeleteGroupsResponse)
	wantCode(t, "DeleteGroups of an empty group", dg.Groups[0].ErrorCode, nil)
	wantCode(t, "DeleteGroups of an unknown group", dg.Groups[1].ErrorCode, kerr.GroupIDNotFound)
}

// TestClassicGroupBadIDs sends the classic group APIs ids no member can
// have and expects Kafka's codes for them, which clients act on: an empty
// group id is INVALID_GROUP_ID, a session timeout out of range
// INVALID_SESSION_TIMEOUT, and an empty member id (a client that never
// joined) UNKNOWN_MEMBER_ID. Nothing is stored for any of them.
func TestClassicGroupBadIDs(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("orders", 1)
	r := c.raw()

	noGroup := joinReq(5, "")
	noGroup.Group = ""
	wantCode(t, "JoinGroup of an empty group id", r.roundTrip(noGroup).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)
	// kafka-go's Conn.joinGroup shapes: nothing at all, then only a group.
	bare := kmsg.NewPtrJoinGroupRequest()
	bare.Version = 1
	wantCode(t, "JoinGroup v1 of nothing", r.roundTrip(bare).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)
	bare.Group = "wire"
	wantCode(t, "JoinGroup v1 of only a group", r.roundTrip(bare).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidSessionTimeout)
	bare.SessionTimeoutMillis = 6000
	wantCode(t, "JoinGroup v1 without a protocol", r.roundTrip(bare).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol)
	for _, ms := range []int32{0, 999, 5*60*1000 + 1} {
		short := joinReq(5, "")
		short.SessionTimeoutMillis = ms
		wantCode(t, fmt.Sprintf("JoinGroup with session timeout %d ms", ms),
			r.roundTrip(short).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidSessionTimeout)
	}

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.Generation = 3, "wire", 1
	wantCode(t, "SyncGroup without a member id", r.roundTrip(sync).(*kmsg.SyncGroupResponse).ErrorCode, kerr.UnknownMemberID)
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version, hb.Group, hb.Generation = 3, "wire", 1
	wantCode(t, "Heartbeat without a member id", r.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
	hb.Group, hb.MemberID = "", "m"
	wantCode(t, "Heartbeat of an empty group id", r.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode, kerr.InvalidGroupID)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version, leave.Group = 0, "wire"
	wantCode(t, "LeaveGroup v0 without a member id", r.roundTrip(leave).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
	leave.Version, leave.Members = 3, []kmsg.LeaveGroupRequestMember{{}}
	wantCode(t, "LeaveGroup v3 of a member without ids", r.roundTrip(leave).(*kmsg.LeaveGroupResponse).Members[0].ErrorCode, kerr.UnknownMemberID)

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Generation = 8, -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic, ct.Partitions = "orders", []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	commit.Topics = append(commit.Topics, ct)
	wantCode(t, "OffsetCommit of an empty group id",
		r.roundTrip(commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.InvalidGroupID)
	commit.Group, commit.Generation = "wire", 1
	wantCode(t, "OffsetCommit at a generation without a member id",
		r.roundTrip(commit).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 7
	wantCode(t, "OffsetFetch of an empty group id", r.roundTrip(fetch).(*kmsg.OffsetFetchResponse).ErrorCode, kerr.InvalidGroupID)

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Version, describe.Groups = 5, []string{""}
	wantCode(t, "DescribeGroups of an empty group id", r.roundTrip(describe).(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode, kerr.InvalidGroupID)
	describe.Groups = []string{"wire"}
	if d := r.roundTrip(describe).(*kmsg.DescribeGroupsResponse).Groups[0]; d.State != "Dead" || len(d.Members) != 0 {
		t.Fatalf("after only refused requests the group is %q with %d members, want Dead and none", d.State, len(d.Members))
	}
}

// checkCommitAndFetch commits as member a at generation 1 and reads the
// offsets back in OffsetFetch's v1 and batched v8 shapes.
func checkCommitAndFetch(t *testing.T, r *raw, a string) {
	t.Helper()
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version, commit.Group, commit.MemberID, commit.Generation = 2, "wire", a, 1
	commit.Topics = []kmsg.OffsetCommitRequestTopic{
		{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 10}, {Partition: 9, Offset: 1}}},
		{Topic: "missing", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
	}
	oc := r.roundTrip(commit).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit orders/0", oc.Topics[0].Partitions[0].ErrorCode, nil)
	wantCode(t, "commit orders/9", oc.Topics[0].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
	wantCode(t, "commit missing/0", oc.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	commit.Generation = 0
	commit.Topics = commit.Topics[:1]
	oc = r.roundTrip(commit).(*kmsg.OffsetCommitResponse)
	wantCode(t, "commit at a stale generation", oc.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)

	f1 := kmsg.NewPtrOffsetFetchRequest()
	f1.Version, f1.Group = 1, "wire"
	f1.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	ps := r.roundTrip(f1).(*kmsg.OffsetFetchResponse).Topics[0].Partitions
	if ps[0].Offset != 10 || ps[1].Offset != -1 || ps[1].Metadata == nil || *ps[1].Metadata != "" {
		t.Fatalf("OffsetFetch v1: %+v", ps)
	}
	f8 := kmsg.NewPtrOffsetFetchRequest()
	f8.Version = 8
	f8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "wire"}, {Group: "other", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}}}}
	gs := r.roundTrip(f8).(*kmsg.OffsetFetchResponse).Groups
	if len(gs) != 2 || len(gs[0].Topics) != 1 || gs[0].Topics[0].Partitions[0].Offset != 10 || gs[1].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("OffsetFetch v8: %+v", gs)
	}
}

// TestGroupACLs: group calls are authorized as on gRPC — consume on the
// group to join and commit (and consume on the topic to commit),
// describe on the group to fetch offsets — and a denial is
// GROUP_AUTHORIZATION_FAILED.
func TestGroupACLs(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("admin", "tok-admin")+"\n"+auth.TokenLine("alice", "tok-alice")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterOpts{proxy: func(pc *proxy.Config) {
		pc.Auth = auth.Config{TokenFile: tokens, ACLs: true, SuperUsers: []string{"admin"}}
	}})
	as := func(user, pass string) *kgo.Client {
		return c.client(kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()), kgo.RetryTimeout(5*time.Second))
	}
	ctx := c.ctx
	for _, topic := range []string{"orders", "orders-secret"} {
		if r, err := kadm.NewClient(as("admin", "tok-admin")).CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	for _, a := range []meta.ACL{
		{Principal: "alice", ResourceType: meta.ResourceTopic, Name: "orders", Operation: meta.OpConsume},
		{Principal: "alice", ResourceType: meta.ResourceTopic, Name: "orders", Operation: meta.OpDescribe},
		{Principal: "alice", ResourceType: meta.ResourceGroup, Name: "allowed", Operation: meta.OpConsume},
	} {
		if err := c.meta.AddACL(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	alice := as("alice", "tok-alice")
	join := func(group string) int16 {
		req := joinReq(5, "")
		req.Group = group
		resp, err := req.RequestWith(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	wantCode(t, "alice joins a group she may not consume", join("denied"), kerr.GroupAuthorizationFailed)
	// The proxy follows ACLs through a watch: wait until the grant shows.
	waitFor(t, "alice's group grant", func() bool { return join("allowed") == kerr.MemberIDRequired.Code })
	fetch := func(group string) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group
		resp, err := req.RequestWith(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return max(resp.ErrorCode, groupCode(resp))
	}
	wantCode(t, "alice fetches offsets of a group she may not describe", fetch("denied"), kerr.GroupAuthorizationFailed)
	wantCode(t, "alice fetches offsets of her group", fetch("allowed"), nil)
	// A subscription by regular expression gets only the topics alice may
	// describe: orders, not orders-secret. The coordinator's view of a
	// topic created a moment ago may trail; a later heartbeat sees it.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = "allowed", "YWxpY2UtYnktcmVnZXgtMDE", 10_000
	hb.SubscribedTopicRegex, hb.Topics = kmsg.StringPtr("orders.*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	var resp *kmsg.ConsumerGroupHeartbeatResponse
	waitFor(t, "alice's assignment by orders.*", func() bool {
		var err error
		if resp, err = hb.RequestWith(ctx, alice); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "alice heartbeats by regex", resp.ErrorCode, nil)
		hb.MemberEpoch, hb.SubscribedTopicRegex, hb.Topics = resp.MemberEpoch, nil, nil
		return resp.Assignment != nil && len(resp.Assignment.Topics) > 0
	})
	md, err := kadm.NewClient(as("admin", "tok-admin")).Metadata(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Assignment == nil || len(resp.Assignment.Topics) != 1 || len(resp.Assignment.Topics[0].Partitions) != 1 ||
		resp.Assignment.Topics[0].TopicID != [16]byte(md.Topics["orders"].ID) {
		t.Fatalf("alice's assignment by orders.*: %+v, want orders' one partition only", resp.Assignment)
	}
}

// groupCode is the first group's error code of a batched OffsetFetch.
func groupCode(resp *kmsg.OffsetFetchResponse) int16 {
	if len(resp.Groups) > 0 {
		return resp.Groups[0].ErrorCode
	}
	return 0
}

// waitFor polls cond until it holds, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerSessionTimeout: a KIP-848 member, which does not choose its
// session timeout, gets the front end's (Kafka's 45 s by default, so that
// a proxy restart does not cost it its partitions), or the configured one.
func TestConsumerSessionTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  time.Duration
		want int32
	}{
		{"default", 0, int32(kafka.DefaultConsumerSessionTimeout / time.Millisecond)},
		{"configured", 20 * time.Second, 20_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, clusterOpts{kafka: func(k *kafka.Config) { k.ConsumerSessionTimeout = tc.set }})
			c.createTopic("sessions", 1)
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "g-sessions", "eGVadKwKT2m7WiARQwtKHg", 0, 10_000
			req.SubscribedTopicNames = []string{"sessions"}
			resp, err := req.RequestWith(c.ctx, c.client())
			if err != nil {
				t.Fatal(err)
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				t.Fatalf("join: %v", err)
			}
			st, err := c.meta.GetGroupState(c.ctx, "g-sessions")
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Members) != 1 || st.Members[0].SessionTimeoutMs != tc.want {
				t.Fatalf("members %+v, want one with session timeout %d ms", st.Members, tc.want)
			}
		})
	}
}

// TestConsumerGroupHeartbeatBadIDs: a KIP-848 heartbeat without a member
// id is INVALID_REQUEST (from v1 the client makes its id; at v0 only a
// join may come without one), and one with an empty group id
// INVALID_GROUP_ID, as in Kafka. A v0 join without an id gets one.
func TestConsumerGroupHeartbeatBadIDs(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("ids", 1)
	r := c.raw()
	hb := func(version int16, group, member string, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = version, group, member, epoch, 10_000
		req.SubscribedTopicNames = []string{"ids"}
		return r.roundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	wantCode(t, "v1 join without a member id", hb(1, "g-ids", "", 0).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "v0 heartbeat at epoch 3 without a member id", hb(0, "g-ids", "", 3).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "v0 leave without a member id", hb(0, "g-ids", "", -1).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "join of an empty group id", hb(1, "", "q2nlXBo4RcqVh1lyS0Lmyw", 0).ErrorCode, kerr.InvalidGroupID)
	joined := hb(0, "g-ids", "", 0)
	wantCode(t, "v0 join without a member id", joined.ErrorCode, nil)
	if joined.MemberID == nil || *joined.MemberID == "" || joined.MemberEpoch < 1 {
		t.Fatalf("v0 join: member id %v, epoch %d; want an id made by the server and an epoch", joined.MemberID, joined.MemberEpoch)
	}
}

// TestConsumerGroupCommitEpochs: OffsetCommit from a KIP-848 member is
// checked against its member epoch as Kafka checks it. The current epoch
// commits; a newer one is STALE_MEMBER_EPOCH (ILLEGAL_GENERATION before
// v9), on which clients heartbeat and commit again; an unknown member is
// UNKNOWN_MEMBER_ID. Nothing refused is stored.
func TestConsumerGroupCommitEpochs(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("epochs", 1)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g-epochs", "q2nlXBo4RcqVh1lyS0Lmyw", 0, 10_000
	hb.SubscribedTopicNames = []string{"epochs"}
	hbResp, err := hb.RequestWith(c.ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "join", hbResp.ErrorCode, nil)
	epoch := hbResp.MemberEpoch
	r := c.raw()
	commit := func(version int16, member string, epoch int32, offset int64) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.MemberID, req.Generation = version, "g-epochs", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := r.roundTrip(req).(*kmsg.OffsetCommitResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "commit at the member epoch", commit(9, hb.MemberID, epoch, 7), nil)
	wantCode(t, "commit at a newer epoch", commit(9, hb.MemberID, epoch+1, 9), kerr.StaleMemberEpoch)
	wantCode(t, "v8 commit at a newer epoch", commit(8, hb.MemberID, epoch+1, 9), kerr.IllegalGeneration)
	wantCode(t, "commit of an unknown member", commit(9, "bm9ib2R5LWtub3dzLW1l", epoch, 9), kerr.UnknownMemberID)
	fetched, err := kadm.NewClient(c.client()).FetchOffsets(c.ctx, "g-epochs")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("epochs", 0); !ok || o.At != 7 {
		t.Fatalf("committed offset %+v (found %v), want 7", o, ok)
	}
}

// TestConsumerGroupDescribe describes KIP-848 groups as kadm's
// DescribeConsumerGroups (Kafka 4's kafka-consumer-groups) does: a lone
// range member owns every partition (Stable); a second member joins and
// waits for half of them (Reconciling: its target is set, its assignment
// empty until the first gives them up). A classic group and an unknown
// one are GROUP_ID_NOT_FOUND.
func TestConsumerGroupDescribe(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("cgd", 4)
	adm := kadm.NewClient(c.client())
	join := func(member string) {
		t.Helper()
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "g-cgd", member, 0, 10_000
		hb.SubscribedTopicNames, hb.ServerAssignor = []string{"cgd"}, kmsg.StringPtr("range")
		resp, err := hb.RequestWith(c.ctx, c.client())
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "join "+member, resp.ErrorCode, nil)
	}
	describe := func() kadm.DescribedConsumerGroup {
		t.Helper()
		ds, err := adm.DescribeConsumerGroups(c.ctx, "g-cgd")
		if err != nil {
			t.Fatal(err)
		}
		return ds["g-cgd"]
	}
	parts := func(s kadm.TopicsSet) []int32 {
		out := slices.Collect(maps.Keys(s["cgd"]))
		slices.Sort(out)
		return out
	}
	join("bWVtYmVyLW9uZS1vZi10d28")
	d := describe()
	if d.Err != nil || d.State != "Stable" || d.AssignorName != "range" || len(d.Members) != 1 {
		t.Fatalf("one member: %+v", d)
	}
	m := d.Members[0]
	if m.MemberType != 1 || !slices.Equal(m.SubscribedTopics, []string{"cgd"}) || m.MemberEpoch < 1 ||
		!slices.Equal(parts(m.Assignment), []int32{0, 1, 2, 3}) || !slices.Equal(parts(m.TargetAssignment), []int32{0, 1, 2, 3}) {
		t.Fatalf("the lone member: %+v", m)
	}
	join("bWVtYmVyLXR3by1vZi10d28")
	d2 := describe()
	if d2.Err != nil || d2.State != "Reconciling" || len(d2.Members) != 2 || d2.Epoch <= d.Epoch || d2.AssignmentEpoch != d2.Epoch {
		t.Fatalf("two members: %+v (one member: epoch %d)", d2, d.Epoch)
	}
	for _, m := range d2.Members {
		if len(parts(m.TargetAssignment)) != 2 {
			t.Fatalf("member %s targets %v, want two partitions", m.MemberID, parts(m.TargetAssignment))
		}
		if m.MemberID == "bWVtYmVyLXR3by1vZi10d28" && len(parts(m.Assignment)) != 0 {
			t.Fatalf("the new member owns %v before the first gave them up", parts(m.Assignment))
		}
	}
	// A classic member of group "wire": v4+ joins twice, the second time
	// with the member id the first answer gave.
	r := c.raw()
	first := r.roundTrip(joinReq(5, "")).(*kmsg.JoinGroupResponse)
	wantCode(t, "first classic join", first.ErrorCode, kerr.MemberIDRequired)
	if joined := r.roundTrip(joinReq(5, first.MemberID)).(*kmsg.JoinGroupResponse); joined.ErrorCode != 0 {
		t.Fatalf("classic join: %v", kerr.ErrorForCode(joined.ErrorCode))
	}
	ds, err := adm.DescribeConsumerGroups(c.ctx, "wire", "nope")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"wire", "nope"} {
		if !errors.Is(ds[g].Err, kerr.GroupIDNotFound) {
			t.Errorf("%s: %v, want GROUP_ID_NOT_FOUND", g, ds[g].Err)
		}
	}
}

// TestConsumerGroupRegex subscribes KIP-848 members by regular
// expression: the expression matches whole topic names, a topic created
// later joins the subscription at the next heartbeat, ConsumerGroupDescribe
// shows the expression, and one that does not compile is
// INVALID_REGULAR_EXPRESSION.
func TestConsumerGroupRegex(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	for name, n := range map[string]int32{"rx-a": 2, "rx-b": 1, "other": 1} {
		c.createTopic(name, n)
	}
	r := c.raw()
	heartbeat := func(group, member string, epoch int32, regex *string) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		hb.Version = 1 // the first with SubscribedTopicRegex
		hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = group, member, epoch, 10_000
		hb.SubscribedTopicRegex = regex
		if epoch == 0 {
			hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		return r.roundTrip(hb).(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	assigned := func(resp *kmsg.ConsumerGroupHeartbeatResponse) int {
		n := 0
		if resp.Assignment != nil {
			for _, tp := range resp.Assignment.Topics {
				n += len(tp.Partitions)
			}
		}
		return n
	}
	const member = "cmVnZXgtbWVtYmVyLW9uZQ"
	resp := heartbeat("g-rx", member, 0, kmsg.StringPtr("rx-.*"))
	wantCode(t, "join by regex", resp.ErrorCode, nil)
	// The proxy resolves the expression against its view, which may trail
	// the topics' creation by a moment: a later heartbeat sees them.
	waitFor(t, "rx-a and rx-b in the subscription", func() bool {
		if assigned(resp) == 3 {
			return true
		}
		resp = heartbeat("g-rx", member, resp.MemberEpoch, nil)
		wantCode(t, "heartbeat", resp.ErrorCode, nil)
		return false
	})
	c.createTopic("rx-c", 1)
	waitFor(t, "rx-c in the subscription", func() bool {
		resp = heartbeat("g-rx", member, resp.MemberEpoch, nil)
		wantCode(t, "heartbeat", resp.ErrorCode, nil)
		return assigned(resp) == 4
	})
	ds, err := kadm.NewClient(c.client()).DescribeConsumerGroups(c.ctx, "g-rx")
	if err != nil {
		t.Fatal(err)
	}
	m := ds["g-rx"].Members
	if len(m) != 1 || m[0].SubscribedTopicRegex == nil || *m[0].SubscribedTopicRegex != "rx-.*" || len(m[0].Assignment["other"]) != 0 || len(m[0].Assignment["rx-c"]) != 1 {
		t.Fatalf("described member: %+v", m)
	}
	// Whole names only: "rx" matches none of rx-a, rx-b, rx-c.
	whole := heartbeat("g-rx-whole", member, 0, kmsg.StringPtr("rx"))
	wantCode(t, "join by rx", whole.ErrorCode, nil)
	if n := assigned(whole); n != 0 {
		t.Fatalf("rx assigned %d partitions, want none", n)
	}
	wantCode(t, "a regex that does not compile", heartbeat("g-rx-bad", member, 0, kmsg.StringPtr("rx-(")).ErrorCode, kerr.InvalidRegularExpression)
}

// TestOffsetCommitsInRequestOrder pipelines commits of rising offsets to
// one partition on one connection, without waiting for answers, as a
// client's auto-commits can queue behind a slow coordinator: the proxy
// handles requests concurrently, yet the last commit sent is the one
// stored, as from Kafka, which serves a connection in order. (Out of
// order, a commit retried across a coordinator failover undid a later
// one, and the client, believing the later offset committed, never sent
// it again.)
func TestOffsetCommitsInRequestOrder(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("ordered", 1)
	r := c.raw()
	const n = 30
	for i := range n {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 9, "g-ordered", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "ordered"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, int64(i+1)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r.send(req)
	}
	for i := range n {
		resp := kmsg.NewPtrOffsetCommitResponse()
		resp.Version = 9
		r.recv(resp)
		wantCode(t, fmt.Sprintf("commit %d", i+1), resp.Topics[0].Partitions[0].ErrorCode, nil)
	}
	fetched, err := kadm.NewClient(c.client()).FetchOffsets(c.ctx, "g-ordered")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("ordered", 0); !ok || o.At != n {
		t.Fatalf("committed offset %+v (found %v), want the last one sent, %d", o, ok, n)
	}
}

// TestOffsetCommitPartitionTwice: an OffsetCommit that names a partition
// more than once, even under a topic named twice (librdkafka's
// CommitOffsets sends an entry per message), stores the offset given last,
// as Kafka does, and answers every entry.
func TestOffsetCommitPartitionTwice(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("twice", 2)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "g-twice", -1
	for _, offsets := range [][2]int64{{5, 9}, {7, 3}} { // partition 0's, then 1's offsets in each topic entry
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "twice"
		for p, o := range offsets {
			for _, at := range []int64{o - 1, o} {
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset = int32(p), at
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := c.raw().roundTrip(req).(*kmsg.OffsetCommitResponse)
	answered := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			wantCode(t, fmt.Sprintf("%s/%d", rt.Topic, rp.Partition), rp.ErrorCode, nil)
			answered++
		}
	}
	if answered != 8 {
		t.Errorf("%d entries answered, want all 8", answered)
	}
	fetched, err := kadm.NewClient(c.client()).FetchOffsets(c.ctx, "g-twice")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range []int64{7, 3} {
		if o, ok := fetched.Lookup("twice", int32(p)); !ok || o.At != want {
			t.Errorf("partition %d committed at %+v (found %v), want %d, the offset given last", p, o, ok, want)
		}
	}
}
