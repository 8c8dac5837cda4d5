// Package client is Strata's Go SDK: an admin API, an asynchronous batching
// producer and a consumer, all talking to a Strata proxy over gRPC.
//
//	c, err := client.New("127.0.0.1:7070")
//	if err != nil { ... }
//	defer c.Close()
//	p, _ := c.NewProducer(client.Linger(10 * time.Millisecond))
//	p.Produce(ctx, &client.Record{Topic: "events", Value: []byte("hi")}, func(r *client.Record, err error) { ... })
//	_ = p.Flush(ctx)
//
// Errors returned by the server unwrap to the sentinels of pkg/apierr,
// re-exported here as Err… variables: match them with errors.Is, never by
// message text. See docs/client.md.
package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
)

// The errors of Strata's API (see pkg/apierr). Every error a Client,
// Producer or Consumer returns for a server-side failure unwraps to one of
// these.
var (
	ErrNotOwner           = apierr.ErrNotOwner
	ErrNotLeader          = apierr.ErrNotLeader
	ErrUnknownTopic       = apierr.ErrUnknownTopic
	ErrTopicExists        = apierr.ErrTopicExists
	ErrInvalidTopic       = apierr.ErrInvalidTopic
	ErrPartitionRange     = apierr.ErrPartitionRange
	ErrOffsetOutOfRange   = apierr.ErrOffsetOutOfRange
	ErrCorruptBatch       = apierr.ErrCorruptBatch
	ErrRecordTooLarge     = apierr.ErrRecordTooLarge
	ErrInvalidRequest     = apierr.ErrInvalidRequest
	ErrStorageUnavailable = apierr.ErrStorageUnavailable
	ErrTimeout            = apierr.ErrTimeout
	ErrShuttingDown       = apierr.ErrShuttingDown
	// ErrOutOfOrderSequence: a produce request reached the broker before
	// the request preceding it; the producer resends it by itself.
	ErrOutOfOrderSequence = apierr.ErrOutOfOrderSequence
)

// Errors of the SDK itself.
var (
	// ErrClosed is returned by calls on a closed Client, Producer or
	// Consumer, and given to records still buffered when a producer is
	// closed without flushing them.
	ErrClosed = errors.New("strata: client closed")
	// ErrDeliveryTimeout is given to records that were not acknowledged
	// within the producer's DeliveryTimeout. It also matches ErrTimeout.
	ErrDeliveryTimeout = fmt.Errorf("%w: delivery timeout", apierr.ErrTimeout)
	// ErrUnknownOutcome is given to records whose fate the producer could
	// not learn before it gave up on them (DeliveryTimeout, Close): a
	// request carrying them was sent and got no answer that says whether
	// it was written, so each such record is stored once or not at all —
	// never twice. The error also wraps the reason the producer gave up
	// (ErrDeliveryTimeout, ErrClosed) and the last failure. Producing the
	// record again may store it twice, so IsRetriable reports false; read
	// the partition to find out, if it matters.
	ErrUnknownOutcome = errors.New("strata: outcome unknown: the record may have been written (once) or not")
)

// IsRetriable reports whether err is a transient failure that may succeed
// if the request is sent again (NOT_OWNER, NOT_LEADER, STORAGE_UNAVAILABLE,
// TIMEOUT, SHUTTING_DOWN, or an unreachable server). It is false for
// ErrUnknownOutcome: the records may already be stored.
func IsRetriable(err error) bool {
	return !errors.Is(err, ErrUnknownOutcome) && apierr.Retriable(err)
}

// Client is a connection to one or several Strata proxies. It is safe for
// concurrent use. Producers and consumers made from it share its
// connection.
type Client struct {
	cfg  clientConfig
	conn *grpc.ClientConn
	api  stratav1.StrataClient
}

// New returns a client for the proxies at addr: "host:port" (every
// address the name resolves to), or several "host:port" separated by
// commas, or a gRPC target such as "dns:///name:port" (see dial.go).
// Requests are spread round-robin over the proxies that are up. The
// connections are made lazily, on the first request, and re-made by
// themselves after failures, so New does not fail when a proxy is down.
func New(addr string, opts ...Opt) (*Client, error) {
	cfg := defaultClientConfig()
	for _, o := range opts {
		o.applyClient(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	conn, err := dialProxies(addr, cfg)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, conn: conn, api: stratav1.NewStrataClient(conn)}, nil
}

// Close closes the connection. Close producers (to flush them) and
// consumers before closing their client.
func (c *Client) Close() error { return c.conn.Close() }

// call runs one unary request with the client's request timeout, retrying
// retriable failures up to the client's attempt limit. It returns errors
// converted with apierr.FromStatus.
func call[Req, Resp any](ctx context.Context, c *Client, fn func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.requestTimeout)
		resp, err := fn(rctx, req)
		cancel()
		if err == nil {
			return resp, nil
		}
		err = apierr.FromStatus(err)
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		if !apierr.Retriable(err) || attempt >= c.cfg.adminAttempts {
			return zero, err
		}
		if err := backoff.Sleep(ctx, backoff.Delay(c.cfg.backoffMin, c.cfg.backoffMax, attempt)); err != nil {
			return zero, err
		}
	}
}

// validTopic checks a topic name on the client side, so that obvious
// mistakes fail before a round trip. The server is the authority.
func validTopic(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty topic name", ErrInvalidTopic)
	}
	return nil
}
