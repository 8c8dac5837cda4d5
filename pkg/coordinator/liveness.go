package coordinator

import (
	"context"
	"time"

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
			if _, ok := watches[id]; !ok {
				wctx, stop := context.WithCancel(ctx)
				w := &brokerWatch{addr: b.Addr, startedAt: b.StartedAt, stop: stop, done: make(chan struct{})}
				watches[id] = w
				go func() {
					defer close(w.done)
					s.watchBroker(wctx, b)
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
// be made again, it dials b's address once more; when that dial is refused, nothing listens
// there any more — the process was killed — and the broker is evicted at
// once (meta.Store.EvictBroker) instead of waiting out its lease, so
// placement reassigns its partitions within milliseconds. A wrongly
// suspected broker only loses its partitions: each reassignment raises
// the epoch, which fences its commits. A broker this coordinator never
// reached (an address it cannot route to, a process already dead when it
// became leader) is left to its lease, so a wrong advertised address
// cannot make the leader evict a healthy broker over and over. It returns
// when ctx ends or after the eviction.
func (s *Server) watchBroker(ctx context.Context, b meta.BrokerInfo) {
	conn, err := rpc.Dial(b.Addr, rpc.WithTLS(s.cfg.TLS))
	if err != nil {
		s.log.Warn("liveness: cannot watch broker", "broker", b.ID, "addr", b.Addr, "err", err)
		return
	}
	defer conn.Close()
	conn.Connect()
	connected := false
	for st := conn.GetState(); ctx.Err() == nil; st = conn.GetState() {
		if st == connectivity.Ready {
			connected = true
			conn.WaitForStateChange(ctx, st)
			continue
		}
		if connected && st != connectivity.Connecting {
			if rpc.Refused(ctx, b.Addr, probeTimeout) {
				s.evict(ctx, b)
				return
			}
			conn.Connect()
		}
		// Not up: probe again after reprobeInterval even if the state
		// stays the same (gRPC stays in TRANSIENT_FAILURE across its
		// reconnect attempts), so one inconclusive probe is not the last.
		wctx, cancel := context.WithTimeout(ctx, reprobeInterval)
		conn.WaitForStateChange(wctx, st)
		cancel()
	}
}

// evict ends broker b's registration; the view's change then triggers a
// placement pass that reassigns its partitions.
func (s *Server) evict(ctx context.Context, b meta.BrokerInfo) {
	// The view shows the broker gone, and the loop cancels ctx, as soon
	// as etcd applied the revoke, possibly before its answer arrives:
	// finish the call (the store bounds it) so it is counted.
	ok, err := s.cfg.Meta.EvictBroker(context.WithoutCancel(ctx), b.ID, b.StartedAt)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("liveness: evicting a dead broker failed; its lease expires on its own", "broker", b.ID, "err", err)
		}
	case ok:
		s.metrics.evictions.Inc()
		s.log.Warn("liveness: broker refuses connections; evicted it before its lease ran out", "broker", b.ID, "addr", b.Addr)
	}
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
