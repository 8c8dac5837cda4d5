// Package broker is Strata's broker: a stateless server that owns the
// partitions placement gives it, assigns their offsets, batches produce
// requests of many partitions into one segment object per flush, PUTs the
// object, commits every partition's segment entry with the fencing
// transaction, and only then acknowledges.
//
// A Server learns what it owns from a meta.View: it owns partition p of a
// topic at epoch E while the partition state says Broker == its ID at E.
// Its membership is an etcd lease (meta.RegisterBroker); when the lease is
// lost it stops accepting produces until it has registered again.
//
// The flush pipeline keeps up to MaxInflightFlushes flushes in flight:
// their PUTs overlap, their commits apply strictly in flush order. See
// docs/broker.md.
//
// Lock order: Server.mu, then the View's own lock (the View never calls
// back into the Server).
package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/backoff"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Timeouts of the broker's own calls to etcd and the object store.
const (
	// storeTimeout bounds one flush's PUT (the store retries inside it).
	storeTimeout = 60 * time.Second
	// infoTimeout bounds publishing a change of the registration info.
	infoTimeout = 10 * time.Second
	// stopGrace bounds the gRPC server's graceful stop at the end of
	// Close. Every produce has been answered by then (the partitions are
	// released), but a proxy's ProduceStream stays open until the proxy
	// closes it, which a frozen proxy never does.
	stopGrace = 200 * time.Millisecond
	// reconcileEvery re-checks ownership even when the View is quiet, so a
	// partition dropped after an etcd error is picked up again (only then:
	// otherwise the owned partitions are what the last check left).
	reconcileEvery = time.Second
	// maxRegisterBackoff bounds the wait between registration attempts
	// after the lease was lost. An attempt while etcd is away already
	// waits out the request timeout; a longer backoff would only delay
	// the broker once etcd is back.
	maxRegisterBackoff = time.Second
)

// Server is a broker. Create it with New, then Start (or Run) it.
type Server struct {
	stratav1.UnimplementedBrokerServer

	cfg     Config
	id      string
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	view    *meta.View
	grpc    *rpc.Server

	ready     chan struct{}
	kick      chan struct{}  // cap 1: wakes the flusher
	recheck   chan struct{}  // cap 1: wakes the ownership loop
	stopFlush chan struct{}  // closed by Close: flush what is buffered and stop
	sem       chan struct{}  // one token per flush in flight
	putQ      chan *flush    // flushes cut, to the PUT workers
	putters   sync.WaitGroup // the PUT workers; the committer waits for them
	commitQ   chan *flush    // flushes in cut order, to the committer
	flushDone chan struct{}  // closed when the committer has finished

	// flushCtx bounds the flush pipeline's PUTs and commits; Close
	// cancels it (cutFlushes) at its ShutdownTimeout, or when it ends.
	flushCtx    context.Context
	cutFlushes  context.CancelFunc
	viewCancel  context.CancelFunc
	loopsCancel context.CancelFunc
	loops       sync.WaitGroup // ownership and membership loops
	metricsSrv  *http.Server
	closeOnce   sync.Once
	closeErr    error
	bytesIn     atomic.Int64 // batch bytes accepted, for the load report
	// admitting counts the produces between arrival and their place in
	// the buffer (or their refusal): an idle flusher waits for them, so
	// the requests of one proxy call are not split over two flushes.
	admitting atomic.Int32

	mu sync.Mutex // guards every field below
	// parts are the partitions this broker owns, by topic ID and number.
	parts map[meta.PartitionID]*partition
	// forgot is set when a partition left parts other than by reconcile
	// (dropLocked), so that the next periodic ownership check runs.
	forgot bool
	// dirty lists the partitions with buffered produces, oldest first.
	dirty []*partition
	// bufBytes counts the buffered batch bytes of all partitions.
	bufBytes int
	// room is closed and replaced whenever buffered bytes shrink; produces
	// waiting for buffer room wait on it.
	room chan struct{}
	// settled is closed and replaced whenever a partition's buffered or
	// in-flight produces are answered; hand-offs wait on it.
	settled chan struct{}
	// firstAt is when the oldest buffered batch arrived; zero if none.
	firstAt time.Time
	// seq numbers flushes (in object keys).
	seq uint64
	// member is true while the broker's registration is live.
	member bool
	// registration is the current membership lease, if any.
	registration *meta.Registration
	// startCalled, started and closing track the lifecycle: Start was
	// called, Start succeeded, Close was called.
	startCalled, started, closing bool
	// addr is the actual listen address, set by Start.
	addr string
	// lastStorageErr and lastStorageErrAt are the last storage error
	// published in the registration (noteStorageError).
	lastStorageErr   string
	lastStorageErrAt time.Time
}

// New checks cfg and returns a Server that is not started yet.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = defaultID()
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	log := cfg.Logger.With("component", "broker", "broker", cfg.ID)
	// Only Strata's servers may call a broker (auth.BrokerCallers).
	guard, err := auth.NewServerGuard(auth.ServerGuardConfig{TLS: cfg.TLS, Callers: auth.BrokerCallers, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		id:        cfg.ID,
		log:       log,
		reg:       reg,
		metrics:   newMetrics(reg),
		view:      meta.NewView(cfg.Meta),
		grpc:      rpc.NewServer(log, append(guard.ServerOptions(), rpc.WithServerTLS(cfg.TLS), rpc.WithReadBufferBytes(rpc.BulkBufferBytes))...),
		ready:     make(chan struct{}),
		kick:      make(chan struct{}, 1),
		recheck:   make(chan struct{}, 1),
		stopFlush: make(chan struct{}),
		sem:       make(chan struct{}, cfg.MaxInflightFlushes),
		putQ:      make(chan *flush, cfg.MaxInflightFlushes),
		commitQ:   make(chan *flush, cfg.MaxInflightFlushes),
		flushDone: make(chan struct{}),
		parts:     map[meta.PartitionID]*partition{},
		room:      make(chan struct{}),
		settled:   make(chan struct{}),
	}
	s.flushCtx, s.cutFlushes = context.WithCancel(context.Background())
	stratav1.RegisterBrokerServer(s.grpc.Server, s)
	return s, nil
}

// ID returns the broker's ID.
func (s *Server) ID() string { return s.id }

// Addr returns the address the gRPC server listens on; empty before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Ready is closed once the broker is registered, knows what it owns and
// serves.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Start listens, loads the metadata view, registers the broker and serves
// in the background. ctx bounds only the start-up; Close stops the Server.
// Start and Close must not run concurrently.
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	if s.startCalled || s.closing {
		s.mu.Unlock()
		return errors.New("broker: already started or closed")
	}
	s.startCalled = true
	s.mu.Unlock()

	lis, err := rpc.Listen(s.cfg.ListenAddr)
	if err != nil {
		return err
	}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	cleanup = append(cleanup, func() { lis.Close() })
	addr := lis.Addr().String()
	advertise := s.cfg.AdvertiseAddr
	if advertise == "" {
		advertise = rpc.AdvertiseAddr(addr)
	}

	var viewCtx context.Context
	viewCtx, s.viewCancel = context.WithCancel(context.Background())
	cleanup = append(cleanup, s.viewCancel)
	s.view.Start(viewCtx)
	select {
	case <-s.view.Ready():
	case <-ctx.Done():
		return fmt.Errorf("broker: waiting for the metadata view: %w", ctx.Err())
	}

	info := meta.BrokerInfo{ID: s.id, Addr: advertise, Zone: s.cfg.Zone, StartedAt: time.Now().UTC()}
	r, err := s.registerAtStart(ctx, info)
	if err != nil {
		return fmt.Errorf("broker: register: %w", err)
	}
	cleanup = append(cleanup, func() { _ = r.Close(context.Background()) })
	if err := s.fencePredecessor(ctx); err != nil {
		return fmt.Errorf("broker: fence the previous process of %s: %w", s.id, err)
	}

	if err := s.serveMetrics(); err != nil {
		return err
	}

	s.mu.Lock()
	s.addr, s.member, s.registration, s.started = addr, true, r, true
	s.mu.Unlock()

	s.startLoops(r)
	go func() {
		if err := s.grpc.Serve(lis); err != nil {
			s.log.Error("grpc server failed", "err", err)
		}
	}()
	s.grpc.SetServing(true)
	close(s.ready)
	s.log.Info("broker started", "addr", addr, "advertise", advertise, "zone", s.cfg.Zone)
	return nil
}

// serveMetrics serves /metrics on MetricsAddr in the background, if set;
// Close shuts the server down.
func (s *Server) serveMetrics() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ml, err := rpc.ListenMetrics(s.cfg.MetricsAddr, s.cfg.TLS)
	if err != nil {
		return err
	}
	s.metricsSrv = rpc.MetricsServer(s.reg)
	s.log.Info("serving metrics", "addr", "http://"+ml.Addr().String()+"/metrics")
	go func() {
		if err := s.metricsSrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server failed", "err", err)
		}
	}()
	return nil
}

// startLoops takes the partitions assigned already, then starts the
// background loops: ownership, membership and load reports (stopped by
// loopsCancel, awaited through loops) and the flush pipeline with its PUT
// workers (startFlushing; stopped by closing stopFlush).
func (s *Server) startLoops(r *meta.Registration) {
	loopsCtx, cancel := context.WithCancel(context.Background())
	s.loopsCancel = cancel
	s.reconcile() // own what is assigned already before saying Ready
	s.loops.Add(3)
	go s.ownershipLoop(loopsCtx)
	go s.membershipLoop(loopsCtx, r)
	go s.loadLoop(loopsCtx)
	s.startFlushing()
}

// registerAtStart registers the broker. While a live registration holds
// its ID — the lease of this broker's previous process, killed without
// deregistering, which etcd expires within LeaseTTL — it takes the
// registration over if that process is certainly gone (predecessorGone),
// and otherwise tries again until ctx ends, so a broker restarted with a
// fixed ID comes back on its own.
func (s *Server) registerAtStart(ctx context.Context, info meta.BrokerInfo) (*meta.Registration, error) {
	if s.cfg.ReplaceRegistration {
		return s.cfg.Meta.ReplaceBroker(ctx, info, s.cfg.LeaseTTL)
	}
	// Capped at 1 s: the old lease expires within LeaseTTL, and the broker
	// should come back right after.
	retry := backoff.New(100*time.Millisecond, maxRegisterBackoff)
	for logged := false; ; {
		r, err := s.cfg.Meta.RegisterBroker(ctx, info, s.cfg.LeaseTTL)
		if err == nil || !errors.Is(err, meta.ErrBrokerExists) {
			return r, err
		}
		if s.predecessorGone(ctx, info.Addr) {
			s.log.Info("broker id still registered by a process that is gone; taking the registration over")
			return s.cfg.Meta.ReplaceBroker(ctx, info, s.cfg.LeaseTTL)
		}
		if !logged {
			s.log.Warn("broker id still registered (a previous process's lease?); waiting for it to expire", "lease_ttl", s.cfg.LeaseTTL)
			logged = true
		}
		if werr := retry.Wait(ctx); werr != nil {
			return nil, fmt.Errorf("%w (waited for the old registration: %w)", err, werr)
		}
	}
}

// predecessorGone reports whether the live registration of this broker's
// ID belongs to a process that is certainly gone, so that waiting out its
// lease would only delay the restart: it names this process's own
// address, on which this process already listens, or nothing listens at
// its address (the dial is refused). A frozen process still has its
// connections accepted, and an unreachable host answers nothing: those
// are left to their lease. Either way fencePredecessor then bumps the
// epochs, so a wrong guess costs the old process its partitions, never
// data.
func (s *Server) predecessorGone(ctx context.Context, own string) bool {
	b, ok := s.view.Broker(s.id)
	if !ok {
		return false // the view has not shown it yet; try again
	}
	return b.Addr == own || rpc.Refused(ctx, b.Addr, predecessorProbeTimeout)
}

// predecessorProbeTimeout bounds the dial to a predecessor's address; only
// a refusal counts, so a short bound loses nothing.
const predecessorProbeTimeout = 500 * time.Millisecond

// fencePredecessor bumps the epoch of every partition that etcd still
// assigns to this broker's ID — a previous process with the same ID that
// was killed, or lost its lease, before releasing them — keeping the owner.
// The previous process commits at the old epoch, so the fencing commit
// refuses it from now on, while this process takes the partitions at once
// (read from etcd, not the View, so that none assigned just before the
// registration is missed).
func (s *Server) fencePredecessor(ctx context.Context) error {
	parts, _, err := s.cfg.Meta.ListPartitions(ctx)
	if err != nil {
		return err
	}
	var as []meta.Assignment
	for _, st := range parts {
		if st.Broker == s.id {
			as = append(as, meta.Assignment{Prev: st, Broker: s.id})
		}
	}
	if len(as) == 0 {
		return nil
	}
	// In batches: thousands of partitions at one transaction each took
	// seconds before the broker served any of them.
	next, errs := s.cfg.Meta.AssignPartitions(ctx, as)
	bumped := make(map[meta.PartitionID]int64, len(as))
	for i, err := range errs {
		if errors.Is(err, meta.ErrConflict) {
			continue // moved meanwhile: whoever moved it bumped the epoch
		}
		if err != nil {
			return err
		}
		bumped[meta.PartitionID{TopicID: next[i].TopicID, Partition: next[i].Partition}] = next[i].Epoch
	}
	if len(bumped) == 0 {
		return nil
	}
	s.log.Info("took back the partitions of this broker id's previous process at a new epoch", "partitions", len(bumped))
	return s.awaitEpochs(ctx, bumped)
}

// awaitEpochs waits until the View shows each partition at its epoch in
// want or later, so that the first reconcile does not adopt an old one. A
// partition of a topic the View does not have (deleted; its state left by
// an assignment that raced the delete) is nothing reconcile could adopt,
// and the View never shows it: it is not waited for.
func (s *Server) awaitEpochs(ctx context.Context, want map[meta.PartitionID]int64) error {
	for {
		ch := s.view.OwnersChanged()
		caughtUp := true
		for k, epoch := range want {
			if st, ok := s.view.Partition(k.TopicID, k.Partition); ok && st.Epoch < epoch {
				caughtUp = false
				break
			}
		}
		if caughtUp {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run starts the Server, waits for ctx to end and closes it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return s.Close()
}

// Close shuts the broker down gracefully: it refuses new produces, flushes
// and commits what is buffered, waits for the flushes in flight, releases
// its partitions (epoch+1, no owner) so the coordinator reassigns them at
// once, ends its registration and stops the gRPC server.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.mu.Lock()
	s.closing = true
	started := s.started
	s.mu.Unlock()
	if !started {
		s.grpc.Stop() // never served (or Start failed); its stream workers run from New on
		s.cutFlushes()
		return nil
	}
	s.grpc.SetServing(false)
	start := time.Now()
	// Everything below is bounded by ShutdownTimeout: at the deadline the
	// flushes still running are cut, and the etcd calls give up.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	context.AfterFunc(ctx, s.cutFlushes)
	// Tell placement to give this broker nothing new while it drains —
	// meanwhile, flush and commit everything buffered (produces waiting on
	// it are answered); the partitions are refused either way.
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		if err := s.updateInfo(ctx, func(i *meta.BrokerInfo) { i.Draining = true }); err != nil {
			s.log.Warn("cannot mark the broker draining", "err", err)
		}
	}()
	close(s.stopFlush)
	<-s.flushDone
	<-marked
	s.log.Debug("close: flushed and committed", "after", time.Since(start))

	// Stop following ownership and membership, then give every partition
	// away.
	s.loopsCancel()
	s.loops.Wait()
	released := s.releaseAll(ctx)
	s.log.Debug("close: partitions handed off", "after", time.Since(start))
	errs := s.deregister(ctx)
	s.viewCancel()
	s.view.Wait()
	s.log.Debug("close: deregistered", "after", time.Since(start))
	if s.grpc.StopWithin(stopGrace) {
		s.log.Debug("close: cut the connections still open (proxies' produce streams)")
	}
	if s.metricsSrv != nil {
		_ = rpc.StopMetricsServer(s.metricsSrv, stopGrace)
	}
	s.log.Info("broker stopped", "released_partitions", released, "took", time.Since(start))
	return errors.Join(errs...)
}

// deregister ends the broker's registration, so placement stops counting
// it at once rather than when the lease expires.
func (s *Server) deregister(ctx context.Context) []error {
	s.mu.Lock()
	r := s.registration
	s.registration, s.member = nil, false
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	if err := r.Close(ctx); err != nil {
		return []error{fmt.Errorf("broker: deregister: %w", err)}
	}
	return nil
}

// releaseAll hands every partition the metadata shows this broker owning
// straight to the live broker with the fewest partitions (handoffTargets;
// no owner when there is none), in batched transactions (handOff), and
// returns how many it moved.
func (s *Server) releaseAll(ctx context.Context) int {
	keys := s.ownedKeys()
	s.mu.Lock()
	for _, p := range s.parts {
		s.dropLocked(p, apierr.Errorf(apierr.ErrShuttingDown, "broker %s is shutting down", s.id))
	}
	s.mu.Unlock()
	moved, err := s.handOff(ctx, keys, s.handoffTargets().next)
	if err != nil {
		s.log.Warn("release: some partitions were not handed off; their leases expire with this broker's", "err", err)
	}
	return len(moved)
}

// ownershipLoop keeps the owned partitions in step with the View.
func (s *Server) ownershipLoop(ctx context.Context) {
	defer s.loops.Done()
	t := time.NewTicker(reconcileEvery)
	defer t.Stop()
	for {
		ch := s.view.OwnersChanged()
		s.reconcile()
		for quiet := true; quiet; {
			select {
			case <-ch:
				quiet = false
			case <-t.C:
				// With the owners unchanged, only a partition forgotten
				// since (dropLocked) can differ from what the View assigns;
				// a check would copy thousands of states to find nothing.
				s.mu.Lock()
				quiet = !s.forgot
				s.mu.Unlock()
			case <-s.recheck:
				quiet = false
			case <-ctx.Done():
				return
			}
		}
	}
}

// reconcile takes on the partitions the View assigns to this broker and
// drops the ones it no longer assigns (other broker or epoch, or topic
// deleted), failing their pending produces with NOT_OWNER.
func (s *Server) reconcile() {
	owned := s.view.PartitionsOf(s.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.member {
		return
	}
	mine := make(map[meta.PartitionID]meta.PartitionState, len(owned))
	for _, st := range owned {
		k := meta.PartitionID{TopicID: st.TopicID, Partition: st.Partition}
		mine[k] = st
		if p := s.parts[k]; p != nil && p.epoch == st.Epoch {
			continue
		} else if p != nil {
			s.dropLocked(p, apierr.Errorf(apierr.ErrNotOwner, "%s/%d moved to epoch %d", k.TopicID, k.Partition, st.Epoch))
		}
		s.parts[k] = newPartition(k, st)
		s.log.Info("owning partition", "topic_id", k.TopicID, "partition", k.Partition, "epoch", st.Epoch, "next_offset", st.NextOffset)
	}
	for k, p := range s.parts {
		if _, ok := mine[k]; !ok {
			cur, _ := s.view.Partition(k.TopicID, k.Partition)
			s.dropLocked(p, apierr.Errorf(apierr.ErrNotOwner, "%s/%d is at broker %q epoch %d", k.TopicID, k.Partition, cur.Broker, cur.Epoch))
			s.log.Info("lost partition", "topic_id", k.TopicID, "partition", k.Partition, "epoch", p.epoch, "now_broker", cur.Broker, "now_epoch", cur.Epoch)
		}
	}
	s.forgot = false // parts is what the View assigns
	s.metrics.owned.Set(float64(len(s.parts)))
}

// membershipLoop watches the registration; when its lease is lost the
// broker stops owning anything and registers again with bounded backoff,
// taking over its own old registration if etcd kept it (meta.RegisterAgain):
// after an etcd restart that lease lives on for a fresh TTL.
func (s *Server) membershipLoop(ctx context.Context, r *meta.Registration) {
	defer s.loops.Done()
	for {
		select {
		case <-r.Done():
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("broker lease lost; refusing produces until registered again")
		s.mu.Lock()
		s.member = false
		for _, p := range s.parts {
			s.dropLocked(p, apierr.Errorf(apierr.ErrNotOwner, "broker %s lost its membership lease", s.id))
		}
		s.metrics.owned.Set(0)
		s.mu.Unlock()

		retry := backoff.New(100*time.Millisecond, maxRegisterBackoff)
		for {
			nr, err := s.cfg.Meta.RegisterAgain(ctx, r, s.cfg.LeaseTTL)
			if err == nil {
				r = nr
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := retry.Next()
			s.log.Warn("register again failed", "err", err, "retry_in", wait)
			if backoff.Sleep(ctx, wait) != nil {
				return
			}
		}
		s.mu.Lock()
		s.registration, s.member = r, true
		s.mu.Unlock()
		s.log.Info("broker registered again")
		select {
		case s.recheck <- struct{}{}:
		default:
		}
	}
}

// loadLoop publishes the broker's bytes-in rate, and that of its busiest
// partitions, in its registration every LoadReportInterval, for placement.
func (s *Server) loadLoop(ctx context.Context) {
	defer s.loops.Done()
	t := time.NewTicker(s.cfg.LoadReportInterval)
	defer t.Stop()
	last, lastAt := s.bytesIn.Load(), time.Now()
	lastPart := s.partitionBytes()
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		n, parts := s.bytesIn.Load(), s.partitionBytes()
		secs := now.Sub(lastAt).Seconds()
		rate, hot := float64(n-last)/secs, hotPartitions(lastPart, parts, secs)
		last, lastAt, lastPart = n, now, parts
		if err := s.updateInfo(ctx, func(i *meta.BrokerInfo) { i.BytesInPerSec, i.HotPartitions = rate, hot }); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot publish load", "err", err)
		}
	}
}

// partitionBytes returns the bytes accepted so far by each owned partition.
func (s *Server) partitionBytes() map[meta.PartitionID]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[meta.PartitionID]int64, len(s.parts))
	for k, p := range s.parts {
		out[k] = p.bytesIn
	}
	return out
}

// hotPartitions returns the meta.MaxHotPartitions partitions with the
// highest rate between the counts before and now, secs apart, busiest
// first. A partition taken anew since (its count restarted) counts from 0.
func hotPartitions(before, now map[meta.PartitionID]int64, secs float64) []meta.PartitionLoad {
	var out []meta.PartitionLoad
	for k, n := range now {
		d := n - before[k]
		if d < 0 {
			d = n
		}
		if d > 0 {
			out = append(out, meta.PartitionLoad{TopicID: k.TopicID, Partition: k.Partition, BytesInPerSec: float64(d) / secs})
		}
	}
	slices.SortFunc(out, func(a, b meta.PartitionLoad) int {
		return cmp.Or(cmp.Compare(b.BytesInPerSec, a.BytesInPerSec), cmp.Compare(a.TopicID, b.TopicID), cmp.Compare(a.Partition, b.Partition))
	})
	return out[:min(len(out), meta.MaxHotPartitions)]
}

// noteStorageError publishes err as the broker's last storage error in its
// registration, for strata cluster status. It runs in the background (the
// flush path must not wait for etcd) and skips an error equal to the one
// published less than a second ago, so a failing store does not turn into
// a stream of etcd writes.
func (s *Server) noteStorageError(err error) {
	msg, now := err.Error(), time.Now().UTC()
	s.mu.Lock()
	if msg == s.lastStorageErr && now.Sub(s.lastStorageErrAt) < time.Second {
		s.mu.Unlock()
		return
	}
	s.lastStorageErr, s.lastStorageErrAt = msg, now
	s.mu.Unlock()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		ctx, cancel := context.WithTimeout(s.flushCtx, infoTimeout)
		defer cancel()
		if err := s.updateInfo(ctx, func(i *meta.BrokerInfo) { i.LastStorageError, i.LastStorageErrorAt = msg, now }); err != nil {
			s.log.Warn("cannot publish the last storage error", "err", err)
		}
	}()
}

// updateInfo changes the published registration info, if registered.
func (s *Server) updateInfo(ctx context.Context, change func(*meta.BrokerInfo)) error {
	s.mu.Lock()
	r, member := s.registration, s.member
	s.mu.Unlock()
	if r == nil || !member {
		return nil
	}
	info := r.Info()
	change(&info)
	return r.Update(ctx, info)
}
