package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Retry backoff bounds: after a failed attempt a request waits for the
// route to change, but never longer than the current backoff, which doubles
// from minBackoff up to maxBackoff.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// ProduceResult is the outcome of a produce: the offsets the broker gave
// the first and the last record.
type ProduceResult struct {
	BaseOffset int64
	LastOffset int64
}

// Router sends produce requests to the broker that owns the partition and
// retries them across ownership changes. It knows nothing of the front end
// that called it: the gRPC service and a later Kafka listener share it.
type Router struct {
	view    *meta.View
	meta    *meta.Store
	pool    *connPool
	timeout time.Duration
	// forward bounds one attempt at an owner (Config.ForwardTimeout).
	forward time.Duration
	// forwards are the attempts in progress, cut off when their partition
	// moves (pruneLoop).
	forwards forwardSet
	// recent keeps acknowledged batches for tailing readers (Fetcher).
	recent  *recentBatches
	done    <-chan struct{} // closed when the server shuts down
	log     *slog.Logger
	metrics *metrics
}

// route is where a partition's produce goes: its owner, at which epoch, and
// the owner's address ("" when the partition has no live owner).
type route struct {
	broker string
	epoch  int64
	addr   string
}

// routeOf reads a partition's route from the view. ok is false when the
// topic no longer has the partition.
func (r *Router) routeOf(topicID string, partition int32) (route, bool) {
	st, ok := r.view.Partition(topicID, partition)
	if !ok {
		return route{}, false
	}
	rt := route{broker: st.Broker, epoch: st.Epoch}
	if st.Broker != "" {
		if b, ok := r.view.Broker(st.Broker); ok {
			rt.addr = b.Addr
		}
	}
	return rt, true
}

// Produce appends batches to a partition through its owner and returns the
// offsets they got. It validates the request, then retries retriable
// failures (NOT_OWNER, an unreachable or shutting-down broker, a partition
// without a live owner, an attempt cut off by ForwardTimeout or by the
// partition moving) whenever the partition's route changes, with a
// bounded backoff, until ctx's deadline — or ProduceTimeout when ctx has
// none. Other errors from the broker are returned as *apierr.Error, which
// keeps the broker's status.
//
// Every attempt sends the same bytes, so an idempotent producer's
// batches keep their producer id and sequences: an attempt whose outcome
// is unknown (cut off, or the connection lost) and that the old owner did
// commit is answered by the next owner with the original offsets, from
// the producer state the commit wrote to etcd. Batches without a producer
// id have no such protection: like a Kafka producer without idempotence,
// they are delivered at least once.
func (r *Router) Produce(ctx context.Context, topic string, partition int32, batches []byte) (ProduceResult, error) {
	r.metrics.produceInFlight.Inc()
	defer r.metrics.produceInFlight.Dec()
	t, err := lookupPartition(ctx, r.view, topic, partition)
	if err != nil {
		return ProduceResult{}, err
	}
	if len(batches) == 0 {
		return ProduceResult{}, apierr.Errorf(apierr.ErrInvalidRequest, "produce to %s/%d has no record batches", topic, partition)
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	req := &stratav1.ProduceRequest{Topic: topic, Partition: partition, Batches: batches}
	if key := (meta.PartitionID{TopicID: t.ID, Partition: partition}); r.recent.begin(key) {
		// Tail warms of this partition wait for the acknowledgement.
		defer r.recent.end(key)
	}
	var (
		retry *backoff.Backoff
		prev  route
	)
	for {
		changed := r.view.PlacementChanged()
		rt, ok := r.routeOf(t.ID, partition)
		if !ok {
			return ProduceResult{}, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q was deleted", topic)
		}
		if retry == nil || rt != prev {
			// A new owner starts from the shortest backoff: it refuses
			// only until its own view shows the move, milliseconds after
			// ours, and the backoff grown against the old owner (refusing
			// while it hands off) would hold the partition for a second.
			retry, prev = backoff.New(minBackoff, maxBackoff), rt
		}
		var lastErr error
		if rt.addr == "" {
			lastErr = apierr.Errorf(apierr.ErrNotOwner, "partition %s/%d has no live owner (broker %q, epoch %d)", topic, partition, rt.broker, rt.epoch)
		} else {
			resp, err := r.send(ctx, t.ID, rt, req)
			if err == nil {
				r.acknowledged(meta.PartitionID{TopicID: t.ID, Partition: partition}, resp, batches)
				return ProduceResult{BaseOffset: resp.BaseOffset, LastOffset: resp.LastOffset}, nil
			}
			if ctx.Err() != nil {
				return ProduceResult{}, r.gaveUp(ctx, topic, partition, err)
			}
			if !retriable(err) {
				return ProduceResult{}, err
			}
			lastErr = err
			r.log.Debug("produce: retrying", "topic", topic, "partition", partition, "broker", rt.broker, "err", err)
		}
		r.metrics.produceRetries.Inc()
		if errors.Is(lastErr, apierr.ErrNotOwner) {
			r.metrics.notOwner.Inc()
		}
		GoAlone(ctx) // its request's other parts go without waiting for this one
		if err := r.waitRoute(ctx, changed, t.ID, partition, rt, retry.Next()); err != nil {
			if errors.Is(err, apierr.ErrShuttingDown) {
				return ProduceResult{}, err
			}
			return ProduceResult{}, r.gaveUp(ctx, topic, partition, lastErr)
		}
	}
}

// acknowledged hands batches that their owner acknowledged, and so
// committed, to the fetch path when key has readers at its high
// watermark: it keeps them, then moves the view's high watermark past
// them, which wakes those readers before the commit's watch event comes.
func (r *Router) acknowledged(key meta.PartitionID, resp *stratav1.ProduceResponse, batches []byte) {
	if r.recent.add(key, resp.GetEpoch(), resp.GetBaseOffset(), resp.GetLastOffset(), batches) {
		r.view.Advance(key.TopicID, key.Partition, resp.GetLastOffset()+1, resp.GetLastStableOffset())
	}
}

// send makes one produce attempt at the owner of rt. The attempt ends at
// the forward timeout, or as soon as the partition's route differs from
// rt (pruneLoop cuts it off): a frozen owner then holds it only until the
// coordinator moves the partition, not until the client's deadline.
func (r *Router) send(ctx context.Context, topicID string, rt route, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	b, err := r.pool.get(rt.addr)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	actx, cancel := context.WithTimeout(ctx, r.forward)
	defer cancel()
	k, f := meta.PartitionID{TopicID: topicID, Partition: req.Partition}, &forwarding{rt: rt, cancel: cancel}
	r.forwards.add(k, f)
	defer r.forwards.remove(k, f)
	// A move between reading rt and registering f is not pruneLoop's to see.
	if cur, ok := r.routeOf(topicID, req.Partition); !ok || cur != rt {
		cancel()
	}
	resp, err := b.fwd.Produce(actx, req)
	return resp, apierr.FromStatus(err)
}

// forwardSet holds the forwards in progress per partition, with the route
// each went to, so that pruneLoop can cut off those whose partition moved.
// The zero value is ready to use.
type forwardSet struct {
	mu sync.Mutex // guards m
	m  map[meta.PartitionID]map[*forwarding]struct{}
}

// forwarding is one produce attempt in progress.
type forwarding struct {
	rt     route
	cancel context.CancelFunc
}

func (s *forwardSet) add(k meta.PartitionID, f *forwarding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[meta.PartitionID]map[*forwarding]struct{}{}
	}
	if s.m[k] == nil {
		s.m[k] = map[*forwarding]struct{}{}
	}
	s.m[k][f] = struct{}{}
}

func (s *forwardSet) remove(k meta.PartitionID, f *forwarding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m[k], f)
	if len(s.m[k]) == 0 {
		delete(s.m, k)
	}
}

// cutMoved cancels the forwards whose partition's route is no longer the
// one they went to (or whose topic is gone).
func (r *Router) cutMoved() {
	r.forwards.mu.Lock()
	defer r.forwards.mu.Unlock()
	for k, fs := range r.forwards.m {
		cur, ok := r.routeOf(k.TopicID, k.Partition)
		for f := range fs {
			if !ok || cur != f.rt {
				f.cancel()
				delete(fs, f)
			}
		}
		if len(fs) == 0 {
			delete(r.forwards.m, k)
		}
	}
}

// gaveUp turns the end of a request's time into its error: Canceled when
// the client went away, else a TIMEOUT that names the last failure.
func (r *Router) gaveUp(ctx context.Context, topic string, partition int32, last error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return apierr.Errorf(apierr.ErrTimeout, "produce to %s/%d: no owner accepted it before the deadline; last error: %v", topic, partition, last)
}

// waitRoute waits until the partition's route differs from failed, backoff
// passes, ctx ends (ctx.Err()) or the server shuts down (ErrShuttingDown).
// changed must be the view's PlacementChanged channel taken before failed
// was read.
func (r *Router) waitRoute(ctx context.Context, changed <-chan struct{}, topicID string, partition int32, failed route, backoff time.Duration) error {
	timer := time.NewTimer(backoff)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return apierr.Errorf(apierr.ErrShuttingDown, "proxy shutting down")
		case <-timer.C:
			return nil
		case <-changed:
			changed = r.view.PlacementChanged()
			if rt, ok := r.routeOf(topicID, partition); !ok || rt != failed {
				return nil
			}
		}
	}
}

// retriable reports whether a produce attempt that failed with err may
// succeed at the same or another owner. Besides apierr.Retriable it counts
// a Canceled status while the caller's context is live: the pool closed the
// connection because the broker left.
//
// OUT_OF_ORDER_SEQUENCE goes back to the producer at once: only the
// producer can resend the request that precedes it.
func retriable(err error) bool {
	if errors.Is(err, apierr.ErrOutOfOrderSequence) {
		return false
	}
	if apierr.Retriable(err) {
		return true
	}
	var e *apierr.Error
	return errors.As(err, &e) && e.Reason == "" && e.Code == codes.Canceled
}

// connPool holds one client connection per broker address, with the
// forwarder of the produces to it. Connections to addresses that no live
// broker has any more are closed by prune.
type connPool struct {
	opts []rpc.DialOption // TLS of broker connections

	mu     sync.Mutex // guards conns and closed
	conns  map[string]*brokerConn
	closed bool
}

// brokerConn is the connection to one broker and its produce forwarder.
type brokerConn struct {
	conn *grpc.ClientConn
	fwd  *forwarder
}

// close ends the forwarder's stream and closes the connection.
func (b *brokerConn) close() {
	b.fwd.close()
	_ = b.conn.Close()
}

func newConnPool(opts ...rpc.DialOption) *connPool {
	return &connPool{conns: map[string]*brokerConn{}, opts: opts}
}

// get returns the connection to addr, dialling it on first use.
func (p *connPool) get(addr string) (*brokerConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("proxy: connection pool closed")
	}
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := rpc.Dial(addr, p.opts...)
	if err != nil {
		return nil, err
	}
	b := &brokerConn{conn: c, fwd: newForwarder(c)}
	p.conns[addr] = b
	return b, nil
}

// prune closes the connections whose address is not in live.
func (p *connPool) prune(live map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		if !live[addr] {
			c.close()
			delete(p.conns, addr)
		}
	}
}

// close closes every connection; get fails afterwards.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.conns {
		c.close()
		delete(p.conns, addr)
	}
	p.closed = true
}

// pruneLoop closes connections to brokers that left the view and cuts
// off forwards whose partition moved, whenever the view's brokers or
// owners change, until ctx ends.
func (r *Router) pruneLoop(ctx context.Context) {
	for {
		ch := r.view.PlacementChanged()
		live := map[string]bool{}
		for _, b := range r.view.Brokers() {
			live[b.Addr] = true
		}
		r.pool.prune(live)
		r.cutMoved()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}
