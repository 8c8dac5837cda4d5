package kafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strata-mq/strata/pkg/kafka"
)

// metadataFor asks for one topic by name at the given version, allowing
// auto-creation or not (v4+), and returns the topic's answer.
func metadataFor(r *raw, version int16, topic string, allow bool) kmsg.MetadataResponseTopic {
	r.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version, req.AllowAutoTopicCreation = version, allow
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := r.roundTrip(req).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 {
		r.t.Fatalf("metadata v%d for %s: %d topics answered", version, topic, len(resp.Topics))
	}
	return resp.Topics[0]
}

// TestMetadataAutoCreate: with AutoCreateTopics, a Metadata request that
// names a missing topic and allows creation (v0–3 always, v4+ when it
// says so) creates it with AutoCreatePartitions partitions and answers
// with them at once; one that does not allow it, or names an invalid
// topic, creates nothing. A producer that relies on Kafka's
// auto.create.topics.enable produces to a topic nobody created.
func TestMetadataAutoCreate(t *testing.T) {
	c := startCluster(t, clusterOpts{kafka: func(k *kafka.Config) {
		k.AutoCreateTopics, k.AutoCreatePartitions = true, 3
	}})
	r := c.raw()
	exists := func(name string) (int, bool) {
		t.Helper()
		td, err := kadm.NewClient(c.client()).ListTopics(c.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := td[name]
		return len(d.Partitions), ok && d.Err == nil
	}

	if got := metadataFor(r, 12, "not-allowed", false); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("v12 without allow_auto_topic_creation: error %d, want UNKNOWN_TOPIC_OR_PARTITION", got.ErrorCode)
	}
	if _, ok := exists("not-allowed"); ok {
		t.Error("a request that did not allow creation created the topic")
	}
	if got := metadataFor(r, 12, "bad/name", true); got.ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("invalid name: error %d, want INVALID_TOPIC_EXCEPTION", got.ErrorCode)
	}

	for _, tc := range []struct {
		version int16
		topic   string
	}{{12, "made-by-v12"}, {1, "made-by-v1"}} {
		got := metadataFor(r, tc.version, tc.topic, true)
		if got.ErrorCode != 0 || len(got.Partitions) != 3 {
			t.Errorf("v%d auto-create of %s: error %d, %d partitions; want 0 and 3", tc.version, tc.topic, got.ErrorCode, len(got.Partitions))
		}
		if n, ok := exists(tc.topic); !ok || n != 3 {
			t.Errorf("%s after auto-create: exists %v with %d partitions, want 3", tc.topic, ok, n)
		}
		// Asked again, the same topic is answered, not created twice.
		if again := metadataFor(r, tc.version, tc.topic, true); again.ErrorCode != 0 || again.TopicID != got.TopicID {
			t.Errorf("v%d second request for %s: error %d, id changed %v", tc.version, tc.topic, again.ErrorCode, again.TopicID != got.TopicID)
		}
	}

	prod := c.client(kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("made-by-producer"))
	if err := prod.ProduceSync(c.ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatalf("produce to a topic nobody created: %v", err)
	}
	if n, ok := exists("made-by-producer"); !ok || n != 3 {
		t.Errorf("made-by-producer: exists %v with %d partitions, want 3", ok, n)
	}
}

// TestMetadataNoAutoCreateByDefault: without AutoCreateTopics, a request
// that allows creation still gets UNKNOWN_TOPIC_OR_PARTITION and creates
// nothing.
func TestMetadataNoAutoCreateByDefault(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	r := c.raw()
	for _, v := range []int16{1, 12} {
		if got := metadataFor(r, v, "never-made", true); got.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("v%d: error %d, want UNKNOWN_TOPIC_OR_PARTITION", v, got.ErrorCode)
		}
	}
	td, err := kadm.NewClient(c.client()).ListTopics(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(td) != 0 {
		t.Errorf("topics after Metadata requests for a missing topic: %v, want none", td.Names())
	}
}

// TestMetadataAutoCreateNeedsCreate: auto-creation is CreateTopics on the
// principal's behalf. One allowed to describe every topic but not to
// create gets TOPIC_AUTHORIZATION_FAILED and no topic; once granted Create
// on the name, its request creates the topic.
func TestMetadataAutoCreateNeedsCreate(t *testing.T) {
	c := startWithACLsOpts(t, clusterOpts{kafka: func(k *kafka.Config) { k.AutoCreateTopics = true }}, "dora")
	adm := kadm.NewClient(c.client(kgo.SASL(plain.Auth{User: "admin", Pass: "tok-admin"}.AsMechanism())))
	grant := func(op kadm.ACLOperation, topic string) {
		t.Helper()
		b := kadm.NewACLs().Allow("User:dora").AllowHosts("*").Topics(topic).Operations(op).ResourcePatternType(kadm.ACLPatternLiteral)
		if rs, err := adm.CreateACLs(c.ctx, b); err != nil || rs[0].Err != nil {
			t.Fatalf("grant dora %v on %s: %v %+v", op, topic, err, rs)
		}
	}
	grant(kadm.OpDescribe, "*")
	r := c.raw()
	authenticate(t, r, "dora", "tok-dora")
	if got := metadataFor(r, 12, "doras", true); got.ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Errorf("without Create: error %d, want TOPIC_AUTHORIZATION_FAILED", got.ErrorCode)
	}
	if td, err := adm.ListTopics(c.ctx); err != nil || len(td) != 0 {
		t.Fatalf("topics after a refused auto-create: %v, %v; want none", td.Names(), err)
	}
	grant(kadm.OpCreate, "doras")
	if got := metadataFor(r, 12, "doras", true); got.ErrorCode != 0 || len(got.Partitions) != 1 {
		t.Errorf("with Create: error %d, %d partitions; want 0 and 1", got.ErrorCode, len(got.Partitions))
	}
}
