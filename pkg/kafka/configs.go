package kafka

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// Topic configs as Kafka names them. Four map onto Strata's topic
// configuration and can be set; the others describe how Strata behaves
// and are read-only: setting one to its only value is accepted, to
// another value refused.
const (
	cfgRetentionMs       = "retention.ms"
	cfgRetentionBytes    = "retention.bytes"
	cfgMaxMessageBytes   = "max.message.bytes"
	cfgCleanupPolicy     = "cleanup.policy"
	cfgCompressionType   = "compression.type"
	cfgTimestampType     = "message.timestamp.type"
	cfgMinInsyncReplicas = "min.insync.replicas"
)

// fixedConfigs are the read-only topic configs and their one value.
var fixedConfigs = []struct{ name, value string }{
	{cfgCompressionType, "producer"},
	{cfgTimestampType, "CreateTime"},
	{cfgMinInsyncReplicas, "1"},
}

// settableConfigs are the configs a topic keeps, by their Kafka names, and
// fieldOf the TopicConfig field each one is (AlterTopic's reset names).
var (
	settableConfigs = []string{cfgRetentionMs, cfgRetentionBytes, cfgMaxMessageBytes, cfgCleanupPolicy}
	fieldOf         = map[string]string{cfgRetentionMs: "retention_ms", cfgRetentionBytes: "retention_bytes", cfgMaxMessageBytes: "max_message_bytes", cfgCleanupPolicy: "cleanup_policy"}
)

// resetFields returns the TopicConfig fields of the configs names to
// reset to their defaults. A read-only config is at its default already
// and is left out; a config Strata does not know is an error naming it
// (INVALID_CONFIG).
func resetFields(names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if f, ok := fieldOf[n]; ok {
			out = append(out, f)
			continue
		}
		if !slices.ContainsFunc(fixedConfigs, func(c struct{ name, value string }) bool { return c.name == n }) {
			return nil, unsupportedConfig(n)
		}
	}
	return out, nil
}

// configPair is a config a request sets; a nil value means the default.
type configPair struct {
	Name  string
	Value *string
}

// createConfigs are a CreateTopics topic's configs.
func createConfigs(cs []kmsg.CreateTopicsRequestTopicConfig) []configPair {
	out := make([]configPair, len(cs))
	for i, c := range cs {
		out[i] = configPair{c.Name, c.Value}
	}
	return out
}

// topicConfigFromKafka turns configs a request sets into Strata's topic
// configuration, where 0 leaves a field at its default (creation) or
// current value (alteration). A config that Strata cannot honour is an
// error naming it (INVALID_CONFIG).
func topicConfigFromKafka(cs []configPair) (*stratav1.TopicConfig, error) {
	out := &stratav1.TopicConfig{}
	for _, c := range cs {
		if c.Value == nil {
			continue // null: the default
		}
		v := *c.Value
		var err error
		switch c.Name {
		case cfgRetentionMs:
			out.RetentionMs, err = parseLimit(c.Name, v)
		case cfgRetentionBytes:
			out.RetentionBytes, err = parseLimit(c.Name, v)
		case cfgMaxMessageBytes:
			var n int64
			if n, err = strconv.ParseInt(v, 10, 32); err != nil || n <= 0 {
				err = fmt.Errorf("%w: %s=%q: want a positive 32-bit integer", errInvalidConfig, c.Name, v)
			}
			out.MaxMessageBytes = int32(n)
		case cfgCleanupPolicy:
			var ok bool
			if out.CleanupPolicy, ok = meta.CleanupPolicyOf(v); !ok {
				err = fmt.Errorf("%w: %s=%q: want %s, %s or %s", errInvalidConfig, c.Name, v, meta.CleanupDelete, meta.CleanupCompact, meta.CleanupCompactDelete)
			}
		default:
			err = checkFixed(c.Name, v)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errInvalidConfig marks a config Strata cannot honour; answered as
// INVALID_CONFIG.
var errInvalidConfig = apierr.Alias("kafka: invalid config", apierr.ErrInvalidRequest)

// parseLimit parses a retention limit: -1 (none) or a positive number.
func parseLimit(name, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || (n < 1 && n != -1) {
		return 0, fmt.Errorf("%w: %s=%q: want -1 (no limit) or a positive integer", errInvalidConfig, name, v)
	}
	return n, nil
}

// checkFixed accepts a read-only config set to its one value.
func checkFixed(name, v string) error {
	for _, f := range fixedConfigs {
		if f.name == name {
			if v == f.value {
				return nil
			}
			return fmt.Errorf("%w: %s=%q: Strata supports only %s=%s", errInvalidConfig, name, v, name, f.value)
		}
	}
	return unsupportedConfig(name)
}

// unsupportedConfig is the error for a config Strata does not know.
func unsupportedConfig(name string) error {
	return fmt.Errorf("%w: %s is not a topic config Strata supports (docs/kafka.md)", errInvalidConfig, name)
}

// configEntry is one described config.
type configEntry struct {
	name, value string
	readOnly    bool
	isDefault   bool
}

// topicConfigEntries describes a topic's configs; maxBatch is what an
// unset max.message.bytes means (the proxy's batch limit).
func topicConfigEntries(t meta.Topic, maxBatch int) []configEntry {
	maxMsg, maxDefault := int64(t.MaxMessageBytes), t.MaxMessageBytes == 0
	if maxDefault {
		maxMsg = int64(maxBatch)
	}
	out := []configEntry{
		{name: cfgRetentionMs, value: strconv.FormatInt(t.RetentionMs, 10)},
		{name: cfgRetentionBytes, value: strconv.FormatInt(t.RetentionBytes, 10)},
		{name: cfgMaxMessageBytes, value: strconv.FormatInt(maxMsg, 10), isDefault: maxDefault},
		{name: cfgCleanupPolicy, value: cmp.Or(t.CleanupPolicy, meta.CleanupDelete), isDefault: !t.Compacted()},
	}
	for _, f := range fixedConfigs {
		out = append(out, configEntry{name: f.name, value: f.value, readOnly: true, isDefault: true})
	}
	return out
}
