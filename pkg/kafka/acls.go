package kafka

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Kafka's ACL bindings and Strata's grants (meta.ACL). CreateAcls,
// DescribeAcls and DeleteAcls speak Kafka's terms; the grants are
// Strata's, the same the gRPC ACL calls manage and the Guard enforces on
// both protocols. Strata's grants allow and never deny, hold for every
// host, and name principals without a type, so a Kafka binding maps onto
// one only when it allows, is for host "*" and for a "User:" principal.
// Operations map by what they let a client do:
//
//	Kafka                               Strata
//	READ                                consume
//	WRITE, IDEMPOTENT_WRITE             produce
//	DESCRIBE, DESCRIBE_CONFIGS          describe
//	ALTER, ALTER_CONFIGS                alter (admin on the cluster)
//	CREATE, DELETE, ALL                 create, delete, all
//	CLUSTER_ACTION                      admin
//
// and Strata's describe back as the first Kafka name of each row. A
// PREFIXED pattern "orders-" is Strata's name "orders-*".

// kafkaCluster is the one name of Kafka's cluster resource.
const kafkaCluster = "kafka-cluster"

// kafkaPrincipal is the principal type Strata's principals map onto.
const kafkaPrincipal = "User:"

// aclBinding is a Kafka ACL binding.
type aclBinding struct {
	resourceType kmsg.ACLResourceType
	name         string
	pattern      kmsg.ACLResourcePatternType
	principal    string
	host         string
	op           kmsg.ACLOperation
	permission   kmsg.ACLPermissionType
}

// errUnsupportedACL marks a binding Strata's grants cannot express.
var errUnsupportedACL = apierr.Alias("kafka: acl binding not supported", apierr.ErrInvalidRequest)

// grant maps b onto Strata's grant.
func (b aclBinding) grant() (meta.ACL, error) {
	switch {
	case b.permission != kmsg.ACLPermissionTypeAllow:
		return meta.ACL{}, fmt.Errorf("%w: only ALLOW bindings (Strata's grants never deny), not %v", errUnsupportedACL, b.permission)
	case b.host != "*":
		return meta.ACL{}, fmt.Errorf("%w: only host \"*\" (Strata's grants hold for every host), not %q", errUnsupportedACL, b.host)
	case !strings.HasPrefix(b.principal, kafkaPrincipal):
		return meta.ACL{}, fmt.Errorf("%w: only %q principals, not %q", errUnsupportedACL, kafkaPrincipal, b.principal)
	}
	a := meta.ACL{Principal: strings.TrimPrefix(b.principal, kafkaPrincipal), Name: b.name}
	switch b.resourceType {
	case kmsg.ACLResourceTypeTopic:
		a.ResourceType = meta.ResourceTopic
	case kmsg.ACLResourceTypeGroup:
		a.ResourceType = meta.ResourceGroup
	case kmsg.ACLResourceTypeCluster:
		a.ResourceType, a.Name = meta.ResourceCluster, meta.ClusterResourceName
	case kmsg.ACLResourceTypeTransactionalId:
		a.ResourceType = meta.ResourceTxnID
	default:
		return meta.ACL{}, fmt.Errorf("%w: resource type %v (Strata grants on topics, groups, transactional ids and the cluster)", errUnsupportedACL, b.resourceType)
	}
	switch {
	case b.pattern == kmsg.ACLResourcePatternTypePrefixed && b.name != "" && a.ResourceType != meta.ResourceCluster:
		a.Name += "*"
	case b.pattern != kmsg.ACLResourcePatternTypeLiteral && b.pattern != kmsg.ACLResourcePatternTypePrefixed:
		return meta.ACL{}, fmt.Errorf("%w: pattern type %v (want LITERAL or PREFIXED)", errUnsupportedACL, b.pattern)
	}
	var ok bool
	if a.Operation, ok = strataOp(b.op, a.ResourceType); !ok {
		return meta.ACL{}, fmt.Errorf("%w: operation %v", errUnsupportedACL, b.op)
	}
	return a, a.Validate()
}

// strataOp is the Strata operation of a Kafka one on a resource type.
func strataOp(op kmsg.ACLOperation, resourceType string) (string, bool) {
	switch op {
	case kmsg.ACLOperationRead:
		return meta.OpConsume, true
	case kmsg.ACLOperationWrite, kmsg.ACLOperationIdempotentWrite:
		return meta.OpProduce, true
	case kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs:
		return meta.OpDescribe, true
	case kmsg.ACLOperationAlter, kmsg.ACLOperationAlterConfigs:
		if resourceType == meta.ResourceCluster {
			return meta.OpAdmin, true
		}
		return meta.OpAlter, true
	case kmsg.ACLOperationCreate:
		return meta.OpCreate, true
	case kmsg.ACLOperationDelete:
		return meta.OpDelete, true
	case kmsg.ACLOperationAll:
		return meta.OpAll, true
	case kmsg.ACLOperationClusterAction:
		return meta.OpAdmin, true
	}
	return "", false
}

// bindingOf describes Strata's grant a as a Kafka binding.
func bindingOf(a meta.ACL) aclBinding {
	b := aclBinding{principal: kafkaPrincipal + a.Principal, host: "*", permission: kmsg.ACLPermissionTypeAllow,
		name: a.Name, pattern: kmsg.ACLResourcePatternTypeLiteral}
	switch a.ResourceType {
	case meta.ResourceTopic:
		b.resourceType = kmsg.ACLResourceTypeTopic
	case meta.ResourceGroup:
		b.resourceType = kmsg.ACLResourceTypeGroup
	case meta.ResourceTxnID:
		b.resourceType = kmsg.ACLResourceTypeTransactionalId
	default:
		b.resourceType, b.name = kmsg.ACLResourceTypeCluster, kafkaCluster
	}
	if len(a.Name) > 1 && strings.HasSuffix(a.Name, "*") {
		b.name, b.pattern = strings.TrimSuffix(a.Name, "*"), kmsg.ACLResourcePatternTypePrefixed
	}
	b.op = map[string]kmsg.ACLOperation{
		meta.OpConsume: kmsg.ACLOperationRead, meta.OpProduce: kmsg.ACLOperationWrite, meta.OpDescribe: kmsg.ACLOperationDescribe,
		meta.OpAlter: kmsg.ACLOperationAlter, meta.OpAdmin: kmsg.ACLOperationAlter, meta.OpCreate: kmsg.ACLOperationCreate,
		meta.OpDelete: kmsg.ACLOperationDelete, meta.OpAll: kmsg.ACLOperationAll,
	}[a.Operation]
	return b
}

// aclFilter is a DescribeAcls or DeleteAcls filter; nil strings match
// anything.
type aclFilter struct {
	resourceType kmsg.ACLResourceType
	name         *string
	pattern      kmsg.ACLResourcePatternType
	principal    *string
	host         *string
	op           kmsg.ACLOperation
	permission   kmsg.ACLPermissionType
}

// matches reports whether Strata's grant a, as a Kafka binding, passes f.
func (f aclFilter) matches(a meta.ACL) bool {
	b := bindingOf(a)
	op, _ := strataOp(f.op, a.ResourceType)
	switch {
	case f.resourceType != kmsg.ACLResourceTypeAny && f.resourceType != b.resourceType,
		f.principal != nil && *f.principal != b.principal,
		f.host != nil && *f.host != b.host,
		f.op != kmsg.ACLOperationAny && op != a.Operation,
		f.permission != kmsg.ACLPermissionTypeAny && f.permission != b.permission:
		return false
	}
	return f.matchesName(b)
}

// matchesName applies the filter's pattern type and name to b.
func (f aclFilter) matchesName(b aclBinding) bool {
	switch f.pattern {
	case kmsg.ACLResourcePatternTypeAny:
		return f.name == nil || *f.name == b.name
	case kmsg.ACLResourcePatternTypeMatch: // every binding that applies to the named resource
		if f.name == nil {
			return true
		}
		switch b.pattern {
		case kmsg.ACLResourcePatternTypePrefixed:
			return strings.HasPrefix(*f.name, b.name)
		default:
			return b.name == "*" || b.name == *f.name
		}
	default:
		return f.pattern == b.pattern && (f.name == nil || *f.name == b.name)
	}
}
