package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// chaosDuration makes TestChaos repeat its faults for this long; 0 runs
// one round (about a minute), as CI does.
var chaosDuration = flag.Duration("chaos.duration", 0, "run TestChaos's fault rounds for at least this long (0: one round)")

const (
	chaosTopic      = "chaos"
	chaosPartitions = 8
	// phaseTimeout bounds every wait of the test.
	phaseTimeout = 90 * time.Second
)

// availability measures, for the fault in progress, each partition's
// unavailability: the time from the fault to the first acknowledgement of
// a record produced at or after it.
type availability struct {
	t *testing.T

	mu        sync.Mutex // guards the fields below
	fault     string
	at        time.Time
	recovered map[int32]time.Duration
	done      chan struct{} // closed when every partition recovered
	summary   []string
}

func (a *availability) begin(fault string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault, a.at, a.recovered, a.done = fault, time.Now(), map[int32]time.Duration{}, make(chan struct{})
	a.t.Logf("fault: %s", fault)
}

func (a *availability) acked(p int32, sent, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recovered == nil || sent.Before(a.at) {
		return
	}
	if _, ok := a.recovered[p]; ok {
		return
	}
	a.recovered[p] = at.Sub(a.at)
	if len(a.recovered) == chaosPartitions {
		close(a.done)
	}
}

// wait waits until every partition took a write again and logs the
// unavailability per partition.
func (a *availability) wait() {
	a.t.Helper()
	a.mu.Lock()
	done, fault := a.done, a.fault
	a.mu.Unlock()
	select {
	case <-done:
	case <-time.After(phaseTimeout):
		a.mu.Lock()
		defer a.mu.Unlock()
		a.t.Fatalf("%s: only %d of %d partitions took writes within %v", fault, len(a.recovered), chaosPartitions, phaseTimeout)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ds := make([]time.Duration, chaosPartitions)
	for p, d := range a.recovered {
		ds[p] = d.Round(time.Millisecond)
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	line := fmt.Sprintf("%-40s max %8v  median %8v  per partition %v", fault, sorted[len(sorted)-1], sorted[len(sorted)/2], ds)
	a.summary = append(a.summary, line)
	a.t.Log("recovered: " + line)
	a.recovered = nil
}

// TestChaos runs a producer (idempotent, the SDK default) and a consumer
// against MinIO, etcd, 2 coordinators, 3 brokers and a proxy — real
// processes — while it, in turn, kill -9s a broker and restarts it,
// SIGSTOPs a broker past its lease and resumes it (a zombie, whose
// commits are fenced), kills the coordinator leader, adds a fourth broker
// (partitions move to it by graceful hand-off), drains a broker and
// restarts one gracefully (SIGTERM). Then every acknowledged record must
// be read back exactly once at its acknowledged offset, offsets dense, and
// no value read twice. Each partition's unavailability after each fault
// is logged. -chaos.duration repeats the rounds for longer.
func TestChaos(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Coordinators: 2, Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cl := c.Client(client.RequestTimeout(3*time.Second), client.AdminAttempts(20))
	if _, err := cl.CreateTopic(ctx, chaosTopic, chaosPartitions); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })

	chk := checker.New()
	av := &availability{t: t}
	var (
		acked, failed atomic.Int64
		errMu         sync.Mutex
		errs          []error // guarded by errMu: the first few failures
		stopProduce   = make(chan struct{})
		produced      = make(chan struct{})
	)
	p, err := cl.NewProducer(client.DeliveryTimeout(5*time.Minute), client.ProducerRetryBackoff(20*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(produced)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-stopProduce:
				return
			case <-tick.C:
			}
			for range 4 {
				sent := time.Now()
				r := &client.Record{Topic: chaosTopic, Partition: -1, Value: fmt.Appendf(nil, "v-%09d", i)}
				i++
				p.Produce(ctx, r, func(r *client.Record, err error) {
					if err != nil {
						failed.Add(1)
						errMu.Lock()
						if len(errs) < 5 {
							errs = append(errs, fmt.Errorf("record %s: %w", r.Value, err))
						}
						errMu.Unlock()
						return
					}
					acked.Add(1)
					av.acked(r.Partition, sent, time.Now())
					chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
				})
			}
		}
	}()

	// The consumer reads concurrently from the start.
	values := map[string]int64{}
	var dupValues []string
	stopConsume := make(chan map[int32]int64, 1) // the final high watermarks
	consumed := make(chan error, 1)
	go func() {
		consumed <- consume(ctx, cl, func(r *client.Record) {
			chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
			if prev, dup := values[string(r.Value)]; dup {
				dupValues = append(dupValues, fmt.Sprintf("%s at %d/%d and %d", r.Value, r.Partition, r.Offset, prev))
			}
			values[string(r.Value)] = r.Offset
		}, stopConsume)
	}()

	waitFor(t, "first acknowledgements", func() bool { return acked.Load() >= 2000 })
	// The unavailability measure includes the normal produce latency; a
	// phase without a fault shows it.
	av.begin("baseline (no fault)")
	av.wait()
	start := time.Now()
	for round := 0; round == 0 || time.Since(start) < *chaosDuration; round++ {
		chaosRound(t, ctx, c, cl, av, round)
	}
	t.Logf("fault rounds took %v", time.Since(start))

	close(stopProduce)
	<-produced
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		errMu.Lock()
		defer errMu.Unlock()
		t.Fatalf("%d records failed, the first: %v", n, errors.Join(errs...))
	}
	info, err := cl.DescribeTopic(ctx, chaosTopic)
	if err != nil {
		t.Fatal(err)
	}
	hw := map[int32]int64{}
	for _, pi := range info.PartitionInfo {
		hw[pi.Partition] = pi.HighWatermark
	}
	stopConsume <- hw
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}

	rep := chk.Verify(0)
	t.Logf("checker: %v", rep)
	t.Log("unavailability per fault:\n  " + joinLines(av.summary))
	if !rep.OK() || rep.Acked != int(acked.Load()) {
		t.Fatalf("invariants violated (acked %d): %v", acked.Load(), rep)
	}
	if len(dupValues) > 0 {
		t.Fatalf("%d values read twice (idempotence failed), e.g. %v", len(dupValues), dupValues[:min(5, len(dupValues))])
	}
}

// chaosRound runs every fault once. Round 0 also adds the fourth broker.
func chaosRound(t *testing.T, ctx context.Context, c *Cluster, cl *client.Client, av *availability, round int) {
	n := len(c.Brokers)
	victim := func(k int) (int, string) { i := (round + k) % n; return i, fmt.Sprintf("broker-%d", i) }

	// kill -9 a broker; the coordinator leader finds its port refusing,
	// evicts it and moves its partitions at once. Then restart it (same
	// ID: the eviction revoked the old lease, so it registers at once).
	i, id := victim(0)
	c.Brokers[i].Kill()
	av.begin("kill -9 " + id)
	av.wait()
	av.begin("restart " + id + " (hand-offs to it)")
	if err := c.Brokers[i].Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, id+" owns partitions again", func(st *client.ClusterStatus) bool { return owned(st, id) > 0 && balanced(st) })
	av.wait()

	// SIGSTOP a broker past its lease: it is a zombie; its commits are
	// fenced and its producers retried on the new owners.
	i, id = victim(1)
	if err := c.Brokers[i].Pause(); err != nil {
		t.Fatal(err)
	}
	av.begin("SIGSTOP " + id + " past its lease")
	waitStatus(t, ctx, cl, id+" expired and its partitions moved", func(st *client.ClusterStatus) bool {
		return !live(st, id) && len(st.Unassigned) == 0
	})
	if err := c.Brokers[i].Resume(); err != nil {
		t.Fatal(err)
	}
	av.wait()
	waitStatus(t, ctx, cl, id+" registered again", func(st *client.ClusterStatus) bool { return live(st, id) && balanced(st) })

	// Kill the coordinator leader: the standby takes over; brokers and the
	// proxy keep serving meanwhile.
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var leader int
	if _, err := fmt.Sscanf(st.CoordinatorLeader, "coordinator-%d", &leader); err != nil {
		t.Fatalf("leader %q: %v", st.CoordinatorLeader, err)
	}
	c.Coordinators[leader].Kill()
	av.begin("kill -9 coordinator leader " + st.CoordinatorLeader)
	av.wait()
	killed := time.Now()
	waitStatus(t, ctx, cl, "a new coordinator leader", func(st *client.ClusterStatus) bool {
		return st.CoordinatorLeader != "" && st.CoordinatorLeader != fmt.Sprintf("coordinator-%d", leader)
	})
	t.Logf("new coordinator leader after %v", time.Since(killed).Round(time.Millisecond))
	if err := c.Coordinators[leader].Start(); err != nil {
		t.Fatal(err)
	}

	if round == 0 {
		// Scale out: the coordinator moves a fair share to the new broker
		// by graceful hand-off.
		av.begin("add broker-3")
		added := time.Now()
		c.AddBroker("broker-3")
		n = len(c.Brokers)
		waitStatus(t, ctx, cl, "broker-3 has its share", func(st *client.ClusterStatus) bool { return owned(st, "broker-3") >= 2 && balanced(st) })
		t.Logf("rebalanced 3 -> 4 brokers in %v", time.Since(added).Round(time.Millisecond))
		av.wait()
	}

	// Drain a broker: graceful hand-off of all its partitions; then
	// restart it gracefully (SIGTERM) so that it serves again.
	i, id = victim(2)
	av.begin("drain " + id)
	if _, err := cl.DrainBroker(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, id+" drained", func(st *client.ClusterStatus) bool { return owned(st, id) == 0 && len(st.Unassigned) == 0 })
	av.wait()
	c.Brokers[i].Stop()
	if err := c.Brokers[i].Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, id+" back with partitions", func(st *client.ClusterStatus) bool { return owned(st, id) > 0 && balanced(st) })

	// Graceful restart (SIGTERM) of a broker that owns partitions.
	i, id = victim(3)
	av.begin("SIGTERM " + id)
	c.Brokers[i].Stop()
	av.wait()
	if err := c.Brokers[i].Start(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, cl, id+" back with partitions", func(st *client.ClusterStatus) bool { return owned(st, id) > 0 && balanced(st) })
}

// consume reads every partition of the chaos topic from the beginning and
// hands each record to read, until it has received the final high
// watermarks and read up to them.
func consume(ctx context.Context, cl *client.Client, read func(*client.Record), stop <-chan map[int32]int64) error {
	c, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Assign(chaosTopic); err != nil {
		return err
	}
	next := map[int32]int64{}
	var hw map[int32]int64
	deadline := time.Time{}
	for {
		if hw == nil {
			select {
			case hw = <-stop:
				deadline = time.Now().Add(phaseTimeout)
			default:
			}
		}
		if hw != nil {
			done := true
			for p, h := range hw {
				if next[p] < h {
					done = false
				}
			}
			if done {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("consumer did not reach the high watermarks %v within %v (at %v)", hw, phaseTimeout, next)
			}
		}
		// Poll waits until records arrive; bound it so that the high
		// watermarks are checked again once everything was read.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		recs, err := c.Poll(pctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue
			}
			if errors.Is(err, context.Canceled) || !client.IsRetriable(err) {
				return fmt.Errorf("poll: %w", err)
			}
			continue
		}
		for _, r := range recs {
			read(r)
			next[r.Partition] = r.Offset + 1
		}
	}
}

// waitStatus polls ClusterStatus until cond holds.
func waitStatus(t *testing.T, ctx context.Context, cl *client.Client, what string, cond func(*client.ClusterStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(phaseTimeout)
	var last *client.ClusterStatus
	for time.Now().Before(deadline) {
		st, err := cl.ClusterStatus(ctx)
		if err == nil {
			if cond(st) {
				return
			}
			last = st
		}
		time.Sleep(50 * time.Millisecond) // polling a remote condition
	}
	t.Fatalf("%s: not within %v; last status %+v", what, phaseTimeout, last)
}

// waitFor polls a local condition.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, phaseTimeout, cond)
}

func owned(st *client.ClusterStatus, id string) int {
	for _, b := range st.Brokers {
		if b.ID == id {
			return len(b.Partitions)
		}
	}
	return 0
}

func live(st *client.ClusterStatus, id string) bool {
	for _, b := range st.Brokers {
		if b.ID == id {
			return true
		}
	}
	return false
}

// balanced reports whether every partition has an owner and the
// non-draining brokers' partition counts differ by at most one.
func balanced(st *client.ClusterStatus) bool {
	if len(st.Unassigned) > 0 {
		return false
	}
	lo, hi := -1, -1
	for _, b := range st.Brokers {
		if b.Draining {
			continue
		}
		n := len(b.Partitions)
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return hi-lo <= 1
}

func joinLines(ls []string) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}
