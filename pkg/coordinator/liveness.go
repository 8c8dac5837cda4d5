package coordinator

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/connectivity"

	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// probeTimeout bounds the dial that confirms a broker is dead. Only a
// refused dial confirms it; a dial that times out (a frozen process, a
// lost network) proves nothing and leaves the broker to its lease.
const probeTimeout = 500 * time.Millisecond

// reprobeInterval is how often a broker whose connection is down is
// probed again while the connection stays down.
const reprobeInterval = 250 * time.Millisecond

// unreachable is the set of broker registrations the leader evicted because
// their address refused connections, kept until the leader reaches the
// broker again. A process that was killed never comes back under the same
// registration; one that is alive but cut off from the leader (and from
// proxies, which dial the same address) while it still reaches etcd
// registers again at once, with the same ID and start time. Placement must
// neither leave partitions with it nor give it any while it is cut off, or
// they would be unavailable for as long as the cut lasts.
type unreachable struct {
	mu sync.Mutex // guards m
	// m maps a broker ID to the start time of its evicted registration.
	m map[string]time.Time
	// changed wakes the placement loop after a mark or a clear.
	changed chan struct{}
	// marked is the number of marks (the unreachable_brokers gauge).
	marked prometheus.Gauge
}

func newUnreachable(marked prometheus.Gauge) *unreachable {
	return &unreachable{m: map[string]time.Time{}, changed: make(chan struct{}, 1), marked: marked}
}

// mark records b's registration as unreachable.
func (u *unreachable) mark(b meta.BrokerInfo) {
	u.mu.Lock()
	u.m[b.ID] = b.StartedAt
	u.marked.Set(float64(len(u.m)))
	u.mu.Unlock()
	u.wake()
}

// clear drops the mark of b's ID, if it has one: the leader reached the
// broker again.
func (u *unreachable) clear(b meta.BrokerInfo) { u.drop(b.ID, func(time.Time) bool { return true }) }

// replaced drops the mark of b's ID if it was another registration's: a new
// process (a new start time) took the ID over.
func (u *unreachable) replaced(b meta.BrokerInfo) {
	u.drop(b.ID, func(at time.Time) bool { return !at.Equal(b.StartedAt) })
}

func (u *unreachable) drop(id string, when func(startedAt time.Time) bool) {
	u.mu.Lock()
	at, ok := u.m[id]
	ok = ok && when(at)
	if ok {
		delete(u.m, id)
		u.marked.Set(float64(len(u.m)))
	}
	u.mu.Unlock()
	if ok {
		u.wake()
	}
}

// reachable returns brokers without the marked registrations.
func (u *unreachable) reachable(brokers []meta.BrokerInfo) []meta.BrokerInfo {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.m) == 0 {
		return brokers
	}
	out := make([]meta.BrokerInfo, 0, len(brokers))
	for _, b := range brokers {
		if at, ok := u.m[b.ID]; !ok || !at.Equal(b.StartedAt) {
			out = append(out, b)
		}
	}
	return out
}

func (u *unreachable) wake() {
	select {
	case u.changed <- struct{}{}:
	default:
	}
}

// brokerWatch is one broker process the leader holds a connection to.
type brokerWatch struct {
	addr      string
	startedAt time.Time
	stop      context.CancelFunc
	done      chan struct{}
}

// runLiveness watches every live broker while this coordinator leads and
// evicts one whose process is gone (see watchBroker). The returned
// channel closes once every watcher has stopped.
func (s *Server) runLiveness(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.livenessLoop(ctx)
	}()
	return done
}

// livenessLoop keeps one watcher per registered broker process (ID,
// address and start time), starting and stopping them as the view's
// broker list changes.
func (s *Server) livenessLoop(ctx context.Context) {
	select {
	case <-s.view.Ready():
	case <-ctx.Done():
		return
	}
	watches := map[string]*brokerWatch{}
	defer func() {
		for _, w := range watches {
			w.stop()
			<-w.done
		}
	}()
	for {
		changed := s.view.PlacementChanged()
		live := map[string]meta.BrokerInfo{}
		for _, b := range s.view.Brokers() {
			live[b.ID] = b
		}
		for id, w := range watches {
			b, ok := live[id]
			if !ok || b.Addr != w.addr || !b.StartedAt.Equal(w.startedAt) || isClosed(w.done) {
				w.stop()
				<-w.done
				delete(watches, id)
			}
		}
		for id, b := range live {
			s.unreachable.replaced(b)
			if _, ok := watches[id]; !ok {
				wctx, stop := context.WithCancel(ctx)
				w := &brokerWatch{addr: b.Addr, startedAt: b.StartedAt, stop: stop, done: make(chan struct{})}
				watches[id] = w
				go func() {
					defer close(w.done)
					s.watchBroker(wctx, ctx, b)
				}()
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// watchBroker holds a gRPC connection to broker b. Once that connection
// has been up, whenever it is lost (the peer closed or reset it) or cannot
// be made again, it dials b's address once more; when that dial is
// refused, nothing listens there any more — the process was killed, or it
// is cut off — and the broker is marked unreachable and evicted at once
// (meta.Store.EvictBroker) instead of waiting out its lease, so placement
// reassigns its partitions within milliseconds. A wrongly suspected broker
// only loses its partitions: each reassignment raises the epoch, which
// fences its commits; once the leader reaches it again the mark is
// cleared and placement may give it partitions again. A broker this
// coordinator never reached (an address it cannot route to, a process
// already dead when it became leader) is left to its lease, so a wrong
// advertised address cannot make the leader evict a healthy broker over
// and over. It returns when ctx ends or after the eviction. The eviction
// runs under leading, which outlives ctx (see evict).
func (s *Server) watchBroker(ctx, leading context.Context, b meta.BrokerInfo) {
	conn, err := rpc.Dial(b.Addr, rpc.WithTLS(s.cfg.TLS))
	if err != nil {
		s.log.Warn("liveness: cannot watch broker", "broker", b.ID, "addr", b.Addr, "err", err)
		return
	}
	defer conn.Close()
	conn.Connect()
	connected := false
	for st := conn.GetState(); ctx.Err() == nil; st = conn.GetState() {
		switch {
		case st == connectivity.Ready:
			connected = true
			s.unreachable.clear(b)
			conn.WaitForStateChange(ctx, st)
			continue
		case connected && st != connectivity.Connecting:
			if rpc.Refused(ctx, b.Addr, probeTimeout) && s.evict(ctx, leading, b) {
				return
			}
			conn.Connect()
		case st == connectivity.Idle:
			conn.Connect() // an idle channel does not reconnect on its own
		}
		// Not up: probe again after reprobeInterval even if the state
		// stays the same (gRPC stays in TRANSIENT_FAILURE across its
		// reconnect attempts), so one inconclusive probe is not the last.
		wctx, cancel := context.WithTimeout(ctx, reprobeInterval)
		conn.WaitForStateChange(wctx, st)
		cancel()
	}
}

// evict marks broker b unreachable and ends its registration; the mark and
// the view's change then trigger a placement pass that reassigns its
// partitions. It reports whether the watcher is done: false when etcd
// failed, so that the watcher probes and tries again (the mark alone
// already moves the partitions).
func (s *Server) evict(ctx, leading context.Context, b meta.BrokerInfo) bool {
	s.unreachable.mark(b)
	// The view shows the broker gone, and the loop cancels ctx, as soon
	// as etcd applied the revoke, possibly before its answer arrives:
	// finish the call under leading (the store bounds it) so it is
	// counted. Stepping down, or shutting down, ends it.
	ok, err := s.cfg.Meta.EvictBroker(leading, b.ID, b.StartedAt)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("liveness: evicting a broker that refuses connections failed; trying again", "broker", b.ID, "err", err)
		}
		return ctx.Err() != nil
	case ok:
		s.metrics.evictions.Inc()
		s.log.Warn("liveness: broker refuses connections; evicted it before its lease ran out", "broker", b.ID, "addr", b.Addr)
	}
	return true
}

// isClosed reports whether ch is closed (a watcher that evicted its
// broker has returned; the broker may have registered again since).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
