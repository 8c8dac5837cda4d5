package client

import (
	"fmt"
	"time"

	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// Opt configures a Client (New).
type Opt interface{ applyClient(*clientConfig) }

// ProducerOpt configures a Producer (Client.NewProducer).
type ProducerOpt interface{ applyProducer(*producerConfig) }

// ConsumerOpt configures a Consumer (Client.NewConsumer).
type ConsumerOpt interface{ applyConsumer(*consumerConfig) }

// TopicOpt configures a topic at creation (Client.CreateTopic).
type TopicOpt interface{ applyTopic(*topicConfig) }

type clientOpt func(*clientConfig)

func (f clientOpt) applyClient(c *clientConfig) { f(c) }

type producerOpt func(*producerConfig)

func (f producerOpt) applyProducer(c *producerConfig) { f(c) }

type consumerOpt func(*consumerConfig)

func (f consumerOpt) applyConsumer(c *consumerConfig) { f(c) }

type topicOpt func(*topicConfig)

func (f topicOpt) applyTopic(c *topicConfig) { f(c) }

// Defaults of the options below.
const (
	DefaultRequestTimeout   = 30 * time.Second
	DefaultAdminAttempts    = 5
	DefaultRetryBackoffMin  = 100 * time.Millisecond
	DefaultRetryBackoffMax  = 2 * time.Second
	DefaultLinger           = 5 * time.Millisecond
	DefaultMaxBatchBytes    = 1 << 20
	DefaultMaxBufferedBytes = 64 << 20
	// Deprecated: MaxAttempts no longer bounds produce retries.
	DefaultMaxAttempts     = 10
	DefaultMaxInflight     = 5
	DefaultDeliveryTimeout = 2 * time.Minute
	// DefaultMetadataMaxAge is how long a producer trusts a topic's
	// partition count before it looks it up again: Kafka's
	// metadata.max.age.ms, so partitions added to a topic take traffic
	// within it (one DescribeTopic per topic per interval).
	DefaultMetadataMaxAge = 5 * time.Minute
	DefaultFetchMaxWait   = 500 * time.Millisecond
	DefaultFetchMaxBytes  = 1 << 20
	// DefaultReconnectBackoffMin and DefaultReconnectBackoffMax bound the
	// wait between connection attempts to a proxy that is down. gRPC's
	// own defaults (1s growing to 2 minutes) kept partitions stalled for
	// seconds after a restarted proxy was ready; a refused connection
	// costs next to nothing, so the SDK retries every quarter second at
	// most, and a proxy that comes back takes traffic within that.
	DefaultReconnectBackoffMin = 50 * time.Millisecond
	DefaultReconnectBackoffMax = 250 * time.Millisecond
)

type clientConfig struct {
	requestTimeout             time.Duration
	adminAttempts              int
	backoffMin, backoffMax     time.Duration
	reconnectMin, reconnectMax time.Duration
	// dial secures the connection (TLS, Token; security.go).
	dial []rpc.DialOption
}

func defaultClientConfig() clientConfig {
	return clientConfig{
		requestTimeout: DefaultRequestTimeout,
		adminAttempts:  DefaultAdminAttempts,
		backoffMin:     DefaultRetryBackoffMin,
		backoffMax:     DefaultRetryBackoffMax,
		reconnectMin:   DefaultReconnectBackoffMin,
		reconnectMax:   DefaultReconnectBackoffMax,
	}
}

func (c *clientConfig) validate() error {
	switch {
	case c.requestTimeout <= 0:
		return fmt.Errorf("%w: RequestTimeout must be positive, got %v", ErrInvalidRequest, c.requestTimeout)
	case c.adminAttempts < 1:
		return fmt.Errorf("%w: AdminAttempts must be at least 1, got %d", ErrInvalidRequest, c.adminAttempts)
	case c.backoffMin < 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("%w: RetryBackoff needs 0 <= min <= max, got %v, %v", ErrInvalidRequest, c.backoffMin, c.backoffMax)
	case c.reconnectMin <= 0 || c.reconnectMax < c.reconnectMin:
		return fmt.Errorf("%w: ReconnectBackoff needs 0 < min <= max, got %v, %v", ErrInvalidRequest, c.reconnectMin, c.reconnectMax)
	}
	return nil
}

// RequestTimeout bounds each single request (one attempt) to the proxy.
// A fetch may take its FetchMaxWait on top of it. Default 30s.
func RequestTimeout(d time.Duration) Opt {
	return clientOpt(func(c *clientConfig) { c.requestTimeout = d })
}

// AdminAttempts is how many times an admin request (CreateTopic,
// DescribeTopic, …) and a ListOffsets request are sent when they fail with
// a retriable error (for example NOT_LEADER during a coordinator election).
// Default 5.
func AdminAttempts(n int) Opt {
	return clientOpt(func(c *clientConfig) { c.adminAttempts = n })
}

// ReconnectBackoff sets the wait between connection attempts to a proxy
// that is down: it starts at lo and grows 1.6 times per failed attempt up
// to hi, with ±20% jitter. Default 50ms to 250ms.
func ReconnectBackoff(lo, hi time.Duration) Opt {
	return clientOpt(func(c *clientConfig) { c.reconnectMin, c.reconnectMax = lo, hi })
}

// RetryBackoff sets the wait between retries of admin requests and of
// consumer fetches: it starts at lo and doubles per attempt up to hi, with
// ±10% jitter. Default 100ms to 2s. Producers have their own
// ProducerRetryBackoff.
func RetryBackoff(lo, hi time.Duration) Opt {
	return clientOpt(func(c *clientConfig) { c.backoffMin, c.backoffMax = lo, hi })
}

type producerConfig struct {
	linger                 time.Duration
	maxBatchBytes          int
	maxBufferedBytes       int64
	codec                  segment.Codec
	deliveryTimeout        time.Duration
	backoffMin, backoffMax time.Duration
	// noIdempotence turns the idempotent producer off (Idempotence).
	noIdempotence bool
	// maxInflight bounds the requests in flight per partition.
	maxInflight int
	// metadataMaxAge is how long a topic's partition count is cached.
	metadataMaxAge time.Duration
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		linger:           DefaultLinger,
		maxBatchBytes:    DefaultMaxBatchBytes,
		maxBufferedBytes: DefaultMaxBufferedBytes,
		codec:            segment.CodecNone,
		deliveryTimeout:  DefaultDeliveryTimeout,
		backoffMin:       DefaultRetryBackoffMin,
		backoffMax:       DefaultRetryBackoffMax,
		maxInflight:      DefaultMaxInflight,
		metadataMaxAge:   DefaultMetadataMaxAge,
	}
}

// maxRequestBytes bounds a produce request the producer builds: under the
// gRPC message limit with room for the envelope.
const maxRequestBytes = min(segment.MaxBatchBytes, rpc.MaxMessageBytes-4096)

func (c *producerConfig) validate() error {
	switch {
	case c.linger < 0:
		return fmt.Errorf("%w: Linger must not be negative, got %v", ErrInvalidRequest, c.linger)
	case c.maxBatchBytes < 1024 || c.maxBatchBytes > maxRequestBytes:
		return fmt.Errorf("%w: MaxBatchBytes must be in [1024, %d], got %d", ErrInvalidRequest, maxRequestBytes, c.maxBatchBytes)
	case c.maxBufferedBytes < int64(c.maxBatchBytes):
		return fmt.Errorf("%w: MaxBufferedBytes (%d) must be at least MaxBatchBytes (%d)", ErrInvalidRequest, c.maxBufferedBytes, c.maxBatchBytes)
	case !c.codec.Valid():
		return fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRequest, int8(c.codec))
	case c.deliveryTimeout <= 0:
		return fmt.Errorf("%w: DeliveryTimeout must be positive, got %v", ErrInvalidRequest, c.deliveryTimeout)
	case c.maxInflight < 1 || c.maxInflight > MaxInflightLimit:
		return fmt.Errorf("%w: MaxInflight must be in [1, %d], got %d", ErrInvalidRequest, MaxInflightLimit, c.maxInflight)
	case c.backoffMin < 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("%w: ProducerRetryBackoff needs 0 <= min <= max, got %v, %v", ErrInvalidRequest, c.backoffMin, c.backoffMax)
	case c.metadataMaxAge <= 0:
		return fmt.Errorf("%w: MetadataMaxAge must be positive, got %v", ErrInvalidRequest, c.metadataMaxAge)
	}
	return nil
}

// MetadataMaxAge is how long the producer caches a topic's partition
// count before it looks it up again, so that partitions added to the
// topic (AlterTopic with Partitions) take records within it; Kafka's
// metadata.max.age.ms. Default DefaultMetadataMaxAge.
func MetadataMaxAge(d time.Duration) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.metadataMaxAge = d })
}

// Linger is how long a buffered record waits for more before it goes: when
// the oldest record buffered has waited Linger, every partition's buffer
// becomes a batch, and the batches travel together, as a Kafka producer
// drains all its partitions for a broker at once. A buffer that reaches
// MaxBatchBytes goes at once. Zero sends as soon as possible (records
// produced while a request is in flight still share the next batch).
// Default 5ms.
func Linger(d time.Duration) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.linger = d })
}

// MaxBatchBytes is the largest batch, in uncompressed record bytes, the
// producer builds for one partition, and the largest produce request it
// sends. A single record larger than this fails with ErrRecordTooLarge.
// Must be in [1 KiB, 16 MiB]. Default 1 MiB.
func MaxBatchBytes(n int) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.maxBatchBytes = n })
}

// MaxBufferedBytes bounds the records held by the producer (buffered or in
// flight, counted by their uncompressed size). Produce blocks while the
// bound is reached, until space frees up or its context ends. Must be at
// least MaxBatchBytes. Default 64 MiB.
func MaxBufferedBytes(n int64) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.maxBufferedBytes = n })
}

// Compression sets the codec of the batches the producer builds:
// segment.CodecNone, CodecGzip, CodecSnappy, CodecLZ4 or CodecZstd.
// Default CodecNone.
func Compression(codec segment.Codec) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.codec = codec })
}

// MaxAttempts used to bound how many times a produce request was sent.
//
// Deprecated: a request that fails with a retriable error is sent again
// until DeliveryTimeout passes, however many attempts that takes (as with
// Kafka's delivery.timeout.ms): a fixed count ran out in seconds of
// "connection refused" while a proxy restarted, and giving up early on a
// request that may have been written is what forced a producer to choose
// between reporting stored records as failed and writing them twice.
// MaxAttempts is accepted and ignored.
func MaxAttempts(int) ProducerOpt {
	return producerOpt(func(*producerConfig) {})
}

// MaxInflightLimit bounds MaxInflight: brokers remember the last 8
// requests of each producer per partition to recognise retries.
const MaxInflightLimit = 8

// MaxInflight is how many produce requests each partition keeps in flight
// (1 to MaxInflightLimit). More than one overlaps a request's wait for
// the broker's flush with the next requests; order is kept by the
// idempotent producer's sequences (a request that reaches the broker
// before its predecessor waits for it, and a failed request is resent
// before the ones after it). Without idempotence it is always 1.
// Default 5.
func MaxInflight(n int) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.maxInflight = n })
}

// DeliveryTimeout bounds the time from Produce to the record's
// acknowledgement, retries included: a request is retried until the
// oldest of its records is this old. Records past it fail with
// ErrDeliveryTimeout — wrapped in ErrUnknownOutcome when a request
// carrying them was sent without an answer that says whether it was
// written. An idempotent producer stores a record at most once across any
// outage of a proxy, broker, MinIO or etcd; one shorter than
// DeliveryTimeout loses nothing either. Default 2 minutes.
func DeliveryTimeout(d time.Duration) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.deliveryTimeout = d })
}

// ProducerRetryBackoff sets the wait between attempts of a batch: it starts
// at lo and doubles up to hi, with ±10% jitter. Default 100ms to 2s.
func ProducerRetryBackoff(lo, hi time.Duration) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.backoffMin, c.backoffMax = lo, hi })
}

// StartOffset says where a consumer starts reading a partition that has no
// position set by Seek.
type StartOffset int

const (
	// StartEarliest starts at the first offset still readable (the log
	// start).
	StartEarliest StartOffset = iota
	// StartLatest starts at the high watermark: only records produced
	// after the consumer's first fetch are read.
	StartLatest
)

// ResetPolicy says what a consumer does when its position in a partition
// is no longer readable (ErrOffsetOutOfRange): retention deleted the
// records, or the position lies past the end.
type ResetPolicy int

const (
	// ResetEarliest moves the position to the first readable offset.
	ResetEarliest ResetPolicy = iota
	// ResetLatest moves the position to the high watermark.
	ResetLatest
	// ResetNone reports ErrOffsetOutOfRange from Poll and stops the
	// partition until the application seeks.
	ResetNone
)

type consumerConfig struct {
	start           StartOffset
	reset           ResetPolicy
	fetchMaxWait    time.Duration
	fetchMaxBytes   int32
	readUncommitted bool
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{start: StartEarliest, reset: ResetEarliest, fetchMaxWait: DefaultFetchMaxWait, fetchMaxBytes: DefaultFetchMaxBytes}
}

func (c *consumerConfig) validate() error {
	switch {
	case c.start != StartEarliest && c.start != StartLatest:
		return fmt.Errorf("%w: unknown StartOffset %d", ErrInvalidRequest, c.start)
	case c.reset < ResetEarliest || c.reset > ResetNone:
		return fmt.Errorf("%w: unknown ResetPolicy %d", ErrInvalidRequest, c.reset)
	case c.fetchMaxWait < 0 || c.fetchMaxWait > time.Minute:
		return fmt.Errorf("%w: FetchMaxWait must be in [0, 1m], got %v", ErrInvalidRequest, c.fetchMaxWait)
	case c.fetchMaxBytes < 1 || int(c.fetchMaxBytes) > rpc.MaxMessageBytes/2:
		return fmt.Errorf("%w: FetchMaxBytes must be in [1, %d], got %d", ErrInvalidRequest, rpc.MaxMessageBytes/2, c.fetchMaxBytes)
	}
	return nil
}

// ConsumeStart sets where partitions without a position start: StartEarliest
// (the default, like franz-go — nothing is skipped silently) or
// StartLatest (like Kafka's auto.offset.reset=latest). What happens when a
// position later falls out of the readable range is OffsetReset's choice.
func ConsumeStart(s StartOffset) ConsumerOpt {
	return consumerOpt(func(c *consumerConfig) { c.start = s })
}

// OffsetReset sets what the consumer does when a partition's position is
// out of the readable range — below the log start after retention, or past
// the high watermark: ResetEarliest (the default, as in franz-go), ResetLatest
// or ResetNone (Poll reports ErrOffsetOutOfRange and the partition waits
// for a Seek).
func OffsetReset(p ResetPolicy) ConsumerOpt {
	return consumerOpt(func(c *consumerConfig) { c.reset = p })
}

// FetchMaxWait is how long the proxy holds a fetch at the end of a
// partition waiting for new records. Default 500ms; at most 1 minute.
func FetchMaxWait(d time.Duration) ConsumerOpt {
	return consumerOpt(func(c *consumerConfig) { c.fetchMaxWait = d })
}

// FetchMaxBytes is the byte budget of one fetch of one partition (the first
// batch is returned whole even if larger). Default 1 MiB.
func FetchMaxBytes(n int32) ConsumerOpt {
	return consumerOpt(func(c *consumerConfig) { c.fetchMaxBytes = n })
}

// ReadUncommitted makes the consumer read every record, of Kafka
// transactions still open or aborted too (Kafka's
// isolation.level=read_uncommitted). By default a consumer reads only
// records outside transactions and of committed ones, up to the last
// stable offset (docs/transactions.md); topics that Kafka transactional
// producers never wrote read the same either way.
func ReadUncommitted() ConsumerOpt {
	return consumerOpt(func(c *consumerConfig) { c.readUncommitted = true })
}

type topicConfig struct {
	retentionMs     int64
	retentionBytes  int64
	maxMessageBytes int32
	cleanupPolicy   string
	reset           []string
	partitions      int32
}

// The configs of a topic, by the names ResetTopicConfig takes.
const (
	ConfigRetention       = "retention_ms"
	ConfigRetentionBytes  = "retention_bytes"
	ConfigMaxMessageBytes = "max_message_bytes"
	ConfigCleanupPolicy   = "cleanup_policy"
)

// CleanupPolicy sets what happens to a topic's old data: "delete" (the
// default) lets retention delete it; "compact" keeps every record whatever
// the retention limits, so the latest value of every key stays, as
// Kafka's compacted topics promise (Strata does not yet remove the values
// a later record of the same key overwrote). The cluster checks the
// value.
func CleanupPolicy(p string) TopicOpt {
	return topicOpt(func(c *topicConfig) { c.cleanupPolicy = p })
}

// ResetTopicConfig sets the named configs (ConfigRetention,
// ConfigRetentionBytes, ConfigMaxMessageBytes, ConfigCleanupPolicy) back
// to the cluster's
// defaults, as Kafka's DELETE of a config does. For AlterTopic only: a
// topic is created with the defaults of every config it is not given.
func ResetTopicConfig(names ...string) TopicOpt {
	return topicOpt(func(c *topicConfig) { c.reset = append(c.reset, names...) })
}

// Partitions makes the topic's partition count n. For AlterTopic only
// (CreateTopic takes the count itself): partitions are only added, as in
// Kafka, and records with a key may then go to another partition than
// before, since the partitioner hashes the key over the new count.
// Producers see the new partitions within MetadataMaxAge; consumer groups
// rebalance over them at their members' next heartbeats.
func Partitions(n int32) TopicOpt {
	return topicOpt(func(c *topicConfig) { c.partitions = n })
}

// Retention deletes a topic's data older than d; a negative d keeps data
// forever and zero means the cluster's default. Default: the cluster's
// default.
func Retention(d time.Duration) TopicOpt {
	return topicOpt(func(c *topicConfig) {
		switch {
		case d < 0:
			c.retentionMs = -1
		case d == 0:
			c.retentionMs = 0
		default:
			c.retentionMs = max(d.Milliseconds(), 1)
		}
	})
}

// RetentionBytes deletes the oldest data of each partition past n bytes;
// a negative n means no limit. Default: the cluster's default.
func RetentionBytes(n int64) TopicOpt {
	return topicOpt(func(c *topicConfig) {
		if n < 0 {
			n = -1
		}
		c.retentionBytes = n
	})
}

// TopicMaxMessageBytes caps a produce request (all its batches) to the
// topic. Default: the broker's default.
func TopicMaxMessageBytes(n int32) TopicOpt {
	return topicOpt(func(c *topicConfig) { c.maxMessageBytes = n })
}
