package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// idemBatch encodes n records of producer pid starting at sequence seq.
func idemBatch(t testing.TB, tag string, pid int64, seq int32, n int) []byte {
	t.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	b, err := segment.EncodeBatch(recs, segment.BatchOptions{Idempotent: true, ProducerID: pid, BaseSequence: seq})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIdempotentProduce pins the broker's sequence rules: a retry of a
// recently committed request is answered with its original offsets and not
// written again; overlapping sequences are refused; a request after a gap
// waits for the gap, then fails with OUT_OF_ORDER_SEQUENCE.
func TestIdempotentProduce(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "idem", 1)
	ctx := testCtx(t)
	send := func(b []byte) (*stratav1.ProduceResponse, error) {
		return e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: b})
	}
	first := idemBatch(t, "a", 7, 0, 5)
	two := append(idemBatch(t, "b", 7, 5, 3), idemBatch(t, "c", 7, 8, 2)...)
	tests := []struct {
		name       string
		batches    []byte
		base, last int64
		want       error
	}{
		{"first request", first, 0, 4, nil},
		{"retry of it", first, 0, 4, nil},
		{"next request, two batches", two, 5, 9, nil},
		{"retry of the two batches", two, 5, 9, nil},
		{"retry of its second batch", idemBatch(t, "c", 7, 8, 2), 8, 9, nil},
		{"retry of an older request", first, 0, 4, nil},
		{"overlapping request", idemBatch(t, "d", 7, 9, 2), 0, 0, apierr.ErrInvalidRequest},
		{"gap", idemBatch(t, "e", 7, 20, 1), 0, 0, apierr.ErrOutOfOrderSequence},
		{"another producer", idemBatch(t, "f", 8, 0, 1), 10, 10, nil},
		{"not idempotent", batch(t, "g", 1), 11, 11, nil},
		{"non-consecutive batches", append(idemBatch(t, "h", 9, 0, 1), idemBatch(t, "h", 9, 5, 1)...), 0, 0, apierr.ErrInvalidRequest},
		{"mixed producers", append(idemBatch(t, "h", 9, 0, 1), idemBatch(t, "h", 10, 1, 1)...), 0, 0, apierr.ErrInvalidRequest},
		{"mixed with plain", append(batch(t, "h", 1), idemBatch(t, "h", 9, 1, 1)...), 0, 0, apierr.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := send(append([]byte(nil), tt.batches...))
			if tt.want != nil {
				if !errors.Is(apiErr(err), tt.want) {
					t.Fatalf("Produce = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.BaseOffset != tt.base || resp.LastOffset != tt.last {
				t.Fatalf("offsets %d..%d, want %d..%d", resp.BaseOffset, resp.LastOffset, tt.base, tt.last)
			}
		})
	}
	if got := e.readPartition(t, top.ID, 0); len(got) != 12 {
		t.Fatalf("partition holds %d records, want 12 (retries written again?)", len(got))
	}
}

// TestIdempotentOutOfOrderArrival sends a producer's requests in reverse
// order, concurrently, as a pipelining producer's requests may arrive:
// the early ones wait for their predecessors, and offsets follow
// sequences.
func TestIdempotentOutOfOrderArrival(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "idem-order", 1)
	ctx := testCtx(t)
	const reqs, per = 6, 3
	type result struct {
		resp *stratav1.ProduceResponse
		err  error
	}
	results := make([]chan result, reqs)
	for i := reqs - 1; i >= 0; i-- {
		results[i] = make(chan result, 1)
		b := idemBatch(t, fmt.Sprint(i), 42, int32(i*per), per)
		go func() {
			resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: b})
			results[i] <- result{resp, err}
		}()
	}
	for i, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		if r.resp.BaseOffset != int64(i*per) || r.resp.LastOffset != int64(i*per+per-1) {
			t.Fatalf("request %d at offsets %d..%d, want %d..%d", i, r.resp.BaseOffset, r.resp.LastOffset, i*per, i*per+per-1)
		}
	}
}

// countingStore counts object-store operations, to prove that moving a
// partition reads and writes nothing.
type countingStore struct {
	objstore.Store
	puts, gets atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data)
}

func (c *countingStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key, off, n)
}

// TestHandOffKeepsIdempotence moves a partition with ReleasePartitions and
// retries a committed request at the new owner: the sequence state
// travelled in the partition's metadata, so the retry is not written
// twice. The move itself touches no object.
func TestHandOffKeepsIdempotence(t *testing.T) {
	var cs *countingStore
	e1 := newEnv(t, func(c *Config) { cs = &countingStore{Store: c.Store}; c.Store = cs })
	e2 := newEnv(t, func(c *Config) { c.Meta, c.Store = e1.meta, e1.store })
	top := e1.createTopic(t, "handoff", 2)
	ctx := testCtx(t)
	req := idemBatch(t, "x", 42, 0, 4)
	if _, err := e1.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: append([]byte(nil), req...)}); err != nil {
		t.Fatal(err)
	}

	puts, gets := cs.puts.Load(), cs.gets.Load()
	resp, err := e1.cli.ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{
		Partitions: []*stratav1.PartitionRef{{Topic: top.Name, Partition: 0}}, Target: e2.b.ID(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Released) != 1 || resp.Released[0].Epoch != 2 {
		t.Fatalf("released %v, want partition 0 at epoch 2", resp.Released)
	}
	if cs.puts.Load() != puts || cs.gets.Load() != gets {
		t.Fatalf("hand-off did %d PUTs and %d GETs, want none", cs.puts.Load()-puts, cs.gets.Load()-gets)
	}
	if _, err := e1.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: batch(t, "y", 1)}); !errors.Is(apiErr(err), apierr.ErrNotOwner) {
		t.Fatalf("old owner after hand-off: %v, want NOT_OWNER", err)
	}
	eventually(t, func() bool { ep, ok := e2.b.ownedEpoch(top.ID, 0); return ok && ep == 2 })

	got, err := e2.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: append([]byte(nil), req...)})
	if err != nil {
		t.Fatal(err)
	}
	if got.BaseOffset != 0 || got.LastOffset != 3 {
		t.Fatalf("retry at the new owner got %d..%d, want the original 0..3", got.BaseOffset, got.LastOffset)
	}
	if got, err := e2.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: idemBatch(t, "z", 42, 4, 1)}); err != nil || got.BaseOffset != 4 {
		t.Fatalf("next request at the new owner: %v, %v; want offset 4", got, err)
	}
	if n := len(e1.readPartition(t, top.ID, 0)); n != 5 {
		t.Fatalf("partition holds %d records, want 5", n)
	}
}

// TestHandOffUnderLoad hands partitions over while producers write to
// them: every produce is either committed by the old owner or refused with
// NOT_OWNER (retriable), offsets stay dense, and the pause is short.
func TestHandOffUnderLoad(t *testing.T) {
	e1 := newEnv(t)
	e2 := newEnv(t, func(c *Config) { c.Meta, c.Store = e1.meta, e1.store })
	top := e1.createTopic(t, "load", 4)
	ctx := testCtx(t)

	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		acked   atomic.Int64
		refused atomic.Int64
		failed  = make(chan error, 4)
	)
	for p := range int32(4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := e1.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: p, Batches: batch(t, "l", 10)})
				switch {
				case err == nil:
					acked.Add(10)
				case errors.Is(apiErr(err), apierr.ErrNotOwner):
					refused.Add(1)
					return
				default:
					failed <- err
					return
				}
			}
		}()
	}
	eventually(t, func() bool { return acked.Load() >= 400 })
	start := time.Now()
	refs := []*stratav1.PartitionRef{{Topic: top.Name, Partition: 0}, {Topic: top.Name, Partition: 1}, {Topic: top.Name, Partition: 2}, {Topic: top.Name, Partition: 3}}
	resp, err := e1.cli.ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{Partitions: refs, Target: e2.b.ID()})
	took := time.Since(start)
	close(stop)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Released) != 4 {
		t.Fatalf("released %d partitions, want 4", len(resp.Released))
	}
	t.Logf("hand-off of 4 partitions under load took %v (%d records acked, %d produces refused)", took, acked.Load(), refused.Load())
	if took > time.Second {
		t.Errorf("hand-off took %v, want well under a second", took)
	}
	total := 0
	for p := range int32(4) {
		eventually(t, func() bool { _, ok := e2.b.ownedEpoch(top.ID, p); return ok })
		if _, err := e2.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: p, Batches: batch(t, "n", 1)}); err != nil {
			t.Fatal(err)
		}
		total += len(e1.readPartition(t, top.ID, p))
	}
	if int64(total) != acked.Load()+4 {
		t.Fatalf("partitions hold %d records, want %d acknowledged + 4", total, acked.Load())
	}
}

// TestDrainReleasesEverything drains a broker: it marks itself draining
// and releases every partition (no target), so placement can move them.
func TestDrainReleasesEverything(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "drain", 3)
	ctx := testCtx(t)
	resp, err := e.cli.ReleasePartitions(ctx, &stratav1.ReleasePartitionsRequest{Drain: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Released) != 3 {
		t.Fatalf("released %v, want 3 partitions", resp.Released)
	}
	for p := range int32(3) {
		st, err := e.meta.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Broker != "" || st.Epoch != 2 {
			t.Fatalf("partition %d after drain: %+v, want no owner at epoch 2", p, st)
		}
	}
	brokers, _, err := e.meta.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(brokers) != 1 || !brokers[0].Draining {
		t.Fatalf("brokers after drain: %+v, want this one draining", brokers)
	}
	// Bad requests.
	for _, req := range []*stratav1.ReleasePartitionsRequest{
		{},
		{Partitions: []*stratav1.PartitionRef{{Topic: top.Name}}, Target: e.b.ID()},
		{Partitions: []*stratav1.PartitionRef{{Topic: top.Name}}, Target: "bad/id"},
		{Partitions: []*stratav1.PartitionRef{{Topic: top.Name, Partition: 9}}},
	} {
		if _, err := e.cli.ReleasePartitions(ctx, req); err == nil {
			t.Errorf("ReleasePartitions(%v) succeeded, want an error", req)
		}
	}
}

// TestIdempotentRetryFromLog retries a committed request older than every
// request the broker remembers of its producer (as after a failover, when
// only the last committed one travels in etcd): its offsets are found in
// the log and it is not written again. Interleaved plain records from
// another producer make sure offsets come from the log, not arithmetic.
func TestIdempotentRetryFromLog(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "idem-log", 1)
	ctx := testCtx(t)
	send := func(b []byte) (*stratav1.ProduceResponse, error) {
		return e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: top.Name, Partition: 0, Batches: b})
	}
	type sent struct {
		batch      []byte
		base, last int64
	}
	var reqs []sent
	seq := int32(0)
	for i := range seqHistory + 3 {
		if _, err := send(batch(t, fmt.Sprint("plain-", i), 2)); err != nil {
			t.Fatal(err)
		}
		b := idemBatch(t, fmt.Sprint("idem-", i), 99, seq, 3)
		resp, err := send(append([]byte(nil), b...))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, sent{b, resp.BaseOffset, resp.LastOffset})
		seq += 3
	}
	before := len(e.readPartition(t, top.ID, 0))
	for i, r := range reqs[:3] { // no longer remembered by the broker
		resp, err := send(append([]byte(nil), r.batch...))
		if err != nil {
			t.Fatalf("retry of request %d: %v", i, err)
		}
		if resp.BaseOffset != r.base || resp.LastOffset != r.last {
			t.Fatalf("retry of request %d answered %d..%d, want %d..%d", i, resp.BaseOffset, resp.LastOffset, r.base, r.last)
		}
	}
	if after := len(e.readPartition(t, top.ID, 0)); after != before {
		t.Fatalf("partition grew from %d to %d records: a retry was written again", before, after)
	}
	if n := counterValue(t, e.b.metrics.lookupBytes); n == 0 {
		t.Fatal("strata_broker_retry_lookup_bytes_total is 0 after retries answered from the log")
	}
	// A retry of part of an old request (its second record) maps into it.
	resp, err := send(idemBatch(t, "part", 99, 1, 1))
	if err != nil || resp.BaseOffset != reqs[0].base+1 || resp.LastOffset != reqs[0].base+1 {
		t.Fatalf("retry of sequence 1: %v, %v; want offset %d", resp, err, reqs[0].base+1)
	}
}

// TestStartFencesPredecessor: partitions etcd still assigns to this
// broker's ID — a killed predecessor's, more than one transaction holds —
// are owned at once when the broker is ready, each at a higher epoch, so
// the predecessor's commits at the old epochs are refused.
func TestStartFencesPredecessor(t *testing.T) {
	m := newMeta(t)
	ctx := testCtx(t)
	const n = 300 // several AssignPartitions transactions
	top, err := m.CreateTopic(ctx, meta.Topic{Name: "fence", Partitions: n, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("b-%d", brokerSeq.Add(1))
	old := make([]meta.PartitionState, n)
	for p := range int32(n) {
		st, err := m.GetPartition(ctx, top.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if old[p], err = m.AssignPartition(ctx, st, id); err != nil {
			t.Fatal(err)
		}
	}
	// A state left for a deleted topic (an assignment that raced the
	// delete): fenced too, but the view never shows it, so Start must not
	// wait for it.
	if _, err := m.AssignPartition(ctx, meta.PartitionState{TopicID: "deleted-topic", Partition: 0}, id); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.Meta, c.ID, c.ReplaceRegistration = m, id, true })
	for p := range int32(n) {
		ep, ok := e.b.ownedEpoch(top.ID, p)
		if !ok || ep <= old[p].Epoch {
			t.Fatalf("partition %d right after Ready: owned %v at epoch %d, want above the predecessor's %d", p, ok, ep, old[p].Epoch)
		}
	}
	errs := m.CommitSegments(ctx, []meta.Commit{{Broker: id, Epoch: old[0].Epoch, Entry: meta.SegmentEntry{
		TopicID: top.ID, Partition: 0, FirstOffset: 0, LastOffset: 0, ObjectKey: "stale", ObjectSize: 1, Len: 1}}})
	if !errors.Is(errs[0], meta.ErrFenced) {
		t.Fatalf("the predecessor's commit at epoch %d: %v, want ErrFenced", old[0].Epoch, errs[0])
	}
}

// TestStartReplacesGonePredecessor: a broker restarted with its ID takes
// over a registration whose process is gone — nothing listens at its
// address — instead of waiting out the old lease (30 s here, longer than
// the start may take). One whose address still accepts connections (a
// live or frozen process) is left to its lease.
func TestStartReplacesGonePredecessor(t *testing.T) {
	m := newMeta(t)
	ctx := testCtx(t)
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close() // refused from now on
	alive, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()

	for _, tc := range []struct {
		name, addr string
		replaced   bool
	}{{"gone", goneAddr, true}, {"alive", alive.Addr().String(), false}} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("b-%d", brokerSeq.Add(1))
			old, err := m.RegisterBroker(ctx, meta.BrokerInfo{ID: id, Addr: tc.addr}, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close(ctx)
			fs, err := objstore.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			b, err := New(Config{ID: id, Meta: m, Store: fs, LeaseTTL: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err = b.Start(sctx)
			if tc.replaced && err != nil {
				t.Fatalf("start over a gone predecessor's registration: %v", err)
			}
			if !tc.replaced && err == nil {
				t.Fatal("start took over the registration of a process that still accepts connections")
			}
		})
	}
}
