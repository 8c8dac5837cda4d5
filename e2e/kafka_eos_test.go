package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/proxy"
)

// TestKafkaExactlyOnceThroughFaults runs franz-go's consume-transform-produce
// session (GroupTransactSession: it reads the input at read_committed and
// commits the output records and the input offsets in one transaction,
// which aborts if the group rebalanced meanwhile) through a member joining,
// a broker killed (SIGKILL) and started again, the only proxy — the group
// front end and the transaction coordinator — killed and started again,
// and a member leaving (2 members, then 3, then 2). Each fault falls
// between two halves of a phase of input, while the members are inside
// their transactions, and the group must catch up after each phase. Every
// input record must then be in the output exactly once, read at
// read_committed. The zombie-fencing rules that a well-behaved client
// never trips (a stale generation's TxnOffsetCommit, an unstable offset
// fetch) are shown by the kafka package's unit tests; this test shows the
// whole path holds through the faults.
func TestKafkaExactlyOnceThroughFaults(t *testing.T) {
	runEOSThroughFaults(t, "eos", startEOSWorker)
}

// TestKafkaExactlyOnceThroughOutages runs franz-go's consume-transform-
// produce session, as TestKafkaExactlyOnceThroughFaults does, through
// outages of the two dependencies, each longer than the proxy's produce
// budget (proxy.DefaultProduceTimeout): etcd frozen (SIGSTOP; it holds
// the transactions' and the groups' state and the partitions' commits,
// and the servers' leases expire when it wakes) and MinIO frozen (every
// PUT and GET hangs). Every input record must then be in the output once.
func TestKafkaExactlyOnceThroughOutages(t *testing.T) {
	down := proxy.DefaultProduceTimeout + 5*time.Second
	runEOS(t, "eos-outage", startEOSWorker, []eosFault{
		{"etcd-frozen", func(r *eosRun) { outageOf(r.t, r.c.Etcd.Process, true, down) }},
		{"minio-frozen", func(r *eosRun) { outageOf(r.t, r.c.MinIO.Process, true, down) }},
	})
}

// eosStarter starts a consume-transform-produce member named name of
// group, copying topic in to topic out, until stopped.
type eosStarter func(ctx context.Context, addr, name, in, out, group string) eosStopper

// eosStopper stops a member; the member leaves its group.
type eosStopper interface{ stop() }

// runEOSThroughFaults runs members started by start through the faults of
// TestKafkaExactlyOnceThroughFaults on topics and a group named after
// prefix, and checks that every input record is in the output once.
func runEOSThroughFaults(t *testing.T, prefix string, start eosStarter) {
	runEOS(t, prefix, start, []eosFault{
		{"joined", func(r *eosRun) { r.join("w2") }},
		{"broker-down", func(r *eosRun) { r.c.Brokers[0].Kill() }},
		{"proxy", func(r *eosRun) {
			if err := r.c.Brokers[0].Start(); err != nil {
				r.t.Fatal(err)
			}
			r.c.Proxy.Kill()
			restartProcess(r.t, r.c.Proxy, r.c.ProxyAddr)
		}},
		{"left", func(r *eosRun) {
			r.workers[0].stop()
			r.workers = r.workers[1:]
		}},
	})
}

// eosFault is one fault of an exactly-once run, applied between the two
// halves of a phase of input.
type eosFault struct {
	name string
	do   func(r *eosRun)
}

// eosRun is what a fault acts on.
type eosRun struct {
	t       *testing.T
	c       *Cluster
	workers []eosStopper
	join    func(name string) // starts one more member
}

// runEOS runs two members started by start through faults, one per phase
// of input, on topics and a group named after prefix, and checks that
// every input record is in the output once.
func runEOS(t *testing.T, prefix string, start eosStarter, faults []eosFault) {
	const partitions, phase = 4, 2000
	in, out, group := prefix+"-in", prefix+"-out", prefix
	c, addr := startKafkaCluster(t, ClusterOptions{Brokers: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	kgoCreateTopic(t, ctx, addr, in, partitions)
	kgoCreateTopic(t, ctx, addr, out, partitions)
	producer := kgoClient(t, addr)
	adm := kadm.NewClient(kgoClient(t, addr))
	input := checker.New()
	r := &eosRun{t: t, c: c}
	r.join = func(name string) { r.workers = append(r.workers, start(ctx, addr, name, in, out, group)) }
	defer func() {
		for _, w := range r.workers {
			w.stop()
		}
	}()
	r.join("w0")
	r.join("w1")
	// Each phase produces its input in two halves with the fault between
	// them, so that it finds the members inside their transactions, and
	// waits for the group to catch up.
	for _, f := range faults {
		kgoProduceAll(t, ctx, producer, input, in, f.name+"-a", phase/2)
		f.do(r)
		kgoProduceAll(t, ctx, producer, input, in, f.name+"-b", phase/2)
		start := time.Now()
		waitCaughtUp(t, ctx, adm, group, in)
		t.Logf("%s: the group caught up %v after the last input", f.name, time.Since(start).Round(time.Millisecond))
	}
	for _, w := range r.workers {
		w.stop()
	}
	r.workers = nil
	checkOutputOnce(t, readCommittedValues(t, ctx, addr, out), input.AckedRecords(), len(faults)*phase)
}

// checkOutputOnce checks that every acked input value was seen once in
// the output, and that want records were acked.
func checkOutputOnce(t *testing.T, seen map[string]int, acked []checker.Record, want int) {
	t.Helper()
	missing, twice := 0, 0
	for _, r := range acked {
		switch n := seen[string(r.Value)]; {
		case n == 0:
			missing++
		case n > 1:
			twice++
		}
	}
	if missing > 0 || twice > 0 || len(seen) != len(acked) || len(acked) != want {
		t.Fatalf("output: %d of %d input records missing, %d more than once; %d distinct values", missing, len(acked), twice, len(seen))
	}
	t.Logf("%d input records, each in the output once", len(acked))
}

// readCommittedValues reads every partition of topic from the start at
// read_committed up to its end offset and counts each value.
func readCommittedValues(t *testing.T, ctx context.Context, addr, topic string) map[string]int {
	t.Helper()
	ends := kgoEndOffsets(t, ctx, addr, topic)
	// Control records are kept so that the offsets of a partition ending
	// in a transaction marker reach its end.
	cl := kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	seen := map[string]int{}
	for !done() {
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (at %v of %v)", topic, ctx.Err(), next, ends)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() && r.Offset < ends[r.Partition] {
				seen[string(r.Value)]++
			}
		})
	}
	return seen
}

// waitCaughtUp waits until group has committed, for every partition of
// topic, the partition's end offset.
func waitCaughtUp(t *testing.T, ctx context.Context, adm *kadm.Client, group, topic string) {
	t.Helper()
	testenv.Eventually(t, "group "+group+" to commit up to the end of "+topic, 2*time.Minute, func() bool {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false
		}
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		caught := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offs.Lookup(topic, e.Partition); e.Err != nil || !ok || o.At != e.Offset {
				caught = false
			}
		})
		return caught
	})
}

// eosWorker is one member of a consume-transform-produce group: it copies
// every input record to the output topic in the transaction that commits
// the input offsets.
type eosWorker struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startEOSWorker starts a worker with transactional id "eos-<name>".
var startEOSWorker = sessionLoop(runEOSSession)

// sessionLoop makes an eosStarter of a session: each member runs
// sessions one after another until stopped.
func sessionLoop(run func(ctx context.Context, addr, name, in, out, group string)) eosStarter {
	return func(ctx context.Context, addr, name, in, out, group string) eosStopper {
		return startEOSLoop(ctx, func(ctx context.Context) { run(ctx, addr, name, in, out, group) })
	}
}

// startEOSLoop runs sessions of run, one after another, until stopped.
func startEOSLoop(ctx context.Context, run func(context.Context)) *eosWorker {
	ctx, cancel := context.WithCancel(ctx)
	w := &eosWorker{cancel: cancel}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// A session whose End fails is in an unknown state: a new one
		// with the same transactional id fences it and carries on, as an
		// application would. Bounded by the context.
		for ctx.Err() == nil {
			run(ctx)
		}
	}()
	return w
}

// stop ends the worker: its session leaves the group.
func (w *eosWorker) stop() {
	w.cancel()
	w.wg.Wait()
}

// runEOSSession copies records until ctx ends or a transaction ends in an
// error.
func runEOSSession(ctx context.Context, addr, name, in, out, group string) {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("eos-"+name),
		kgo.TransactionTimeout(time.Minute), kgo.SessionTimeout(10*time.Second),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return
	}
	defer sess.Close()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := sess.PollFetches(pctx)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			// A failed record makes End abort; its input is read again.
			sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, nil)
		})
		if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
			return
		}
	}
}
