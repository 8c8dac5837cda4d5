package kafka

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestACLBindings pins the mapping between Kafka's ACL bindings and
// Strata's grants: each Kafka operation's grant and how it reads back,
// prefixes, the cluster, and the bindings refused with their reason.
func TestACLBindings(t *testing.T) {
	allow := func(rt kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, op kmsg.ACLOperation) aclBinding {
		return aclBinding{resourceType: rt, name: name, pattern: pattern, principal: "User:alice", host: "*", op: op, permission: kmsg.ACLPermissionTypeAllow}
	}
	topic, group, cluster := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster
	literal, prefixed := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	for _, tc := range []struct {
		b      aclBinding
		grant  meta.ACL
		backOp kmsg.ACLOperation // the operation it reads back as
	}{
		{allow(topic, "orders", literal, kmsg.ACLOperationRead), meta.ACL{Principal: "alice", ResourceType: "topic", Name: "orders", Operation: "consume"}, kmsg.ACLOperationRead},
		{allow(topic, "orders", literal, kmsg.ACLOperationIdempotentWrite), meta.ACL{Principal: "alice", ResourceType: "topic", Name: "orders", Operation: "produce"}, kmsg.ACLOperationWrite},
		{allow(topic, "orders-", prefixed, kmsg.ACLOperationDescribeConfigs), meta.ACL{Principal: "alice", ResourceType: "topic", Name: "orders-*", Operation: "describe"}, kmsg.ACLOperationDescribe},
		{allow(topic, "*", literal, kmsg.ACLOperationAlterConfigs), meta.ACL{Principal: "alice", ResourceType: "topic", Name: "*", Operation: "alter"}, kmsg.ACLOperationAlter},
		{allow(group, "g", literal, kmsg.ACLOperationAll), meta.ACL{Principal: "alice", ResourceType: "group", Name: "g", Operation: "all"}, kmsg.ACLOperationAll},
		{allow(cluster, "kafka-cluster", literal, kmsg.ACLOperationAlter), meta.ACL{Principal: "alice", ResourceType: "cluster", Name: "cluster", Operation: "admin"}, kmsg.ACLOperationAlter},
		{allow(cluster, "kafka-cluster", literal, kmsg.ACLOperationClusterAction), meta.ACL{Principal: "alice", ResourceType: "cluster", Name: "cluster", Operation: "admin"}, kmsg.ACLOperationAlter},
		{allow(kmsg.ACLResourceTypeTransactionalId, "etl-", prefixed, kmsg.ACLOperationWrite), meta.ACL{Principal: "alice", ResourceType: "transactional-id", Name: "etl-*", Operation: "produce"}, kmsg.ACLOperationWrite},
	} {
		got, err := tc.b.grant()
		if err != nil || got != tc.grant {
			t.Fatalf("%+v: grant %+v, %v; want %+v", tc.b, got, err, tc.grant)
		}
		back := bindingOf(got)
		if back.op != tc.backOp || back.resourceType != tc.b.resourceType || back.name != tc.b.name || back.pattern != tc.b.pattern || back.principal != tc.b.principal {
			t.Fatalf("%+v reads back as %+v", tc.b, back)
		}
	}
	bad := allow(topic, "orders", literal, kmsg.ACLOperationRead)
	for name, change := range map[string]func(*aclBinding){
		"deny":              func(b *aclBinding) { b.permission = kmsg.ACLPermissionTypeDeny },
		"a host":            func(b *aclBinding) { b.host = "10.0.0.1" },
		"a group principal": func(b *aclBinding) { b.principal = "Group:ops" },
		"delegation token":  func(b *aclBinding) { b.resourceType = kmsg.ACLResourceTypeDelegationToken },
		"MATCH pattern":     func(b *aclBinding) { b.pattern = kmsg.ACLResourcePatternTypeMatch },
		"create tokens":     func(b *aclBinding) { b.op = kmsg.ACLOperationCreateTokens },
	} {
		b := bad
		change(&b)
		if _, err := b.grant(); !errors.Is(err, errUnsupportedACL) {
			t.Errorf("%s: %v, want errUnsupportedACL", name, err)
		}
	}
}

// TestACLFilters: a MATCH filter finds the literal, wildcard and prefixed
// grants that apply to a name; other filters match exactly.
func TestACLFilters(t *testing.T) {
	grants := []meta.ACL{
		{Principal: "alice", ResourceType: "topic", Name: "orders-eu", Operation: "consume"},
		{Principal: "alice", ResourceType: "topic", Name: "orders-*", Operation: "consume"},
		{Principal: "bob", ResourceType: "topic", Name: "*", Operation: "produce"},
		{Principal: "bob", ResourceType: "group", Name: "orders-eu", Operation: "consume"},
	}
	name, bob := "orders-eu", "User:bob"
	every := aclFilter{resourceType: kmsg.ACLResourceTypeAny, pattern: kmsg.ACLResourcePatternTypeAny, op: kmsg.ACLOperationAny, permission: kmsg.ACLPermissionTypeAny}
	for _, tc := range []struct {
		name string
		f    func(*aclFilter)
		want []int
	}{
		{"everything", func(*aclFilter) {}, []int{0, 1, 2, 3}},
		{"MATCH a topic", func(f *aclFilter) {
			f.resourceType, f.pattern, f.name = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeMatch, &name
		}, []int{0, 1, 2}},
		{"PREFIXED", func(f *aclFilter) { f.pattern = kmsg.ACLResourcePatternTypePrefixed }, []int{1}},
		{"bob's WRITE", func(f *aclFilter) { f.principal, f.op = &bob, kmsg.ACLOperationWrite }, []int{2}},
		{"DENY", func(f *aclFilter) { f.permission = kmsg.ACLPermissionTypeDeny }, nil},
	} {
		f := every
		tc.f(&f)
		var got []int
		for i, g := range grants {
			if f.matches(g) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
		}
	}
}
