package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
)

// loadRun is a steady produce load (4 records every 2 ms, about 2,000
// records/s, spread round-robin over a topic's partitions) that remembers
// the fate of every record — acknowledged, failed with an error, or not
// reported yet — and when each partition got its acknowledgements.
type loadRun struct {
	t     *testing.T
	topic string
	parts int32
	p     *client.Producer

	stop, stopped chan struct{}

	mu       sync.Mutex // guards the fields below
	fates    map[string]*fate
	acks     map[int32][]time.Time // acknowledgement times per partition, in order
	twice    []string              // records whose callback ran more than once
	produced int
}

// fate is what the producer reported for one record.
type fate struct {
	done      bool
	err       error
	partition int32
	offset    int64
}

// startLoad starts producing to topic through p until stop is called.
func startLoad(t *testing.T, ctx context.Context, p *client.Producer, topic string, parts int32) *loadRun {
	l := &loadRun{t: t, topic: topic, parts: parts, p: p, stop: make(chan struct{}), stopped: make(chan struct{}),
		fates: map[string]*fate{}, acks: map[int32][]time.Time{}}
	go tickLoad(l.stop, l.stopped, "v", func(v string) {
		l.mu.Lock()
		l.fates[v] = &fate{}
		l.produced++
		l.mu.Unlock()
		p.Produce(ctx, &client.Record{Topic: topic, Partition: -1, Value: []byte(v)}, l.callback)
	})
	return l
}

// tickLoad calls send with the values prefix-000000000, prefix-000000001,
// and so on, 4 every 2 ms (about 2,000 a second), until stop is closed,
// then closes stopped.
func tickLoad(stop <-chan struct{}, stopped chan<- struct{}, prefix string, send func(v string)) {
	defer close(stopped)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 10_000_000; {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for range 4 {
			send(fmt.Sprintf("%s-%09d", prefix, i))
			i++
		}
	}
}

func (l *loadRun) callback(r *client.Record, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fates[string(r.Value)]
	if f.done {
		l.twice = append(l.twice, string(r.Value))
		return
	}
	f.done, f.err, f.partition, f.offset = true, err, r.Partition, r.Offset
	if err == nil {
		l.acks[r.Partition] = append(l.acks[r.Partition], now)
	}
}

// ackedCount returns how many records were acknowledged so far.
func (l *loadRun) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acks {
		n += len(a)
	}
	return n
}

// firstAcksAfter returns, per partition, the delay from at to its first
// acknowledgement after at; partitions without one are missing.
func (l *loadRun) firstAcksAfter(at time.Time) map[int32]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]time.Duration{}
	for p, ts := range l.acks {
		i, _ := slices.BinarySearchFunc(ts, at, func(a, b time.Time) int { return a.Compare(b) })
		if i < len(ts) {
			out[p] = ts[i].Sub(at)
		}
	}
	return out
}

// waitRecovered waits until every partition has an acknowledgement after
// at and returns the per-partition delays.
func (l *loadRun) waitRecovered(what string, at time.Time) map[int32]time.Duration {
	l.t.Helper()
	deadline := time.Now().Add(phaseTimeout)
	for {
		d := l.firstAcksAfter(at)
		if len(d) == int(l.parts) {
			return d
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: only %d of %d partitions acknowledged a record within %v", what, len(d), l.parts, phaseTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling a local condition
	}
}

// maxGap returns, per partition, the longest time between two
// acknowledgements (or between from and the first one) in [from, to].
func (l *loadRun) maxGap(from, to time.Time) map[int32]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int32]time.Duration{}
	for p := range l.parts {
		prev, gap := from, time.Duration(0)
		for _, at := range l.acks[p] {
			if at.Before(from) {
				continue
			}
			if at.After(to) {
				break
			}
			gap = max(gap, at.Sub(prev))
			prev = at
		}
		out[p] = max(gap, to.Sub(prev))
	}
	return out
}

// finish stops the load, closes the producer (every callback must have
// run), reads the topic back and checks every record's fate against what
// is stored: an acknowledged record is stored once, at its offset; a
// record reported with ErrUnknownOutcome at most once; a record that
// failed with any other error not at all; no value is stored twice. With
// allAcked (every fault was shorter than the delivery timeout) every
// record must have been acknowledged. It returns the summary and fails
// the test on any violation.
func (l *loadRun) finish(ctx context.Context, cl *client.Client, allAcked bool) string {
	l.t.Helper()
	close(l.stop)
	<-l.stopped
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := l.p.Close(cctx); err != nil {
		l.t.Errorf("closing the producer: %v", err)
	}
	stored, err := readTopic(ctx, cl, l.topic)
	if err != nil {
		l.t.Fatal(err)
	}
	chk := checker.New()
	count := map[string]int{}
	for _, r := range stored {
		chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
		count[string(r.Value)]++
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := tallyFates(l.fates, count, l.topic, chk, func(err error) bool { return errors.Is(err, client.ErrUnknownOutcome) })
	var problems []string
	rep := chk.Verify(0)
	summary := fmt.Sprintf("produced %d: acknowledged %d, unknown outcome %d (first: %v), failed %d (first: %v), no callback %d, callbacks run twice %d; stored %d, values stored twice %d (acknowledged ones %d), failed records stored %d; checker: %v",
		l.produced, n.acked, n.unknown, n.firstUnknown, n.failed, n.firstErr, n.pending, len(l.twice), len(stored), n.storedTwice, n.ackedTwice, n.failedStored, rep)
	if n.storedTwice > 0 {
		problems = append(problems, fmt.Sprintf("%d values stored twice", n.storedTwice))
	}
	if n.failedStored > 0 {
		problems = append(problems, fmt.Sprintf("%d records reported failed (not ErrUnknownOutcome) were stored", n.failedStored))
	}
	if allAcked && n.acked != l.produced {
		problems = append(problems, fmt.Sprintf("%d of %d records not acknowledged", l.produced-n.acked, l.produced))
	}
	if n.pending > 0 || len(l.twice) > 0 {
		problems = append(problems, "callbacks missing or repeated")
	}
	if !rep.OK() {
		problems = append(problems, "checker found problems")
	}
	if len(problems) > 0 {
		l.t.Errorf("%v\n%s", problems, summary)
	}
	return summary
}

// fateTally counts records by their producer-reported fate against how
// often each value is stored.
type fateTally struct {
	acked, unknown, failed, pending       int
	storedTwice, ackedTwice, failedStored int
	firstErr, firstUnknown                error
}

// tallyFates counts fates against count (how often each value is stored)
// and hands every acknowledged record to chk. A failure for which unknown
// is true may have been written; any other failure was not, and is
// counted in failedStored if it was stored anyway.
func tallyFates(fates map[string]*fate, count map[string]int, topic string, chk *checker.Checker, unknown func(error) bool) fateTally {
	var n fateTally
	for v, f := range fates {
		stored := count[v]
		if stored > 1 {
			n.storedTwice++
		}
		switch {
		case !f.done:
			n.pending++
		case f.err == nil:
			n.acked++
			chk.Acked(checker.Record{Topic: topic, Partition: f.partition, Offset: f.offset, Value: []byte(v)})
			if stored > 1 {
				n.ackedTwice++
			}
		case unknown(f.err):
			n.unknown++
			n.firstUnknown = cmp(n.firstUnknown, f.err)
		default:
			n.failed++
			n.firstErr = cmp(n.firstErr, f.err)
			if stored > 0 {
				n.failedStored++
			}
		}
	}
	return n
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// readTopic reads every partition of topic from the beginning up to the
// high watermarks it has now.
func readTopic(ctx context.Context, cl *client.Client, topic string) ([]*client.Record, error) {
	info, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		return nil, err
	}
	hw := map[int32]int64{}
	for _, pi := range info.PartitionInfo {
		hw[pi.Partition] = pi.HighWatermark
	}
	cons, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	if err := cons.Assign(topic); err != nil {
		return nil, err
	}
	next := map[int32]int64{}
	var out []*client.Record
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done := true
		for p, h := range hw {
			done = done && next[p] >= h
		}
		if done {
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("reading %s: not at the high watermarks %v after 3m (at %v)", topic, hw, next)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		recs, err := cons.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !client.IsRetriable(err) {
			return out, fmt.Errorf("poll: %w", err)
		}
		for _, r := range recs {
			if r.Offset < hw[r.Partition] {
				out = append(out, r)
			}
			next[r.Partition] = r.Offset + 1
		}
	}
}

// restartProcess starts p again and returns the moment its gRPC health
// check at addr first answered SERVING, polled every 5 ms (the readiness
// wait of testenv backs off up to 500 ms, too coarse to time a reconnect).
func restartProcess(t *testing.T, p *testenv.Process, addr string) time.Time {
	t.Helper()
	started := make(chan error, 1)
	go func() { started <- p.Start() }()
	check := testenv.GRPCServing(addr)
	deadline := time.Now().Add(testenv.DefaultReadyTimeout)
	var readyAt time.Time
	for readyAt.IsZero() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if check(ctx) == nil {
			readyAt = time.Now()
		}
		cancel()
		if time.Now().After(deadline) {
			t.Fatalf("%s: not serving within %v", addr, testenv.DefaultReadyTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	return readyAt
}

// spread summarises per-partition durations: "max X, median Y".
func spread(ds map[int32]time.Duration) (maxD time.Duration, line string) {
	vals := make([]time.Duration, 0, len(ds))
	for _, d := range ds {
		vals = append(vals, d.Round(time.Millisecond))
	}
	slices.Sort(vals)
	if len(vals) == 0 {
		return 0, "no partitions"
	}
	return vals[len(vals)-1], fmt.Sprintf("min %v, median %v, max %v", vals[0], vals[len(vals)/2], vals[len(vals)-1])
}
