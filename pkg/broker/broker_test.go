package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestProduceDenseOffsets: many concurrent produces to several partitions
// get dense offsets, the committed entries are dense, and every record
// reads back from the segment objects at the offset its ack named.
func TestProduceDenseOffsets(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "dense", 4)
	ctx := testCtx(t)

	const producers, perProducer = 6, 25
	type ack struct {
		p          int32
		tag        string
		base, last int64
		n          int
	}
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	for g := range producers {
		wg.Go(func() {
			for i := range perProducer {
				p := int32((g + i) % 4)
				n := 1 + (g+i)%5
				tag := fmt.Sprintf("g%d-i%d", g, i)
				resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "dense", Partition: p, Batches: batch(t, tag, n)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acks = append(acks, ack{p, tag, resp.BaseOffset, resp.LastOffset, n})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for p := range int32(4) {
		values := e.readPartition(t, top.ID, p)
		var mine []ack
		for _, a := range acks {
			if a.p == p {
				mine = append(mine, a)
			}
		}
		slices.SortFunc(mine, func(a, b ack) int { return int(a.base - b.base) })
		next := int64(0)
		for _, a := range mine {
			if a.base != next || a.last != a.base+int64(a.n)-1 {
				t.Fatalf("partition %d: ack %+v, want base %d", p, a, next)
			}
			for i := range a.n {
				if got, want := values[a.base+int64(i)], fmt.Sprintf("%s-%d", a.tag, i); got != want {
					t.Fatalf("partition %d offset %d: value %q, want %q", p, a.base+int64(i), got, want)
				}
			}
			next = a.last + 1
		}
		if next != int64(len(values)) {
			t.Fatalf("partition %d: acks cover %d offsets, log has %d", p, next, len(values))
		}
	}
}

// TestOneFlushHoldsSeveralPartitions: produces to three partitions that
// arrive together go into one segment object with one entry per partition.
func TestOneFlushHoldsSeveralPartitions(t *testing.T) {
	size := len(batch(t, "x", 10))
	e := newEnv(t, func(c *Config) {
		c.FlushInterval = time.Minute // only the byte threshold flushes
		c.LingerWhenIdle = true
		c.FlushBytes = 3 * size
	})
	top := e.createTopic(t, "multi", 3)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for p := range int32(3) {
		wg.Go(func() {
			resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "multi", Partition: p, Batches: batch(t, "x", 10)})
			if err != nil {
				t.Error(err)
			} else if resp.BaseOffset != 0 || resp.LastOffset != 9 {
				t.Errorf("partition %d: offsets %d..%d, want 0..9", p, resp.BaseOffset, resp.LastOffset)
			}
		})
	}
	wg.Wait()
	keys := map[string]int{}
	for p := range int32(3) {
		ent, err := e.meta.FindSegment(ctx, top.ID, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		keys[ent.ObjectKey]++
		e.readPartition(t, top.ID, p)
	}
	if len(keys) != 1 {
		t.Fatalf("entries name objects %v, want one object", keys)
	}
}

func TestProduceNotOwned(t *testing.T) {
	e := newEnv(t)
	top, err := e.meta.CreateTopic(testCtx(t), meta.Topic{Name: "other", Partitions: 2, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	e.assign(t, top.ID, 1, "someone-else")
	for _, p := range []int32{0, 1} { // unassigned, and owned by another broker
		_, err := e.cli.Produce(testCtx(t), &stratav1.ProduceRequest{Topic: "other", Partition: p, Batches: batch(t, "x", 1)})
		err = apiErr(err)
		if !errors.Is(err, apierr.ErrNotOwner) || !apierr.Retriable(err) {
			t.Errorf("partition %d: err = %v, want retriable NOT_OWNER", p, err)
		}
	}
}

// TestOwnershipMovesWhilePending: produces waiting on a flush whose PUT is
// slow fail with NOT_OWNER when the partition moves to another broker; the
// broker's commit is fenced and nothing acked is lost.
func TestOwnershipMovesWhilePending(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "moving", 1)
	ctx := testCtx(t)
	if _, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "moving", Batches: batch(t, "acked", 5)}); err != nil {
		t.Fatal(err)
	}

	hold, started := make(chan struct{}), make(chan string, 16)
	e.store.mu.Lock()
	e.store.hold, e.store.started = hold, started
	e.store.mu.Unlock()
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "moving", Batches: batch(t, fmt.Sprint("lost", i), 3)})
			errs <- err
		}()
	}
	<-started // a flush is in its PUT
	e.assign(t, top.ID, 0, "new-owner")
	close(hold)
	for range 4 {
		if err := apiErr(<-errs); !errors.Is(err, apierr.ErrNotOwner) {
			t.Errorf("pending produce: err = %v, want NOT_OWNER", err)
		}
	}
	_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "moving", Batches: batch(t, "late", 1)})
	if err := apiErr(err); !errors.Is(err, apierr.ErrNotOwner) {
		t.Errorf("produce after the move: err = %v, want NOT_OWNER", err)
	}
	values := e.readPartition(t, top.ID, 0)
	if len(values) != 5 || values[0] != "acked-0" {
		t.Fatalf("log holds %q, want the 5 acked records only", values)
	}
	st, _ := e.meta.GetPartition(ctx, top.ID, 0)
	if st.Broker != "new-owner" {
		t.Fatalf("owner %q, want new-owner", st.Broker)
	}
}

// TestForgottenPartitionTakenBack: a partition the broker forgot while
// the placement stayed the same (a failed flush whose state it could not
// read back drops it) is owned again by the periodic ownership check,
// although no placement change wakes the loop.
func TestForgottenPartitionTakenBack(t *testing.T) {
	// No load reports either: each changes the broker's registration,
	// which wakes the loop as a placement change.
	e := newEnv(t, func(c *Config) { c.LoadReportInterval = time.Hour })
	top := e.createTopic(t, "forgot", 1)
	ep, _ := e.b.ownedEpoch(top.ID, 0)
	e.b.mu.Lock()
	e.b.dropLocked(e.b.parts[meta.PartitionID{TopicID: top.ID, Partition: 0}], apierr.Errorf(apierr.ErrStorageUnavailable, "test: state unreadable"))
	e.b.mu.Unlock()
	eventually(t, func() bool {
		got, ok := e.b.ownedEpoch(top.ID, 0)
		return ok && got == ep
	})
	if _, err := e.cli.Produce(testCtx(t), &stratav1.ProduceRequest{Topic: "forgot", Partition: 0, Batches: batch(t, "r", 1)}); err != nil {
		t.Fatalf("produce to the partition taken back: %v", err)
	}
}

func TestProduceBadInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRequestBytes = 64 << 10 })
	top := e.createTopic(t, "strict", 2)
	if _, err := e.meta.CreateTopic(testCtx(t), meta.Topic{Name: "small", Partitions: 1, RetentionMs: -1, RetentionBytes: -1, MaxMessageBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	good := batch(t, "ok", 3)
	flipped := slices.Clone(good)
	flipped[len(flipped)-2] ^= 0xff
	big := batch(t, string(make([]byte, 100<<10)), 1)
	tests := []struct {
		name      string
		topic     string
		partition int32
		batches   []byte
		want      error
	}{
		{"unknown topic", "nope", 0, good, apierr.ErrUnknownTopic},
		{"partition out of range", "strict", 2, good, apierr.ErrPartitionRange},
		{"negative partition", "strict", -1, good, apierr.ErrPartitionRange},
		{"empty batches", "strict", 0, nil, apierr.ErrInvalidRequest},
		{"corrupt batch", "strict", 0, flipped, apierr.ErrCorruptBatch},
		{"truncated batch", "strict", 0, good[:len(good)-1], apierr.ErrCorruptBatch},
		{"garbage", "strict", 0, []byte("not a record batch at all, really"), apierr.ErrCorruptBatch},
		{"oversized request", "strict", 0, big, apierr.ErrRecordTooLarge},
		{"batch over topic limit", "small", 0, batch(t, string(make([]byte, 2000)), 1), apierr.ErrRecordTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.cli.Produce(testCtx(t), &stratav1.ProduceRequest{Topic: tt.topic, Partition: tt.partition, Batches: tt.batches})
			if err := apiErr(err); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Nothing was stored; the next good produce starts at 0.
	resp, err := e.cli.Produce(testCtx(t), &stratav1.ProduceRequest{Topic: "strict", Batches: good})
	if err != nil || resp.BaseOffset != 0 {
		t.Fatalf("good produce: %v, %v; want base 0", resp, err)
	}
	e.readPartition(t, top.ID, 0)
}

// TestPutFailureKeepsOffsetsDense: a failed PUT fails its produces and the
// produces of a later in-flight flush of the same partition; the partition
// then continues from the committed offset with no gap.
func TestPutFailureKeepsOffsetsDense(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "faulty", 1)
	ctx := testCtx(t)
	produce := func(tag string, n int) (*stratav1.ProduceResponse, error) {
		return e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "faulty", Batches: batch(t, tag, n)})
	}
	if _, err := produce("a", 10); err != nil {
		t.Fatal(err)
	}

	hold, started := make(chan struct{}), make(chan string, 16)
	e.store.mu.Lock()
	e.store.failNext, e.store.hold, e.store.started = 1, hold, started
	e.store.mu.Unlock()
	first, second := make(chan error, 1), make(chan error, 1)
	go func() { _, err := produce("b", 5); first <- err }()
	<-started // flush 1 (fails) is in its PUT
	go func() { _, err := produce("c", 5); second <- err }()
	<-started // flush 2 (would succeed) is in its PUT
	close(hold)
	for _, ch := range []chan error{first, second} {
		if err := apiErr(<-ch); !errors.Is(err, apierr.ErrStorageUnavailable) || !apierr.Retriable(err) {
			t.Errorf("err = %v, want retriable STORAGE_UNAVAILABLE", err)
		}
	}
	e.store.mu.Lock()
	e.store.hold, e.store.started = nil, nil
	e.store.mu.Unlock()

	resp, err := produce("d", 3)
	if err != nil {
		t.Fatal(err)
	}
	if resp.BaseOffset != 10 || resp.LastOffset != 12 {
		t.Fatalf("after the failure: offsets %d..%d, want 10..12", resp.BaseOffset, resp.LastOffset)
	}
	values := e.readPartition(t, top.ID, 0)
	if len(values) != 13 || values[10] != "d-0" {
		t.Fatalf("log %q, want a-0..a-9 then d-0..d-2", values)
	}
}

// TestCloseFlushesAndReleases: Close commits buffered data before it
// answers, releases the partition with epoch+1 and no owner, and ends the
// broker's registration.
// TestCloseEndsOpenProduceStreams: a proxy's produce stream that stays
// open (a frozen proxy never closes its side) does not hold Close: the
// broker answers what it holds, then cuts the stream.
func TestCloseEndsOpenProduceStreams(t *testing.T) {
	e := newEnv(t)
	e.createTopic(t, "streamed", 1)
	ctx := testCtx(t)
	st, err := e.cli.ProduceStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&stratav1.ProduceStreamRequest{Id: 1, Produce: &stratav1.ProduceRequest{Topic: "streamed", Batches: batch(t, "s", 2)}}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Recv(); err != nil || r.GetResponse().GetLastOffset() != 1 {
		t.Fatalf("produce on the stream: %v, %v", r, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a hang, not a slow Close: without the cut it never returns
		t.Fatal("Close waited for a produce stream its peer keeps open")
	}
	if _, err := st.Recv(); err == nil {
		t.Fatal("the stream outlived the broker")
	}
}

func TestCloseFlushesAndReleases(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.FlushInterval, c.LingerWhenIdle = time.Hour, true })
	top := e.createTopic(t, "closing", 1)
	ctx := testCtx(t)
	before, err := e.meta.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var resp *stratav1.ProduceResponse
	go func() {
		var err error
		resp, err = e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "closing", Batches: batch(t, "last", 4)})
		done <- err
	}()
	eventually(t, func() bool {
		e.b.mu.Lock()
		defer e.b.mu.Unlock()
		return e.b.bufBytes > 0
	})
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || resp.BaseOffset != 0 || resp.LastOffset != 3 {
		t.Fatalf("buffered produce: %v, %v; want offsets 0..3", resp, err)
	}
	after, err := e.meta.GetPartition(ctx, top.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after.Broker != "" || after.Epoch != before.Epoch+1 || after.NextOffset != 4 {
		t.Fatalf("after close: %+v, want no owner, epoch %d, next offset 4", after, before.Epoch+1)
	}
	brokers, _, err := e.meta.ListBrokers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range brokers {
		if b.ID == e.b.ID() {
			t.Fatalf("broker %s still registered after Close", b.ID)
		}
	}
	if _, err := e.b.Produce(ctx, &stratav1.ProduceRequest{Topic: "closing", Batches: batch(t, "x", 1)}); !errors.Is(err, apierr.ErrShuttingDown) {
		t.Fatalf("produce after Close: %v, want SHUTTING_DOWN", err)
	}
	e.readPartition(t, top.ID, 0)
}

// TestLeaseLossStopsProduces: when the broker's lease is revoked it answers
// NOT_OWNER, registers again, and then serves its partitions (still
// assigned to it) densely from the committed offset.
func TestLeaseLossStopsProduces(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "lease", 1)
	ctx := testCtx(t)
	if _, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "lease", Batches: batch(t, "a", 2)}); err != nil {
		t.Fatal(err)
	}
	e.b.mu.Lock()
	reg := e.b.registration
	e.b.mu.Unlock()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Revoke(ctx, reg.LeaseID()); err != nil {
		t.Fatal(err)
	}
	<-reg.Done()
	// Until it has registered again, or right after, the broker may answer
	// NOT_OWNER; eventually it serves again.
	eventually(t, func() bool {
		resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "lease", Batches: batch(t, "b", 1)})
		if err != nil {
			if err := apiErr(err); !errors.Is(err, apierr.ErrNotOwner) {
				t.Fatalf("during lease loss: %v, want NOT_OWNER", err)
			}
			return false
		}
		if resp.BaseOffset != 2 {
			t.Fatalf("after lease loss: base %d, want 2", resp.BaseOffset)
		}
		return true
	})
	if vs := e.readPartition(t, top.ID, 0); len(vs) != 3 {
		t.Fatalf("log %q, want 3 records", vs)
	}
}

// TestEtcdOutageDuringCommit: when etcd stops answering while a flush
// commits, the outcome is unknown; the produce fails retriably, the
// broker re-reads the partition once etcd is back and continues densely
// from whatever was committed, and every acked record is readable.
func TestEtcdOutageDuringCommit(t *testing.T) {
	m := newMeta(t, func(c *meta.Config) { c.RequestTimeout = 300 * time.Millisecond })
	e := newEnv(t, func(c *Config) { c.Meta = m; c.LeaseTTL = 5 * time.Second })
	top := e.createTopic(t, "outage", 1)
	ctx := testCtx(t)
	if _, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "outage", Batches: batch(t, "a", 3)}); err != nil {
		t.Fatal(err)
	}
	hold, started := make(chan struct{}), make(chan string, 16)
	e.store.mu.Lock()
	e.store.hold, e.store.started = hold, started
	e.store.mu.Unlock()
	errs := make(chan error, 1)
	go func() {
		_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "outage", Batches: batch(t, "b", 3)})
		errs <- err
	}()
	<-started
	if err := etcd.Pause(); err != nil {
		t.Fatal(err)
	}
	close(hold)
	err := apiErr(<-errs)
	if rerr := etcd.Resume(); rerr != nil {
		t.Fatal(rerr)
	}
	if !apierr.Retriable(err) {
		t.Fatalf("produce during the outage: %v, want a retriable error", err)
	}
	e.store.mu.Lock()
	e.store.hold, e.store.started = nil, nil
	e.store.mu.Unlock()

	var base int64
	eventually(t, func() bool {
		resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "outage", Batches: batch(t, "c", 1)})
		if err != nil {
			if !apierr.Retriable(apiErr(err)) {
				t.Fatalf("after the outage: %v", err)
			}
			return false
		}
		base = resp.BaseOffset
		return true
	})
	values := e.readPartition(t, top.ID, 0)
	// The unacked "b" batch may or may not have landed; "a" and "c" must.
	if values[0] != "a-0" || values[base] != "c-0" || (base != 3 && base != 6) || len(values) != int(base)+1 {
		t.Fatalf("log %q with c at %d", values, base)
	}
}

// TestBackPressure: while flushes cannot finish, produces beyond
// MaxBufferedBytes wait for room instead of buffering without bound.
func TestBackPressure(t *testing.T) {
	size := len(batch(t, "x", 10))
	e := newEnv(t, func(c *Config) {
		c.MaxInflightFlushes = 1
		c.MaxRequestBytes = size
		c.MaxBufferedBytes = size
	})
	e.createTopic(t, "slow", 1)
	ctx := testCtx(t)
	hold, started := make(chan struct{}), make(chan string, 16)
	e.store.mu.Lock()
	e.store.hold, e.store.started = hold, started
	e.store.mu.Unlock()
	errs := make(chan error, 2)
	go func() {
		_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "slow", Batches: batch(t, "x", 10)})
		errs <- err
	}()
	<-started // the only flush slot is taken
	go func() {
		_, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "slow", Batches: batch(t, "x", 10)})
		errs <- err
	}()
	eventually(t, func() bool { // the second produce fills the buffer
		e.b.mu.Lock()
		defer e.b.mu.Unlock()
		return e.b.bufBytes == size
	})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := e.cli.Produce(short, &stratav1.ProduceRequest{Topic: "slow", Batches: batch(t, "x", 10)})
	if err := apiErr(err); !errors.Is(err, apierr.ErrTimeout) {
		t.Fatalf("produce into a full buffer: %v, want TIMEOUT", err)
	}
	close(hold)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "slow", Batches: batch(t, "x", 10)})
	if err != nil || resp.BaseOffset != 20 {
		t.Fatalf("after the stall: %v, %v; want base 20", resp, err)
	}
}

func TestConfigValidate(t *testing.T) {
	fs := &faultStore{}
	m := &meta.Store{}
	ok := Config{Meta: m, Store: fs}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
	}{
		{"no meta", func(c *Config) { c.Meta = nil }},
		{"no store", func(c *Config) { c.Store = nil }},
		{"bad id", func(c *Config) { c.ID = "a/b" }},
		{"short lease", func(c *Config) { c.LeaseTTL = 500 * time.Millisecond }},
		{"fractional lease", func(c *Config) { c.LeaseTTL = 1500 * time.Millisecond }},
		{"negative interval", func(c *Config) { c.FlushInterval = -time.Second }},
		{"negative flush bytes", func(c *Config) { c.FlushBytes = -1 }},
		{"huge flush bytes", func(c *Config) { c.FlushBytes = MaxFlushBytes + 1 }},
		{"too many in flight", func(c *Config) { c.MaxInflightFlushes = MaxInflightFlushes + 1 }},
		{"negative request bytes", func(c *Config) { c.MaxRequestBytes = -1 }},
		{"buffer below request", func(c *Config) { c.MaxRequestBytes, c.MaxBufferedBytes = 2<<20, 1<<20 }},
		{"absolute prefix", func(c *Config) { c.ObjectPrefix = "/segments/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mut(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
}

// TestGroupCommit: flushes whose PUTs finish while an earlier flush is
// still in its PUT are committed together with it, in one commit; every
// produce gets its own dense offsets and the log reads back in order.
func TestGroupCommit(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic(t, "grouped", 2)
	ctx := testCtx(t)
	produce := func(p int32, tag string, n int) (*stratav1.ProduceResponse, error) {
		return e.cli.Produce(ctx, &stratav1.ProduceRequest{Topic: "grouped", Partition: p, Batches: batch(t, tag, n)})
	}
	if _, err := produce(0, "a", 10); err != nil {
		t.Fatal(err)
	}
	commits0, puts0 := histCount(t, e.b.metrics.commitTime), histCount(t, e.b.metrics.putTime)

	hold, started, done := make(chan struct{}), make(chan string, 16), make(chan string, 16)
	e.store.mu.Lock()
	e.store.hold, e.store.started, e.store.done = hold, started, done
	e.store.mu.Unlock()
	type result struct {
		resp *stratav1.ProduceResponse
		err  error
	}
	results := make([]chan result, 4)
	send := func(i int, p int32, tag string) {
		results[i] = make(chan result, 1)
		go func() { r, err := produce(p, tag, 5); results[i] <- result{r, err} }()
	}
	send(0, 0, "b")
	<-started // flush 1 is held in its PUT; later PUTs run through
	e.store.mu.Lock()
	e.store.hold = nil
	e.store.mu.Unlock()
	for i, pt := range []struct {
		p   int32
		tag string
	}{{0, "c"}, {1, "d"}, {0, "e"}} {
		send(i+1, pt.p, pt.tag)
		<-started
		<-done // its PUT ended; its commit waits behind flush 1
	}
	// The store returned; the broker counts a PUT once its flush is ready
	// to commit.
	eventually(t, func() bool { return histCount(t, e.b.metrics.putTime) == puts0+3 })
	close(hold)
	want := []struct {
		p          int32
		base, last int64
	}{{0, 10, 14}, {0, 15, 19}, {1, 0, 4}, {0, 20, 24}}
	for i, w := range want {
		r := <-results[i]
		if r.err != nil {
			t.Fatalf("produce %d: %v", i, r.err)
		}
		if r.resp.BaseOffset != w.base || r.resp.LastOffset != w.last {
			t.Fatalf("produce %d to partition %d: offsets %d..%d, want %d..%d", i, w.p, r.resp.BaseOffset, r.resp.LastOffset, w.base, w.last)
		}
	}
	if n := histCount(t, e.b.metrics.commitTime) - commits0; n != 1 {
		t.Fatalf("4 flushes took %d commits, want 1 (group commit)", n)
	}
	e.store.mu.Lock()
	e.store.started, e.store.done = nil, nil
	e.store.mu.Unlock()
	values := e.readPartition(t, top.ID, 0)
	if len(values) != 25 || values[10] != "b-0" || values[15] != "c-0" || values[24] != "e-4" {
		t.Fatalf("partition 0 reads %q", values)
	}
	if v := e.readPartition(t, top.ID, 1); len(v) != 5 || v[0] != "d-0" {
		t.Fatalf("partition 1 reads %q", v)
	}
}

// histCount is the number of observations in h.
func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// counterValue is c's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
