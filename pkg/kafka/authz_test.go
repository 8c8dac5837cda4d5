package kafka_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/proxy"
)

// paymentsID is the topic id of "payments" once the test created it, for
// requests that name topics by id.
var paymentsID [16]byte

// denied are the answers that say "not allowed" without saying more.
var denied = []int16{
	kerr.TopicAuthorizationFailed.Code,
	kerr.GroupAuthorizationFailed.Code,
	kerr.ClusterAuthorizationFailed.Code,
	kerr.TransactionalIDAuthorizationFailed.Code,
}

// TestPrincipalWithoutGrantsTriesEveryAPI authenticates a principal that
// has no ACL at all and sends every API the listener advertises, aimed at
// a topic, a group and configs that exist. Each must be refused with an
// authorization error (or, for the few calls that reveal nothing, answer
// with nothing of the cluster's), and afterwards nothing stored has
// changed. An API added without a case here fails the test.
func TestPrincipalWithoutGrantsTriesEveryAPI(t *testing.T) {
	c := startWithACLs(t, "nobody")
	ctx := c.ctx
	admin := c.client(kgo.SASL(plain.Auth{User: "admin", Pass: "tok-admin"}.AsMechanism()), kgo.ConsumerGroup("g1"),
		kgo.ConsumeTopics("payments"), kgo.DisableAutoCommit())
	adm := kadm.NewClient(admin)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "payments"); err != nil || r.Err != nil {
		t.Fatalf("admin creates payments: %v %v", err, r.Err)
	}
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "payments", Partition: 0, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("admin produce: %v", err)
	}
	// A transactional id "tx", with a transaction committed, that
	// DescribeTransactions and ListTransactions must not reveal.
	txp := c.client(kgo.SASL(plain.Auth{User: "admin", Pass: "tok-admin"}.AsMechanism()), kgo.TransactionalID("tx"))
	txnProduce(t, ctx, txp, "payments", []string{"t"}, true, true)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "payments", Partition: 0, At: 1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g1", offsets); err != nil {
		t.Fatalf("admin commits g1: %v", err)
	}
	td, err := adm.ListTopics(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	paymentsID = td["payments"].ID
	// A grant to someone else, so that a DeleteAcls that got through would
	// show.
	if rs, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").AllowHosts("*").Topics("payments").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || rs[0].Err != nil {
		t.Fatalf("admin grants carol: %v %+v", err, rs)
	}
	before := snapshot(t, adm)
	if len(before.ACLs) != 1 {
		t.Fatalf("ACLs before = %v, want carol's grant", before.ACLs)
	}

	r := c.raw()
	authenticate(t, r, "nobody", "tok-nobody")
	versions := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	for _, k := range versions.ApiKeys {
		key := kmsg.Key(k.ApiKey)
		try, ok := everyAPI[key]
		if !ok {
			t.Errorf("%s is advertised but this test does not try it: add a case", key.Name())
			continue
		}
		req := try.build()
		req.SetVersion(min(k.MaxVersion, req.MaxVersion()))
		resp := r.roundTrip(req)
		codes := errorCodes(reflect.ValueOf(resp))
		if err := try.check(resp, codes); err != "" {
			t.Errorf("%s v%d as a principal without grants: %s (error codes %v)", key.Name(), req.GetVersion(), err, codes)
		}
	}

	if after := snapshot(t, adm); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed by a principal without grants:\nbefore %+v\nafter  %+v", before, after)
	}
}

// apiCase is how TestPrincipalWithoutGrantsTriesEveryAPI tries one API.
type apiCase struct {
	build func() kmsg.Request
	// check returns "" when the answer gives nothing away.
	check func(resp kmsg.Response, codes []int16) string
}

// refusedAll: the answer carries an authorization failure, and every
// other error code in it is 0 (a request-level code of a response whose
// one partition or group was refused).
func refusedAll(_ kmsg.Response, codes []int16) string {
	if !slices.ContainsFunc(codes, func(c int16) bool { return slices.Contains(denied, c) }) {
		return "answered without an authorization failure"
	}
	for _, c := range codes {
		if c != 0 && !slices.Contains(denied, c) {
			return "answered with a code that is not an authorization failure"
		}
	}
	return ""
}

// harmless: answers that reveal no topic, group or config are fine.
func harmless(kmsg.Response, []int16) string { return "" }

var everyAPI = map[kmsg.Key]apiCase{
	kmsg.ApiVersions: {func() kmsg.Request { return kmsg.NewPtrApiVersionsRequest() }, harmless},
	// A second handshake on an authenticated connection may be refused or
	// answered; either way it grants nothing.
	kmsg.SASLHandshake:    {func() kmsg.Request { r := kmsg.NewPtrSASLHandshakeRequest(); r.Mechanism = "PLAIN"; return r }, harmless},
	kmsg.SASLAuthenticate: {func() kmsg.Request { return kmsg.NewPtrSASLAuthenticateRequest() }, harmless},
	kmsg.Metadata: {func() kmsg.Request {
		r := kmsg.NewPtrMetadataRequest()
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("payments")}, {Topic: kmsg.StringPtr("evil")}}
		r.AllowAutoTopicCreation = true
		return r
	}, func(resp kmsg.Response, _ []int16) string {
		for _, tp := range resp.(*kmsg.MetadataResponse).Topics {
			if tp.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(tp.Partitions) != 0 {
				return "metadata showed a topic"
			}
		}
		return ""
	}},
	kmsg.Produce: {func() kmsg.Request {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = -1, 5000
		r.Topics = []kmsg.ProduceRequestTopic{{Topic: "payments", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: oneBatch()}}}}
		return r
	}, refusedAll},
	kmsg.Fetch: {func() kmsg.Request {
		r := kmsg.NewPtrFetchRequest()
		r.ReplicaID, r.MaxBytes, r.SessionEpoch = -1, 1<<20, -1
		r.Topics = []kmsg.FetchRequestTopic{{Topic: "payments", TopicID: paymentsID, Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}
		return r
	}, refusedAll},
	kmsg.ListOffsets: {func() kmsg.Request {
		r := kmsg.NewPtrListOffsetsRequest()
		r.ReplicaID = -1
		r.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "payments", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}
		return r
	}, refusedAll},
	kmsg.OffsetForLeaderEpoch: {func() kmsg.Request {
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		r.ReplicaID = -1
		r.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "payments", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1}}}}
		return r
	}, refusedAll},
	// The coordinator of every group is the proxy itself: its address is
	// no secret (the client dialled it).
	kmsg.FindCoordinator: {func() kmsg.Request {
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKey, r.CoordinatorKeys = "g1", []string{"g1"}
		return r
	}, harmless},
	// A plain (not transactional) producer id names no resource.
	kmsg.InitProducerID: {func() kmsg.Request { return kmsg.NewPtrInitProducerIDRequest() }, harmless},
	kmsg.CreateTopics: {func() kmsg.Request {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis = 5000
		r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "evil", NumPartitions: 1, ReplicationFactor: 1}}
		return r
	}, refusedAll},
	kmsg.DeleteTopics: {func() kmsg.Request {
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis = 5000
		r.TopicNames = []string{"payments"}
		r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("payments")}}
		return r
	}, refusedAll},
	kmsg.DeleteRecords: {func() kmsg.Request {
		r := kmsg.NewPtrDeleteRecordsRequest()
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = "payments"
		rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}
		r.Topics = []kmsg.DeleteRecordsRequestTopic{rt}
		return r
	}, refusedAll},
	kmsg.CreatePartitions: {func() kmsg.Request {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.TimeoutMillis = 5000
		r.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "payments", Count: 4}}
		return r
	}, refusedAll},
	kmsg.DescribeConfigs: {func() kmsg.Request {
		r := kmsg.NewPtrDescribeConfigsRequest()
		r.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "payments"}}
		return r
	}, refusedAll},
	kmsg.AlterConfigs: {func() kmsg.Request {
		r := kmsg.NewPtrAlterConfigsRequest()
		r.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "payments",
			Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
		return r
	}, refusedAll},
	kmsg.IncrementalAlterConfigs: {func() kmsg.Request {
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		r.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "payments",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}}}
		return r
	}, refusedAll},
	// The cluster's description is the proxy's own address and id.
	kmsg.DescribeCluster: {func() kmsg.Request { return kmsg.NewPtrDescribeClusterRequest() }, harmless},
	kmsg.JoinGroup: {func() kmsg.Request {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis, r.ProtocolType = "g1", 10000, 10000, "consumer"
		r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
		return r
	}, refusedAll},
	kmsg.SyncGroup: {func() kmsg.Request {
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.MemberID, r.Generation = "g1", "m", 1
		return r
	}, refusedAll},
	kmsg.Heartbeat: {func() kmsg.Request {
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.MemberID, r.Generation = "g1", "m", 1
		return r
	}, refusedAll},
	kmsg.LeaveGroup: {func() kmsg.Request {
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Group, r.MemberID = "g1", "m"
		r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
		return r
	}, refusedAll},
	kmsg.OffsetCommit: {func() kmsg.Request {
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.Generation, r.MemberID = "g1", -1, ""
		r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "payments", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0, LeaderEpoch: -1}}}}
		return r
	}, refusedAll},
	kmsg.OffsetFetch: {func() kmsg.Request {
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = "g1"
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "payments", Partitions: []int32{0}}}
		r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g1", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "payments", Partitions: []int32{0}}}}}
		return r
	}, refusedAll},
	kmsg.ListGroups: {func() kmsg.Request { return kmsg.NewPtrListGroupsRequest() }, func(resp kmsg.Response, _ []int16) string {
		if n := len(resp.(*kmsg.ListGroupsResponse).Groups); n != 0 {
			return "listed groups the principal may not describe"
		}
		return ""
	}},
	kmsg.DescribeGroups: {func() kmsg.Request {
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Groups = []string{"g1"}
		return r
	}, refusedAll},
	kmsg.DeleteGroups: {func() kmsg.Request {
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{"g1"}
		return r
	}, refusedAll},
	kmsg.CreateACLs: {func() kmsg.Request {
		r := kmsg.NewPtrCreateACLsRequest()
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:nobody", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
		r.Creations = append(r.Creations, c)
		return r
	}, refusedAll},
	kmsg.DescribeACLs: {func() kmsg.Request {
		r := kmsg.NewPtrDescribeACLsRequest()
		r.ResourceType, r.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		r.Operation, r.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		return r
	}, refusedAll},
	kmsg.DeleteACLs: {func() kmsg.Request {
		r := kmsg.NewPtrDeleteACLsRequest()
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		r.Filters = append(r.Filters, f)
		return r
	}, refusedAll},
	kmsg.DescribeLogDirs:              {func() kmsg.Request { return kmsg.NewPtrDescribeLogDirsRequest() }, refusedAll},
	kmsg.DescribeUserSCRAMCredentials: {func() kmsg.Request { return kmsg.NewPtrDescribeUserSCRAMCredentialsRequest() }, refusedAll},
	kmsg.ConsumerGroupDescribe: {func() kmsg.Request {
		r := kmsg.NewPtrConsumerGroupDescribeRequest()
		r.Groups = []string{"g1"}
		return r
	}, refusedAll},
	kmsg.OffsetDelete: {func() kmsg.Request {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = "g1"
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = "payments"
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		r.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
		return r
	}, refusedAll},
	kmsg.ConsumerGroupHeartbeat: {func() kmsg.Request {
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.RebalanceTimeoutMillis = "g1", "m", 10000
		r.SubscribedTopicNames = []string{"payments"}
		return r
	}, refusedAll},
	// The transactional APIs need produce on the transactional id.
	kmsg.AddPartitionsToTxn: {func() kmsg.Request {
		r := kmsg.NewPtrAddPartitionsToTxnRequest()
		r.TransactionalID, r.ProducerID = "tx", 1
		r.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "payments", Partitions: []int32{0}}}
		return r
	}, refusedAll},
	kmsg.AddOffsetsToTxn: {func() kmsg.Request {
		r := kmsg.NewPtrAddOffsetsToTxnRequest()
		r.TransactionalID, r.ProducerID, r.Group = "tx", 1, "g1"
		return r
	}, refusedAll},
	kmsg.EndTxn: {func() kmsg.Request {
		r := kmsg.NewPtrEndTxnRequest()
		r.TransactionalID, r.ProducerID, r.Commit = "tx", 1, true
		return r
	}, refusedAll},
	kmsg.TxnOffsetCommit: {func() kmsg.Request {
		r := kmsg.NewPtrTxnOffsetCommitRequest()
		r.TransactionalID, r.Group, r.ProducerID, r.Generation = "tx", "g1", 1, -1
		r.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "payments", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 0, LeaderEpoch: -1}}}}
		return r
	}, refusedAll},
	kmsg.DescribeProducers: {func() kmsg.Request {
		r := kmsg.NewPtrDescribeProducersRequest()
		r.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "payments", Partitions: []int32{0}}}
		return r
	}, refusedAll},
	kmsg.DescribeTransactions: {func() kmsg.Request {
		r := kmsg.NewPtrDescribeTransactionsRequest()
		r.TransactionalIDs = []string{"tx"}
		return r
	}, refusedAll},
	kmsg.ListTransactions: {func() kmsg.Request { return kmsg.NewPtrListTransactionsRequest() }, func(resp kmsg.Response, _ []int16) string {
		if n := len(resp.(*kmsg.ListTransactionsResponse).TransactionStates); n != 0 {
			return "listed transactional ids the principal may not describe"
		}
		return ""
	}},
}

// errorCodes collects every ErrorCode field anywhere in a response.
func errorCodes(v reflect.Value) []int16 {
	var out []int16
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			out = errorCodes(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				out = append(out, int16(v.Field(i).Int()))
				continue
			}
			out = append(out, errorCodes(v.Field(i))...)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				out = append(out, errorCodes(v.Index(i))...)
			}
		}
	}
	return out
}

// authenticate runs SASL/PLAIN on a raw connection.
func authenticate(t *testing.T, r *raw, user, pass string) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SASL handshake: error %d", resp.ErrorCode)
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.Version, a.SASLAuthBytes = 1, []byte("\x00"+user+"\x00"+pass)
	if resp := r.roundTrip(a).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
		t.Fatalf("SASL authenticate as %s: error %d", user, resp.ErrorCode)
	}
}

// oneBatch is a record batch of one record.
func oneBatch() []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte("evil")
	b := kmsg.NewRecordBatch()
	b.Magic, b.NumRecords, b.ProducerID, b.ProducerEpoch, b.FirstSequence = 2, 1, -1, -1, -1
	b.Records = rec.AppendTo(nil)
	raw := b.AppendTo(nil)
	return raw
}

// stateSnapshot is what a principal without grants must not change.
type stateSnapshot struct {
	Topics     map[string]int
	Starts     map[int32]int64
	Ends       map[int32]int64
	Committed  map[int32]int64
	Retention  string
	GroupState string
	ACLs       []string
}

func snapshot(t *testing.T, adm *kadm.Client) stateSnapshot {
	t.Helper()
	ctx := t.Context()
	s := stateSnapshot{Topics: map[string]int{}, Starts: map[int32]int64{}, Ends: map[int32]int64{}, Committed: map[int32]int64{}}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range td {
		s.Topics[d.Topic] = len(d.Partitions)
	}
	ends, err := adm.ListEndOffsets(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { s.Ends[o.Partition] = o.Offset })
	starts, err := adm.ListStartOffsets(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) { s.Starts[o.Partition] = o.Offset })
	offs, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) { s.Committed[o.Partition] = o.At })
	cfgs, err := adm.DescribeTopicConfigs(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := cfgs.On("payments", nil); err == nil {
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" {
				s.Retention = c.MaybeValue()
			}
		}
	}
	groups, err := adm.DescribeGroups(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	s.GroupState = groups["g1"].State
	acls, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range acls {
		for _, a := range d.Described {
			s.ACLs = append(s.ACLs, a.Principal+" "+a.Operation.String()+" "+a.Type.String()+":"+a.Name)
		}
	}
	return s
}

// startWithACLs starts a cluster whose proxy enforces ACLs, with the super
// user "admin" and the principals named, each with the token
// "tok-<name>".
func startWithACLs(t *testing.T, principals ...string) *cluster {
	t.Helper()
	return startWithACLsOpts(t, clusterOpts{}, principals...)
}

// startWithACLsOpts is startWithACLs with further options (o.proxy is
// replaced).
func startWithACLsOpts(t *testing.T, o clusterOpts, principals ...string) *cluster {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens")
	lines := ""
	for _, p := range append([]string{"admin"}, principals...) {
		lines += auth.TokenLine(p, "tok-"+p) + "\n"
	}
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	o.proxy = func(pc *proxy.Config) {
		pc.Auth = auth.Config{TokenFile: tokens, ACLs: true, SuperUsers: []string{"admin"}}
	}
	return startCluster(t, o)
}
