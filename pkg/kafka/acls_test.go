package kafka_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestKafkaACLs manages grants with franz-go's admin client, as Terraform
// or Strimzi would: a WRITE binding created through CreateAcls lets alice
// produce (refused before it), DescribeAcls lists it as created (and a
// PREFIXED one as PREFIXED), a binding Strata cannot express (DENY) fails
// alone, alice may not manage ACLs herself, and DeleteAcls removes the
// binding, after which alice is refused again.
func TestKafkaACLs(t *testing.T) {
	c := startWithACLs(t, "alice")
	ctx := c.ctx
	adm := kadm.NewClient(c.client(kgo.SASL(plain.Auth{User: "admin", Pass: "tok-admin"}.AsMechanism())))
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	alice := c.client(kgo.SASL(plain.Auth{User: "alice", Pass: "tok-alice"}.AsMechanism()), kgo.DefaultProduceTopic("orders"))
	produce := func() error { return alice.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr() }
	if err := produce(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces before any grant: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	write := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("orders").Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral)
	prefixed := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Groups("orders-").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternPrefixed)
	deny := kadm.NewACLs().Deny("User:alice").DenyHosts("*").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	for _, tc := range []struct {
		name string
		b    *kadm.ACLBuilder
		want error
	}{{"allow write", write, nil}, {"allow prefixed", prefixed, nil}, {"deny", deny, kerr.InvalidRequest}} {
		results, err := adm.CreateACLs(ctx, tc.b)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, r := range results {
			if !errors.Is(r.Err, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.name, r.Err, tc.want)
			}
		}
	}
	if err := produce(); err != nil {
		t.Fatalf("alice produces after the WRITE grant: %v", err)
	}

	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range described {
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		for _, a := range d.Described {
			got[a.Type.String()+" "+a.Name+" "+a.Pattern.String()+" "+a.Operation.String()+" "+a.Principal+" "+a.Host] = true
		}
	}
	for _, want := range []string{"TOPIC orders LITERAL WRITE User:alice *", "TOPIC orders LITERAL DESCRIBE User:alice *", "GROUP orders- PREFIXED READ User:alice *"} {
		if !got[want] {
			t.Fatalf("DescribeAcls lists %v, missing %q", got, want)
		}
	}

	aliceAdm := kadm.NewClient(alice)
	if results, err := aliceAdm.CreateACLs(ctx, prefixed); err != nil || len(results) == 0 || !errors.Is(results[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice creates an ACL: %v %+v, want CLUSTER_AUTHORIZATION_FAILED", err, results)
	}

	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("orders").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(deleted) != 1 || len(deleted[0].Deleted) != 1 || deleted[0].Deleted[0].Operation != kmsg.ACLOperationWrite {
		t.Fatalf("delete the WRITE binding: %v %+v", err, deleted)
	}
	if err := produce(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces after the grant is deleted: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}
