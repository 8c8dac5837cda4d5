package kafka_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/coordinator"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestTopicAdmin drives topic administration with franz-go's admin client
// (kadm): creation with configs Strata honours and refusal of ones it
// cannot, describing and altering retention, the clear refusal to add
// partitions, and deletion.
func TestTopicAdmin(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	adm := kadm.NewClient(c.client())
	ctx := c.ctx
	ptr := func(s string) *string { return &s }
	created, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"retention.ms": ptr("3600000"), "cleanup.policy": ptr("delete")}, "admin")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if created.NumPartitions != 3 || created.ReplicationFactor != 1 || created.ID == [16]byte{} {
		t.Fatalf("created %d partitions, rf %d, id %v; want 3, 1 and an id", created.NumPartitions, created.ReplicationFactor, created.ID)
	}
	// kadm returns a topic's error both as the call's error and in the
	// response.
	bad, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("forever")}, "compacted")
	if !errors.Is(bad.Err, kerr.InvalidConfig) {
		t.Fatalf("create with cleanup.policy=forever: %v, want INVALID_CONFIG", bad.Err)
	}
	// A compacted topic keeps every record, and says so.
	if compact, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": ptr("compact")}, "compacted"); err != nil || compact.Err != nil {
		t.Fatalf("create with cleanup.policy=compact: %v %v", err, compact.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "compacted")
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := rcs.On("compacted", nil); err != nil || !slices.ContainsFunc(rc.Configs, func(c kadm.Config) bool {
		return c.Key == "cleanup.policy" && c.MaybeValue() == "compact" && c.Source == kmsg.ConfigSourceDynamicTopicConfig
	}) {
		t.Fatalf("compacted topic described as %+v, %v; want cleanup.policy=compact, set on the topic", rc, err)
	}
	again, _ := adm.CreateTopic(ctx, 1, 1, nil, "admin")
	if !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("create twice: %v, want TOPIC_ALREADY_EXISTS", again.Err)
	}
	value := func(name string) string {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "admin")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On("admin", nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("describe: %v %v", err, rc.Err)
		}
		for _, cfg := range rc.Configs {
			if cfg.Key == name {
				return cfg.MaybeValue()
			}
		}
		t.Fatalf("config %s not described", name)
		return ""
	}
	if got := value("retention.ms"); got != "3600000" {
		t.Fatalf("retention.ms = %s, want 3600000", got)
	}
	if got := value("cleanup.policy"); got != "delete" {
		t.Fatalf("cleanup.policy = %s, want delete", got)
	}
	set, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: ptr("1048576")}}, "admin")
	if err != nil || set[0].Err != nil {
		t.Fatalf("alter retention.bytes: %v %v", err, set[0].Err)
	}
	if got := value("retention.bytes"); got != "1048576" {
		t.Fatalf("retention.bytes after alter = %s, want 1048576", got)
	}
	// DELETE resets a config to the cluster default; of a read-only one it
	// changes nothing; of an unknown one, and APPEND, fail.
	del, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}, {Op: kadm.DeleteConfig, Name: "compression.type"}}, "admin")
	if err != nil || del[0].Err != nil {
		t.Fatalf("reset retention.ms: %v %v", err, del[0].Err)
	}
	if got, want := value("retention.ms"), fmt.Sprint(coordinator.DefaultRetentionMs); got != want || value("retention.bytes") != "1048576" {
		t.Fatalf("retention.ms after DELETE = %s, want the default %s, and retention.bytes kept", got, want)
	}
	for _, bad := range []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "segment.bytes"}, {Op: kadm.AppendConfig, Name: "retention.ms", Value: ptr("1")}} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{bad}, "admin")
		if err != nil || !errors.Is(r[0].Err, kerr.InvalidConfig) {
			t.Fatalf("%v of %s: %v %v, want INVALID_CONFIG", bad.Op, bad.Name, err, r[0].Err)
		}
	}
	// AlterConfigs replaces the configs: retention.bytes, left out, goes
	// back to its default.
	rep, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: ptr("2000000")}, {Name: "retention.ms", Value: ptr("60000")}}, "admin")
	if err != nil || rep[0].Err != nil {
		t.Fatalf("AlterConfigs: %v %v", err, rep[0].Err)
	}
	if value("max.message.bytes") != "2000000" || value("retention.ms") != "60000" || value("retention.bytes") != "-1" {
		t.Fatalf("after AlterConfigs: max.message.bytes %s, retention.ms %s, retention.bytes %s; want 2000000, 60000, -1",
			value("max.message.bytes"), value("retention.ms"), value("retention.bytes"))
	}
	dels, err := adm.DeleteTopics(ctx, "admin")
	if err != nil || dels["admin"].Err != nil {
		t.Fatalf("delete: %v %v", err, dels)
	}
}

// TestDescribeCluster checks the cluster as admin clients see it: one
// broker, this proxy, at its advertised address, and the same cluster id
// as Metadata.
func TestDescribeCluster(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	adm := kadm.NewClient(c.client())
	bm, err := adm.BrokerMetadata(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, port := c.kafkaHostPort()
	if len(bm.Brokers) != 1 || bm.Brokers[0].Host != host || bm.Brokers[0].Port != port || bm.Controller != bm.Brokers[0].NodeID || bm.Cluster == "" {
		t.Fatalf("broker metadata %+v; want one broker at %s:%d that is the controller, and a cluster id", bm, host, port)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.Version, dc.EndpointType = 1, 1
	resp, err := dc.RequestWith(c.ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID != bm.Cluster || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != bm.Brokers[0].NodeID {
		t.Fatalf("DescribeCluster: error %d cluster %q brokers %+v; want cluster %q and the Metadata broker", resp.ErrorCode, resp.ClusterID, resp.Brokers, bm.Cluster)
	}
}

// TestCreatePartitions adds partitions as kafka-topics --alter
// --partitions does: validate-only changes nothing; the new count is in
// this proxy's Metadata as soon as the call returns, and its new
// partition takes records; the same or a smaller count, a count past the
// limit, a manual assignment, an unknown topic and a topic named twice
// are refused with Kafka's codes.
func TestCreatePartitions(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	ctx := c.ctx
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	c.createTopic("grow", 2)
	partitionsOf := func() int {
		t.Helper()
		md, err := adm.Metadata(ctx, "grow")
		if err != nil {
			t.Fatal(err)
		}
		return len(md.Topics["grow"].Partitions)
	}
	if r, err := adm.ValidateUpdatePartitions(ctx, 5, "grow"); err != nil || r["grow"].Err != nil || partitionsOf() != 2 {
		t.Fatalf("validate-only: %v %v, %d partitions after; want 2", err, r, partitionsOf())
	}
	if r, err := adm.UpdatePartitions(ctx, 5, "grow"); err != nil || r["grow"].Err != nil {
		t.Fatalf("add partitions: %v %v", err, r)
	}
	if n := partitionsOf(); n != 5 {
		t.Fatalf("Metadata right after adding partitions lists %d, want 5", n)
	}
	rec := &kgo.Record{Topic: "grow", Partition: 4, Value: []byte("into a new partition")}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil || rec.Offset != 0 {
		t.Fatalf("produce to new partition 4: offset %d, %v", rec.Offset, err)
	}
	for _, tc := range []struct {
		count int
		want  *kerr.Error
	}{{5, kerr.InvalidPartitions}, {3, kerr.InvalidPartitions}, {meta.MaxPartitions + 1, kerr.PolicyViolation}} {
		r, err := adm.UpdatePartitions(ctx, tc.count, "grow")
		if err != nil || !errors.Is(r["grow"].Err, tc.want) {
			t.Errorf("%d partitions: %v %v, want %v", tc.count, err, r["grow"].Err, tc.want)
		}
	}
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 5000
	assigned := kmsg.NewCreatePartitionsRequestTopic()
	assigned.Topic, assigned.Count, assigned.Assignment = "grow", 6, []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}
	unknown := kmsg.NewCreatePartitionsRequestTopic()
	unknown.Topic, unknown.Count = "nope", 3
	twice := kmsg.NewCreatePartitionsRequestTopic()
	twice.Topic, twice.Count = "twice", 3
	req.Topics = []kmsg.CreatePartitionsRequestTopic{assigned, unknown, twice, twice}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []*kerr.Error{kerr.InvalidReplicaAssignment, kerr.UnknownTopicOrPartition, kerr.InvalidRequest, kerr.InvalidRequest}
	for i, rt := range resp.Topics {
		wantCode(t, rt.Topic, rt.ErrorCode, want[i])
	}
	if n := partitionsOf(); n != 5 {
		t.Fatalf("after the refused calls: %d partitions, want 5", n)
	}
}
