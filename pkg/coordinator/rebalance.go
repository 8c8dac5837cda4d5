package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/metric"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/rpc"
)

// Defaults of the rebalancing settings in Config.
const (
	// DefaultRebalanceInterval is the least time between two rounds of
	// partition moves between healthy brokers.
	DefaultRebalanceInterval = time.Second
	// DefaultRebalanceMaxMoves bounds the partitions one round moves.
	DefaultRebalanceMaxMoves = 8
	// DefaultLoadRebalanceInterval is the least time between moves made
	// for bytes-in (rather than partition count). It spans several load
	// reports, so a move's effect is measured before the next one.
	DefaultLoadRebalanceInterval = 30 * time.Second
	// DefaultDrainTimeout is how long placement leaves the partitions of a
	// live broker marked draining to the broker's own hand-off before it
	// moves them with a plain epoch bump.
	DefaultDrainTimeout = 15 * time.Second
)

// Load-balancing thresholds (damping, so partitions do not flap).
const (
	// loadImbalance: load moves start when the busiest broker's bytes-in
	// exceeds the mean by more than this fraction, and stop below it.
	loadImbalance = 0.25
	// loadMinGain: a load move must lower the higher rate of the two
	// brokers it involves by at least this fraction of the mean, so that
	// rate noise moves nothing.
	loadMinGain = 0.02
	// minLoadBytesPerSec: below this total rate load is noise.
	minLoadBytesPerSec = 1 << 20
	// handoffTimeout bounds one ReleasePartitions call.
	handoffTimeout = 10 * time.Second
)

func (c *Config) setRebalanceDefaults() {
	if c.RebalanceInterval == 0 {
		c.RebalanceInterval = DefaultRebalanceInterval
	}
	if c.RebalanceMaxMoves == 0 {
		c.RebalanceMaxMoves = DefaultRebalanceMaxMoves
	}
	if c.LoadRebalanceInterval == 0 {
		c.LoadRebalanceInterval = DefaultLoadRebalanceInterval
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
}

func (c Config) validateRebalance() error {
	switch {
	case c.RebalanceInterval < 0:
		return fmt.Errorf("coordinator: config: RebalanceInterval %v is negative", c.RebalanceInterval)
	case c.LoadRebalanceInterval < 0:
		return fmt.Errorf("coordinator: config: LoadRebalanceInterval %v is negative", c.LoadRebalanceInterval)
	case c.DrainTimeout < 0:
		return fmt.Errorf("coordinator: config: DrainTimeout %v is negative", c.DrainTimeout)
	case c.RebalanceMaxMoves < -1 || c.RebalanceMaxMoves > 1024:
		return fmt.Errorf("coordinator: config: RebalanceMaxMoves %d, want -1 (off) or 1..1024", c.RebalanceMaxMoves)
	}
	return nil
}

// move is one planned hand-off of a healthy partition.
type move struct {
	From   meta.PartitionState
	To     string
	ByLoad bool
}

// planRebalance plans up to maxMoves moves of partitions between eligible
// (live, not draining) brokers; partitions on other owners are left to
// placeOrphans. The result is deterministic.
//
// First by count: while the broker with the most partitions has at least
// two more than the one with the fewest, one partition (its least busy)
// moves from the first to the second; among brokers with equal counts the
// one with the highest bytes-in gives and the one with the lowest takes.
// This gives a new broker its fair share. Once the total rate is at least
// minLoadBytesPerSec, a count move that would leave the taker busier than
// the giver is not made: load wins over counts.
//
// Then, only if no count move was planned and byLoad is set, by bytes-in
// (balance.loadMoves): while the busiest broker exceeds the mean by more
// than loadImbalance, a partition of it moves to the least busy broker,
// or is swapped with a quieter partition of it, whichever lowers the
// busier of the two most. Partition rates come from the brokers' reports
// (meta.BrokerInfo.HotPartitions); a broker's unreported partitions share
// the rest of its rate evenly.
func planRebalance(parts []meta.PartitionState, brokers []meta.BrokerInfo, maxMoves int, byLoad bool) []move {
	if maxMoves < 1 {
		return nil
	}
	b := newBalance(parts, brokers)
	if b == nil {
		return nil
	}
	var out []move
	for len(out) < maxMoves {
		from, to := b.most(), b.fewest()
		if len(b.owned[from])-len(b.owned[to]) < 2 {
			break
		}
		i := b.coolest(from)
		if r := b.prate[partitionID(b.owned[from][i])]; b.loaded() && b.rate[to]+r > b.rate[from]-r {
			break
		}
		out = append(out, b.take(from, to, i, false))
	}
	if len(out) > 0 || !byLoad {
		return out
	}
	return b.loadMoves(maxMoves)
}

// unbalanced reports whether planRebalance could plan a move, from the
// owner counts and the brokers' rates alone: a count move needs two
// eligible brokers whose counts differ by two or more; a load move needs
// byLoad, a total rate of at least minLoadBytesPerSec and a broker above
// the mean by more than loadImbalance. When it returns false,
// planRebalance returns nothing, and reading every partition to learn
// that is what it spares.
func unbalanced(counts map[string]int, brokers []meta.BrokerInfo, byLoad bool) bool {
	var (
		eligible       int
		least, most    = math.MaxInt, -1
		total, hottest float64
	)
	for _, b := range brokers {
		if b.Draining {
			continue
		}
		eligible++
		least, most = min(least, counts[b.ID]), max(most, counts[b.ID])
		total += b.BytesInPerSec
		hottest = max(hottest, b.BytesInPerSec)
	}
	switch {
	case eligible < 2:
		return false
	case most-least >= 2:
		return true
	}
	return byLoad && total >= minLoadBytesPerSec && hottest > (1+loadImbalance)*total/float64(eligible)
}

// partitionID names a partition in balance.
func partitionID(p meta.PartitionState) meta.PartitionID {
	return meta.PartitionID{TopicID: p.TopicID, Partition: p.Partition}
}

// balance is planRebalance's working copy of who owns what: the eligible
// (not draining) brokers, their partitions and bytes-in rates, and each
// partition's estimated rate, updated as moves are planned.
type balance struct {
	eligible []string // sorted broker IDs
	rate     map[string]float64
	owned    map[string][]meta.PartitionState // sorted by topic ID, partition
	prate    map[meta.PartitionID]float64
}

// newBalance returns the balance of parts over brokers, or nil when fewer
// than two brokers are eligible (nothing to balance).
func newBalance(parts []meta.PartitionState, brokers []meta.BrokerInfo) *balance {
	b := &balance{rate: map[string]float64{}, owned: map[string][]meta.PartitionState{}, prate: map[meta.PartitionID]float64{}}
	reported := map[string]map[meta.PartitionID]float64{}
	for _, br := range brokers {
		if !br.Draining {
			b.eligible = append(b.eligible, br.ID)
			b.rate[br.ID] = br.BytesInPerSec
			reported[br.ID] = map[meta.PartitionID]float64{}
			for _, pl := range br.HotPartitions {
				reported[br.ID][meta.PartitionID{TopicID: pl.TopicID, Partition: pl.Partition}] = pl.BytesInPerSec
			}
		}
	}
	if len(b.eligible) < 2 {
		return nil
	}
	slices.Sort(b.eligible)
	for _, p := range parts {
		if _, ok := b.rate[p.Broker]; ok {
			b.owned[p.Broker] = append(b.owned[p.Broker], p)
		}
	}
	for id, ps := range b.owned {
		slices.SortFunc(ps, func(x, y meta.PartitionState) int {
			return cmp.Or(cmp.Compare(x.TopicID, y.TopicID), cmp.Compare(x.Partition, y.Partition))
		})
		b.estimate(id, reported[id])
	}
	return b
}

// estimate sets the rate of each partition of broker id: reported ones
// as reported, the others an even share of what is left of its rate.
func (b *balance) estimate(id string, reported map[meta.PartitionID]float64) {
	rest, others := b.rate[id], 0
	for _, p := range b.owned[id] {
		if r, ok := reported[partitionID(p)]; ok {
			b.prate[partitionID(p)] = r
			rest -= r
		} else {
			others++
		}
	}
	for _, p := range b.owned[id] {
		if _, ok := reported[partitionID(p)]; !ok {
			b.prate[partitionID(p)] = max(rest, 0) / float64(others)
		}
	}
}

// loaded reports whether the brokers' rates are high enough to matter.
func (b *balance) loaded() bool {
	total := 0.0
	for _, id := range b.eligible {
		total += b.rate[id]
	}
	return total >= minLoadBytesPerSec
}

// most is the broker that should give a partition: the most partitions,
// then the highest rate.
func (b *balance) most() string {
	best := b.eligible[0]
	for _, id := range b.eligible[1:] {
		if n, m := len(b.owned[id]), len(b.owned[best]); n > m || (n == m && b.rate[id] > b.rate[best]) {
			best = id
		}
	}
	return best
}

// fewest is the broker that should take one: the fewest partitions, then
// the lowest rate.
func (b *balance) fewest() string {
	best := b.eligible[0]
	for _, id := range b.eligible[1:] {
		if n, m := len(b.owned[id]), len(b.owned[best]); n < m || (n == m && b.rate[id] < b.rate[best]) {
			best = id
		}
	}
	return best
}

// coolest is the index of broker id's least busy partition (the last
// one among equals).
func (b *balance) coolest(id string) int {
	ps := b.owned[id]
	best := len(ps) - 1
	for i := len(ps) - 2; i >= 0; i-- {
		if b.prate[partitionID(ps[i])] < b.prate[partitionID(ps[best])] {
			best = i
		}
	}
	return best
}

// take plans moving from's i-th partition to to, with its rate.
func (b *balance) take(from, to string, i int, byLoad bool) move {
	p := b.owned[from][i]
	b.owned[from] = slices.Delete(b.owned[from], i, i+1)
	j, _ := slices.BinarySearchFunc(b.owned[to], p, func(x, y meta.PartitionState) int {
		return cmp.Or(cmp.Compare(x.TopicID, y.TopicID), cmp.Compare(x.Partition, y.Partition))
	})
	b.owned[to] = slices.Insert(b.owned[to], j, p)
	r := b.prate[partitionID(p)]
	b.rate[from] -= r
	b.rate[to] += r
	return move{From: p, To: to, ByLoad: byLoad}
}

// extremes returns the busiest and least busy brokers and the mean rate.
func (b *balance) extremes() (hot, cold string, mean float64) {
	hot, cold = b.eligible[0], b.eligible[0]
	for _, id := range b.eligible {
		mean += b.rate[id]
		if b.rate[id] > b.rate[hot] {
			hot = id
		}
		if b.rate[id] < b.rate[cold] {
			cold = id
		}
	}
	return hot, cold, mean / float64(len(b.eligible))
}

// loadMoves plans up to maxMoves moves while the busiest broker exceeds
// the mean by more than loadImbalance: each moves one of its partitions
// to the least busy broker, or swaps it with a quieter one of that
// broker's, choosing what leaves the busier of the two lowest, and only
// if that is lower by at least loadMinGain of the mean.
func (b *balance) loadMoves(maxMoves int) []move {
	var out []move
	for len(out) < maxMoves && b.loaded() {
		hot, cold, mean := b.extremes()
		h := b.rate[hot]
		if h <= (1+loadImbalance)*mean {
			break
		}
		bestI, bestJ := b.bestLoadMove(hot, cold, h-loadMinGain*mean, len(out)+2 <= maxMoves)
		if bestI < 0 {
			break
		}
		var q meta.PartitionState
		if bestJ >= 0 {
			q = b.owned[cold][bestJ]
		}
		out = append(out, b.take(hot, cold, bestI, true))
		if bestJ >= 0 {
			j := slices.IndexFunc(b.owned[cold], func(x meta.PartitionState) bool { return partitionID(x) == partitionID(q) })
			out = append(out, b.take(cold, hot, j, true))
		}
	}
	return out
}

// bestLoadMove returns the partition i of hot to move to cold and,
// if swaps allows and it is better, the quieter partition j of cold to
// move back (-1: none) that leave max(rate of hot, rate of cold) lowest,
// if below limit; i is -1 if no move gets there. Among equals it takes
// the highest i, a plain move before a swap, then the highest j.
//
// Each partition of hot is looked at once, its best swap partner found
// by a binary search of cold's rates (swapPartner): trying every pair
// cost 6 million map lookups per move with 2,500 partitions a broker.
func (b *balance) bestLoadMove(hot, cold string, limit float64, swaps bool) (bestI, bestJ int) {
	h, c := b.rate[hot], b.rate[cold]
	bestI, bestJ = -1, -1
	var partners []ratedPart
	if swaps {
		partners = b.byRate(cold)
	}
	for i := len(b.owned[hot]) - 1; i >= 0; i-- {
		rp := b.prate[partitionID(b.owned[hot][i])]
		if m := max(h-rp, c+rp); m < limit {
			bestI, bestJ, limit = i, -1, m
		}
		if j, m := swapPartner(partners, h, c, rp); j >= 0 && m < limit {
			bestI, bestJ, limit = i, j, m
		}
	}
	return bestI, bestJ
}

// ratedPart is a partition's index in its broker's owned list, with its
// rate.
type ratedPart struct {
	rate float64
	j    int
}

// byRate returns broker id's partitions by rate, ascending; among equal
// rates the highest index first.
func (b *balance) byRate(id string) []ratedPart {
	out := make([]ratedPart, len(b.owned[id]))
	for j, p := range b.owned[id] {
		out[j] = ratedPart{rate: b.prate[partitionID(p)], j: j}
	}
	slices.SortFunc(out, func(x, y ratedPart) int { return cmp.Or(cmp.Compare(x.rate, y.rate), cmp.Compare(y.j, x.j)) })
	return out
}

// swapPartner returns the partition j of the cold broker (rate c), among
// partners (byRate), to swap with a partition of rate rp of the hot one
// (rate h) that leaves m = max(h-rp+rq, c+rp-rq) lowest, and m; j is -1 if
// no partner is quieter than rp. The first term grows with the partner's
// rate rq and the second falls, so m is lowest on either side of where
// they cross: only the first partner past the crossing and the last
// before it are candidates, and of each rate the highest index.
func swapPartner(partners []ratedPart, h, c, rp float64) (j int, m float64) {
	quieter := sort.Search(len(partners), func(k int) bool { return partners[k].rate >= rp })
	cross := sort.Search(quieter, func(k int) bool { rq := partners[k].rate; return h-rp+rq >= c+rp-rq })
	j = -1
	for _, k := range []int{cross - 1, cross} {
		if k < 0 || k >= quieter {
			continue
		}
		rq := partners[k].rate
		first := sort.Search(k+1, func(x int) bool { return partners[x].rate >= rq }) // highest index of rate rq
		if mk := max(h-rp+rq, c+rp-rq); j < 0 || mk < m || (mk == m && partners[first].j > j) {
			j, m = partners[first].j, mk
		}
	}
	return j, m
}

// rebalancer carries the leader's rebalancing state between placement
// passes. Only the placement loop uses it.
type rebalancer struct {
	s *Server
	// lastRound and lastLoadMove are when moves were last made (any, and
	// for load).
	lastRound, lastLoadMove time.Time
	// drainingSince is when each draining broker was first seen draining.
	drainingSince map[string]time.Time
	// conns are connections to brokers by address.
	conns map[string]*grpc.ClientConn
}

func newRebalancer(s *Server) *rebalancer {
	return &rebalancer{s: s, drainingSince: map[string]time.Time{}, conns: map[string]*grpc.ClientConn{}}
}

// close closes the connections to brokers.
func (r *rebalancer) close() {
	for addr, c := range r.conns {
		_ = c.Close()
		delete(r.conns, addr)
	}
}

// handingOff returns the partitions that are the business of a live
// draining broker's own hand-off: those of brokers draining for less than
// DrainTimeout. Placement leaves them alone; after the timeout they are
// orphans like any other.
func (r *rebalancer) handingOff(brokers []meta.BrokerInfo, now time.Time) (map[string]bool, time.Duration) {
	out := map[string]bool{}
	live := map[string]bool{}
	var wake time.Duration
	for _, b := range brokers {
		live[b.ID] = true
		if !b.Draining {
			delete(r.drainingSince, b.ID)
			continue
		}
		since, ok := r.drainingSince[b.ID]
		if !ok {
			since = now
			r.drainingSince[b.ID] = now
		}
		if left := r.s.cfg.DrainTimeout - now.Sub(since); left > 0 {
			out[b.ID] = true
			if wake == 0 || left < wake {
				wake = left
			}
		}
	}
	for id := range r.drainingSince {
		if !live[id] {
			delete(r.drainingSince, id)
		}
	}
	return out, wake
}

// round plans and runs one round of moves if the last round is at least
// RebalanceInterval ago, and returns how many partitions moved. counts
// are the partitions each broker owns (View.OwnerCounts); the partitions
// themselves are read only if counts or loads leave a move to plan.
func (r *rebalancer) round(ctx context.Context, counts map[string]int, brokers []meta.BrokerInfo) int {
	cfg := r.s.cfg
	now := time.Now()
	if cfg.RebalanceMaxMoves < 0 || now.Sub(r.lastRound) < cfg.RebalanceInterval {
		return 0
	}
	byLoad := now.Sub(r.lastLoadMove) >= cfg.LoadRebalanceInterval
	if !unbalanced(counts, brokers, byLoad) {
		return 0
	}
	plan := planRebalance(r.s.view.Partitions(), brokers, cfg.RebalanceMaxMoves, byLoad)
	if len(plan) == 0 {
		return 0
	}
	r.lastRound = now
	if plan[0].ByLoad {
		r.lastLoadMove = now
	}
	addr := map[string]string{}
	for _, b := range brokers {
		addr[b.ID] = b.Addr
	}
	type pair struct{ from, to string }
	groups := map[pair][]meta.PartitionState{}
	var order []pair
	for _, m := range plan {
		k := pair{m.From.Broker, m.To}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m.From)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards moved
		moved int
	)
	for _, k := range order {
		conn, err := r.conn(addr[k.from])
		if err != nil {
			r.s.log.Warn("rebalance: cannot reach broker", "broker", k.from, "err", err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := r.handOff(ctx, conn, k.from, k.to, groups[k])
			mu.Lock()
			moved += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return moved
}

// handOff asks broker from to hand partitions to broker to.
func (r *rebalancer) handOff(ctx context.Context, conn *grpc.ClientConn, from, to string, parts []meta.PartitionState) int {
	req := &stratav1.ReleasePartitionsRequest{Target: to}
	for _, p := range parts {
		t, ok := r.s.view.TopicByID(p.TopicID)
		if !ok {
			continue
		}
		req.Partitions = append(req.Partitions, &stratav1.PartitionRef{Topic: t.Name, Partition: p.Partition, Epoch: p.Epoch})
	}
	if len(req.Partitions) == 0 {
		return 0
	}
	hctx, cancel := context.WithTimeout(ctx, handoffTimeout)
	defer cancel()
	start := time.Now()
	resp, err := stratav1.NewBrokerClient(conn).ReleasePartitions(hctx, req)
	if err != nil {
		r.s.log.Warn("rebalance: hand-off failed", "from", from, "to", to, "partitions", len(req.Partitions), "err", apierr.FromStatus(err))
		r.s.rebalanceMetrics.failures.Inc()
		return 0
	}
	r.s.rebalanceMetrics.moves.Add(float64(len(resp.Released)))
	r.s.log.Info("rebalance: handed off partitions", "from", from, "to", to, "partitions", len(resp.Released), "took", time.Since(start))
	return len(resp.Released)
}

// conn returns a connection to a broker address.
func (r *rebalancer) conn(addr string) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, fmt.Errorf("no address")
	}
	if c, ok := r.conns[addr]; ok {
		return c, nil
	}
	c, err := rpc.Dial(addr, rpc.WithTLS(r.s.cfg.TLS))
	if err != nil {
		return nil, err
	}
	r.conns[addr] = c
	return c, nil
}

// forget closes connections to addresses no live broker has.
func (r *rebalancer) forget(brokers []meta.BrokerInfo) {
	live := map[string]bool{}
	for _, b := range brokers {
		live[b.Addr] = true
	}
	for addr, c := range r.conns {
		if !live[addr] {
			_ = c.Close()
			delete(r.conns, addr)
		}
	}
}

// rebalanceMetrics count the moves rebalancing and drains make.
type rebalanceMetrics struct {
	moves, failures, drains prometheus.Counter
}

func newRebalanceMetrics(reg prometheus.Registerer) *rebalanceMetrics {
	f := metric.New(reg, "coordinator")
	return &rebalanceMetrics{
		moves:    f.Counter("rebalance_moves_total", "Healthy partitions moved to another broker by graceful hand-off."),
		failures: f.Counter("rebalance_failures_total", "Hand-off requests to brokers that failed."),
		drains:   f.Counter("drains_total", "DrainBroker requests that succeeded."),
	}
}

// DrainBroker asks a live broker to mark itself draining and hand every
// partition it owns off gracefully (flush, commit, release); placement
// then gives them to the other brokers at once. The broker keeps running
// and gets nothing new until it restarts.
func (s *Server) DrainBroker(ctx context.Context, req *stratav1.DrainBrokerRequest) (*stratav1.DrainBrokerResponse, error) {
	var resp *stratav1.DrainBrokerResponse
	err := s.admin("DrainBroker", func() error {
		id := req.GetBrokerId()
		if id == "" {
			return apierr.Errorf(apierr.ErrInvalidRequest, "broker id is empty")
		}
		addr, others := "", 0
		for _, b := range s.view.Brokers() {
			switch {
			case b.ID == id:
				addr = b.Addr
			case !b.Draining:
				others++
			}
		}
		if addr == "" {
			return apierr.Errorf(apierr.ErrInvalidRequest, "no live broker %q", id)
		}
		if others == 0 && !req.GetForce() {
			return apierr.Errorf(apierr.ErrInvalidRequest,
				"broker %q is the last live broker that is not draining: draining it leaves every partition without an owner (force it with --force; undo with strata broker undrain)", id)
		}
		conn, err := rpc.Dial(addr, rpc.WithTLS(s.cfg.TLS))
		if err != nil {
			return apierr.Errorf(apierr.ErrStorageUnavailable, "broker %s at %s: %v", id, addr, err)
		}
		defer conn.Close()
		hctx, cancel := context.WithTimeout(ctx, handoffTimeout)
		defer cancel()
		out, err := stratav1.NewBrokerClient(conn).ReleasePartitions(hctx, &stratav1.ReleasePartitionsRequest{Drain: true})
		if err != nil {
			return apierr.FromStatus(err)
		}
		s.rebalanceMetrics.drains.Inc()
		s.log.Info("drained broker", "by", auth.NameOf(ctx), "broker", id, "partitions", len(out.Released))
		resp = &stratav1.DrainBrokerResponse{Released: out.Released}
		return nil
	})
	return resp, err
}

// UndrainBroker asks a live broker to clear its draining mark, so that
// placement gives it partitions again; the rebalancer then moves a fair
// share to it.
func (s *Server) UndrainBroker(ctx context.Context, req *stratav1.UndrainBrokerRequest) (*stratav1.UndrainBrokerResponse, error) {
	err := s.admin("UndrainBroker", func() error {
		id := req.GetBrokerId()
		if id == "" {
			return apierr.Errorf(apierr.ErrInvalidRequest, "broker id is empty")
		}
		b, ok := s.view.Broker(id)
		if !ok {
			return apierr.Errorf(apierr.ErrInvalidRequest, "no live broker %q", id)
		}
		conn, err := rpc.Dial(b.Addr, rpc.WithTLS(s.cfg.TLS))
		if err != nil {
			return apierr.Errorf(apierr.ErrStorageUnavailable, "broker %s at %s: %v", id, b.Addr, err)
		}
		defer conn.Close()
		hctx, cancel := context.WithTimeout(ctx, handoffTimeout)
		defer cancel()
		if _, err := stratav1.NewBrokerClient(conn).Undrain(hctx, req); err != nil {
			return apierr.FromStatus(err)
		}
		s.log.Info("undrained broker", "broker", id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &stratav1.UndrainBrokerResponse{}, nil
}
