package client

import (
	"context"
	"fmt"
	"regexp"
	"time"
)

// GroupOpt configures a GroupConsumer (Client.NewGroupConsumer).
type GroupOpt interface{ applyGroup(*groupConfig) }

type groupOpt func(*groupConfig)

func (f groupOpt) applyGroup(c *groupConfig) { f(c) }

// Defaults of the group options.
const (
	DefaultAutoCommitInterval = 5 * time.Second
)

// defaultSessionTimeout stands in for the session timeout of a
// coordinator that answers with none (older coordinators): the
// coordinator's own default.
const defaultSessionTimeout = 10 * time.Second

// Assignors a group can use (GroupAssignor).
const (
	// AssignorSticky balances partition counts and moves as few
	// partitions as balance allows. The default.
	AssignorSticky = "sticky"
	// AssignorRange gives each member a contiguous range of each topic's
	// partitions, as Kafka's RangeAssignor.
	AssignorRange = "range"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

type groupConfig struct {
	topics             []string
	pattern            string         // SubscribePattern's expression
	patternRE          *regexp.Regexp // pattern, compiled to match whole names
	autoCommitInterval time.Duration
	autoCommitMarks    bool
	sessionTimeout     time.Duration
	assignor           string
	clientID           string
	onAssigned         func(context.Context, []TopicPartition)
	onRevoked          func(context.Context, []TopicPartition)
	consumer           []ConsumerOpt
}

func defaultGroupConfig() groupConfig {
	return groupConfig{autoCommitInterval: DefaultAutoCommitInterval, clientID: "strata-go"}
}

func (c *groupConfig) validate() error {
	switch {
	case len(c.topics) == 0 && c.pattern == "":
		return fmt.Errorf("%w: a group consumer needs Subscribe(topics...) or SubscribePattern", ErrInvalidRequest)
	case len(c.pattern) > maxPatternLen:
		return fmt.Errorf("%w: SubscribePattern of %d bytes, at most %d", ErrInvalidRequest, len(c.pattern), maxPatternLen)
	case c.autoCommitInterval < 0:
		return fmt.Errorf("%w: AutoCommitInterval must not be negative, got %v", ErrInvalidRequest, c.autoCommitInterval)
	case c.sessionTimeout != 0 && (c.sessionTimeout < time.Second || c.sessionTimeout > 5*time.Minute):
		return fmt.Errorf("%w: SessionTimeout must be 0 or in [1s, 5m], got %v", ErrInvalidRequest, c.sessionTimeout)
	case c.assignor != "" && c.assignor != AssignorSticky && c.assignor != AssignorRange:
		return fmt.Errorf("%w: unknown assignor %q", ErrInvalidRequest, c.assignor)
	}
	for _, t := range c.topics {
		if err := validTopic(t); err != nil {
			return err
		}
	}
	if c.pattern != "" {
		re, err := regexp.Compile("^(?:" + c.pattern + ")$")
		if err != nil {
			return fmt.Errorf("%w: SubscribePattern %q: %v", ErrInvalidRequest, c.pattern, err)
		}
		c.patternRE = re
	}
	return nil
}

// maxPatternLen bounds SubscribePattern's expression (the coordinator's
// limit).
const maxPatternLen = 1024

// SubscribePattern subscribes the group consumer to every topic whose
// whole name matches the regular expression expr (Go's regexp, RE2: what
// Kafka's RE2/J subscriptions accept), as Kafka consumers subscribe by
// pattern; with Subscribe, to both. The member looks the topics up again
// every PatternRefresh, so a topic created later joins the subscription
// (and the group rebalances over it) within that.
func SubscribePattern(expr string) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.pattern = expr })
}

// PatternRefresh is how often a member subscribed with SubscribePattern
// lists the topics to match: a topic created later is read within it,
// and each refresh is one ListTopics call.
const PatternRefresh = 5 * time.Second

// Subscribe sets the topics the group consumer reads; their partitions are
// shared among the group's members. Required.
func Subscribe(topics ...string) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.topics = append(c.topics, topics...) })
}

// AutoCommitInterval is how often consumed offsets are committed in the
// background, in one request for every partition. Zero turns automatic
// commits off (CommitSync / CommitAsync still work; revocation and Close
// still commit). Default 5s.
func AutoCommitInterval(d time.Duration) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.autoCommitInterval = d })
}

// AutoCommitMarks makes commits (automatic, on revocation, on Close and
// CommitSync/CommitAsync) cover only the records passed to MarkRecords,
// instead of every record Poll returned. Use it to commit exactly what was
// processed.
func AutoCommitMarks() GroupOpt {
	return groupOpt(func(c *groupConfig) { c.autoCommitMarks = true })
}

// SessionTimeout asks the coordinator for this session timeout: a member
// that sends no heartbeat for this long is removed and its partitions go
// to the others. 0 (the default) takes the coordinator's default
// (-group-session-timeout, 10s unless set); otherwise 1s to 5m. Either way
// the member follows the timeout the coordinator answers with: when its
// heartbeats fail it keeps its partitions until a tenth of that timeout
// (at most 1s) before the group could hand them to another member.
func SessionTimeout(d time.Duration) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.sessionTimeout = d })
}

// GroupAssignor chooses the server-side assignor, AssignorSticky (the
// default) or AssignorRange. The first member of an empty group decides
// for the group.
func GroupAssignor(name string) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.assignor = name })
}

// GroupClientID is shown by DescribeGroup next to the member. Default
// "strata-go".
func GroupClientID(id string) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.clientID = id })
}

// OnAssigned is called with the partitions the group gave this member,
// after their positions were set from the committed offsets and before
// Poll returns their records. It runs on the group's background goroutine:
// keep it short, and do not call Poll or Close from it.
func OnAssigned(f func(ctx context.Context, partitions []TopicPartition)) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.onAssigned = f })
}

// OnRevoked is called with partitions this member gives up, after their
// fetching stopped and before their offsets are committed and the
// revocation is reported — the place to finish work and MarkRecords /
// CommitSync. It is also called when partitions are lost (the member was
// fenced or its session ended), and then commits are rejected. It runs on
// the group's background goroutine; do not call Poll or Close from it.
func OnRevoked(f func(ctx context.Context, partitions []TopicPartition)) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.onRevoked = f })
}

// GroupConsumerOpts passes consumer options (ConsumeStart, FetchMaxWait, …)
// to the group consumer's fetching. ConsumeStart applies to partitions the
// group has no committed offset for.
func GroupConsumerOpts(opts ...ConsumerOpt) GroupOpt {
	return groupOpt(func(c *groupConfig) { c.consumer = append(c.consumer, opts...) })
}
