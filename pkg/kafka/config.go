package kafka

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// Defaults for Config.
const (
	// DefaultAddr is where `strata dev` serves Kafka clients: Kafka's
	// usual port, on loopback.
	DefaultAddr = "127.0.0.1:9092"
	// DefaultMaxInflightPerConn bounds the requests one connection may
	// have in processing at once. Kafka clients pipeline up to five
	// produce requests per connection (max.in.flight) plus fetches and
	// metadata; 32 leaves room without letting one connection queue
	// unbounded work.
	DefaultMaxInflightPerConn = 32
	// DefaultIdleTimeout closes connections that sent nothing for this
	// long, as Kafka's connections.max.idle.ms (10 minutes) does.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultSASLTimeout bounds the time from accepting a connection to
	// its authentication, when authentication is required, so an
	// unauthenticated client cannot hold a connection open.
	DefaultSASLTimeout = 10 * time.Second
	// DefaultMaxRequestBytes bounds one request, as Kafka's
	// socket.request.max.bytes does, and is its default (100 MiB):
	// Kafka clients size a produce request up to it (franz-go's
	// BrokerMaxWriteBytes, Sarama's MaxRequestSize), gathering every
	// partition's batch for a broker into one request. A lower bound
	// stalls a client writing to many partitions at once: the connection
	// closes, and the client sends the same request again.
	DefaultMaxRequestBytes = 100 << 20
	// DefaultMaxQueuedRequestBytes bounds the request bytes all Kafka
	// connections together hold read and unanswered, as Kafka's
	// queued.max.request.bytes does (Kafka leaves it unbounded). Without
	// it a proxy holds up to its connections times MaxRequestBytes; 256
	// MiB is two and a half requests of the 100 MiB limit, and keeps the
	// chart's proxy (a 256 MiB cache plus 96 MiB under a 768 MiB limit)
	// inside its memory when many clients send large requests at once.
	// When MaxRequestBytes is larger, the default is MaxRequestBytes.
	DefaultMaxQueuedRequestBytes = 256 << 20
	// DefaultMaxControlRequestBytes bounds requests other than Produce.
	// Decoding can turn each byte of an array into a struct of tens of
	// bytes, so requests without record data get a tighter bound than
	// MaxRequestBytes; 8 MiB holds a SyncGroup assignment of
	// thousands of members or an OffsetCommit of 100,000 partitions.
	DefaultMaxControlRequestBytes = 8 << 20
	// DefaultShutdownTimeout bounds how long Close lets requests in
	// flight finish. The proxy has already ended long-polls and retries
	// when it closes a front end, so requests finish within
	// milliseconds; the bound keeps SIGTERM-to-exit under 2 s.
	DefaultShutdownTimeout = time.Second
	// DefaultConsumerSessionTimeout is the session timeout of KIP-848
	// members (group.protocol=consumer), who do not choose their own: 45
	// s, Kafka's group.consumer.session.timeout.ms. Shorter, a member
	// whose proxy restarted (5 s away, then the client's reconnect
	// backoff) lost its partitions and its uncommitted progress; a member
	// that died hands its partitions on after this long.
	DefaultConsumerSessionTimeout = 45 * time.Second
	// DefaultAutoCreatePartitions is the partition count of a topic
	// created because a Metadata request named it (AutoCreateTopics):
	// 1, Kafka's num.partitions.
	DefaultAutoCreatePartitions = 1
)

// Config configures the Kafka front end of a proxy.
type Config struct {
	// Addr is the host:port the listener binds; port 0 picks a free port
	// (see Server.Addr). Required.
	Addr string
	// AdvertisedAddr is the host:port the proxy tells clients in Metadata
	// and FindCoordinator, Kafka's advertised.listeners: behind a
	// Kubernetes Service or NAT the bind address is not one clients can
	// reach. Empty advertises the bound address, with an unspecified host
	// (0.0.0.0, ::) replaced by the machine's host name.
	AdvertisedAddr string
	// NodeID is the broker id the proxy gives itself in Metadata. Zero
	// derives a stable non-negative id from the advertised address, so
	// proxies with different addresses have different ids and a proxy
	// keeps its id across restarts.
	NodeID int32
	// ClusterID is the cluster id in Metadata. Empty derives one from the
	// metadata store's cluster prefix, so every proxy of a cluster
	// reports the same id.
	ClusterID string
	// MaxInflightPerConn bounds the requests of one connection in
	// processing at once; the connection's reader waits past it. Default
	// DefaultMaxInflightPerConn.
	MaxInflightPerConn int
	// MaxRequestBytes bounds each request (Kafka's
	// socket.request.max.bytes); a larger one closes the connection, as
	// Kafka closes it. It also bounds the request bytes one connection has
	// in processing at once. Default DefaultMaxRequestBytes.
	MaxRequestBytes int
	// MaxQueuedRequestBytes bounds the bytes of the requests all
	// connections have read or are reading and have not answered (Kafka's
	// queued.max.request.bytes); a connection whose next request does not
	// fit waits before reading it. At least MaxRequestBytes. Default
	// DefaultMaxQueuedRequestBytes, or MaxRequestBytes if larger.
	MaxQueuedRequestBytes int
	// MaxControlRequestBytes bounds each request other than Produce,
	// within MaxRequestBytes; a larger one closes the connection. Default
	// DefaultMaxControlRequestBytes.
	MaxControlRequestBytes int
	// IdleTimeout closes a connection that sent no request for this long.
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// SASLTimeout bounds the time a connection may take to authenticate
	// when the proxy requires credentials. Default DefaultSASLTimeout.
	SASLTimeout time.Duration
	// ShutdownTimeout bounds how long Close waits for requests in flight
	// before it closes their connections. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// ConsumerSessionTimeout is how long a KIP-848 member may go without
	// a heartbeat before the coordinator removes it (Kafka's
	// group.consumer.session.timeout.ms). Default
	// DefaultConsumerSessionTimeout; meta.MinSessionTimeout to
	// meta.MaxSessionTimeout.
	ConsumerSessionTimeout time.Duration
	// MaxTxnTimeout is the longest transaction timeout a transactional
	// producer may ask for (Kafka's transaction.max.timeout.ms). An open
	// transaction holds back read_committed consumers of its partitions,
	// so this bounds how long one stuck producer can stall them: the
	// coordinator aborts a transaction older than its timeout. Default
	// txn.DefaultMaxTimeout.
	MaxTxnTimeout time.Duration
	// TxnIDExpiration is how long a transactional id with no transaction
	// open may go unused before the coordinator deletes it (Kafka's
	// transactional.id.expiration.ms). Default txn.DefaultIDExpiration.
	TxnIDExpiration time.Duration
	// AutoCreateTopics creates a topic that does not exist when a
	// Metadata request names it and allows creation (v0–3 always do;
	// v4+ say so), as Kafka's auto.create.topics.enable does; the
	// principal needs Create on the topic. Off by default, as on most
	// managed Kafka services: a mistyped name then fails instead of
	// making a topic.
	AutoCreateTopics bool
	// AutoCreatePartitions is the partition count of an auto-created
	// topic (Kafka's num.partitions). Default DefaultAutoCreatePartitions.
	AutoCreatePartitions int
}

func (c *Config) setDefaults() {
	if c.MaxInflightPerConn == 0 {
		c.MaxInflightPerConn = DefaultMaxInflightPerConn
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxQueuedRequestBytes == 0 {
		c.MaxQueuedRequestBytes = max(DefaultMaxQueuedRequestBytes, c.MaxRequestBytes)
	}
	if c.MaxControlRequestBytes == 0 {
		c.MaxControlRequestBytes = DefaultMaxControlRequestBytes
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SASLTimeout == 0 {
		c.SASLTimeout = DefaultSASLTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = DefaultConsumerSessionTimeout
	}
	if c.AutoCreatePartitions == 0 {
		c.AutoCreatePartitions = DefaultAutoCreatePartitions
	}
}

// Validate reports whether the configuration can be used, after defaults
// have been applied to zero fields.
func (c Config) Validate() error {
	c.setDefaults()
	if c.Addr == "" {
		return errors.New("kafka: config: no listen address (Addr)")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("kafka: config: listen address %q: %w", c.Addr, err)
	}
	if c.AdvertisedAddr != "" {
		if _, err := splitAdvertised(c.AdvertisedAddr); err != nil {
			return fmt.Errorf("kafka: config: advertised address %q: %w", c.AdvertisedAddr, err)
		}
	}
	switch {
	case c.NodeID < 0:
		return fmt.Errorf("kafka: config: node id %d is negative", c.NodeID)
	case c.MaxRequestBytes < minRequestBytes || c.MaxRequestBytes > math.MaxInt32:
		return fmt.Errorf("kafka: config: max request bytes %d, want %d..%d", c.MaxRequestBytes, minRequestBytes, math.MaxInt32)
	case c.MaxQueuedRequestBytes < c.MaxRequestBytes:
		return fmt.Errorf("kafka: config: max queued request bytes %d is below max request bytes %d: a request of the limit could never be read", c.MaxQueuedRequestBytes, c.MaxRequestBytes)
	case c.MaxControlRequestBytes < minRequestBytes:
		return fmt.Errorf("kafka: config: max control request bytes %d, want >= %d", c.MaxControlRequestBytes, minRequestBytes)
	case c.MaxInflightPerConn < 1:
		return fmt.Errorf("kafka: config: max in-flight per connection %d, want >= 1", c.MaxInflightPerConn)
	case c.IdleTimeout < 0 || c.SASLTimeout < 0 || c.ShutdownTimeout < 0 || c.MaxTxnTimeout < 0 || c.TxnIDExpiration < 0:
		return errors.New("kafka: config: durations must be positive")
	case c.ConsumerSessionTimeout < meta.MinSessionTimeout || c.ConsumerSessionTimeout > meta.MaxSessionTimeout:
		return fmt.Errorf("kafka: config: consumer session timeout %v, want %v..%v", c.ConsumerSessionTimeout, meta.MinSessionTimeout, meta.MaxSessionTimeout)
	case c.AutoCreatePartitions < 1 || c.AutoCreatePartitions > math.MaxInt32:
		return fmt.Errorf("kafka: config: auto-created topics' partitions %d, want 1..%d", c.AutoCreatePartitions, math.MaxInt32)
	}
	return nil
}

// hostPort is an advertised address.
type hostPort struct {
	host string
	port int32
}

func (h hostPort) String() string { return net.JoinHostPort(h.host, strconv.Itoa(int(h.port))) }

// splitAdvertised parses an advertised host:port; the host must be set and
// the port in 1..65535.
func splitAdvertised(addr string) (hostPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPort{}, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return hostPort{}, fmt.Errorf("port %q: want 1..65535", port)
	}
	if host == "" {
		return hostPort{}, errors.New("no host")
	}
	return hostPort{host: host, port: int32(p)}, nil
}

// nodeIDFor derives a broker id from an advertised address: FNV-1a, made
// non-negative.
func nodeIDFor(addr string) int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(addr))
	return int32(h.Sum32() & 0x7fffffff)
}
