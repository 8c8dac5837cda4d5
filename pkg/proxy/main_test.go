package proxy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// etcd is one real etcd server shared by the package's tests; each test
// works under a prefix of its own.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// env is one proxy on a fresh etcd prefix and a fresh filesystem store.
type env struct {
	t      *testing.T
	ctx    context.Context
	meta   *meta.Store
	store  *countingStore
	srv    *Server
	client stratav1.StrataClient
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ms, err := meta.New(meta.Config{
		Endpoints: etcd.Endpoints(),
		Prefix:    testenv.Prefix(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, meta: ms, store: &countingStore{Store: fs}}
	cfg := Config{ListenAddr: "127.0.0.1:0", Meta: ms, Store: e.store, Registry: prometheus.NewRegistry()}
	for _, f := range mutate {
		f(&cfg)
	}
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Error(err)
		}
	})
	select {
	case <-e.srv.Ready():
	case <-ctx.Done():
		t.Fatal("proxy never became ready")
	}
	conn, err := rpc.Dial(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.client = stratav1.NewStrataClient(conn)
	return e
}

// createTopic creates a topic with n partitions.
func (e *env) createTopic(name string, n int32) meta.Topic {
	e.t.Helper()
	top, err := e.meta.CreateTopic(e.ctx, meta.Topic{Name: name, Partitions: n, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return top
}

// assign gives a partition to broker ("" releases it).
func (e *env) assign(topicID string, p int32, broker string) {
	e.t.Helper()
	st, err := e.meta.GetPartition(e.ctx, topicID, p)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.meta.AssignPartition(e.ctx, st, broker); err != nil {
		e.t.Fatal(err)
	}
}

// waitView waits on the proxy's view until cond holds.
func (e *env) waitView(what string, cond func(v *meta.View) bool) {
	e.t.Helper()
	v := e.srv.view
	for {
		ch := v.Changed()
		if cond(v) {
			return
		}
		select {
		case <-ch:
		case <-e.ctx.Done():
			e.t.Fatalf("view never showed %s", what)
		}
	}
}

// waitCounter polls a metric until it reaches at least n, with a deadline.
func (e *env) waitCounter(what string, c prometheus.Counter, n float64) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(c) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never reached %v", what, n)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// produce sends batches through the proxy and fails the test on error.
func (e *env) produce(topic string, p int32, batches ...[]byte) *stratav1.ProduceResponse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	resp, err := e.client.Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: p, Batches: concat(batches)})
	if err != nil {
		e.t.Fatalf("produce %s/%d: %v", topic, p, err)
	}
	return resp
}

func (e *env) fetch(req *stratav1.FetchRequest) *stratav1.FetchResponse {
	e.t.Helper()
	resp, err := e.client.Fetch(e.ctx, req)
	if err != nil {
		e.t.Fatalf("fetch %v: %v", req, err)
	}
	return resp
}

func concat(bs [][]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// batch encodes n records whose timestamps are ts, ts+1, ….
func batch(t *testing.T, n int, ts int64) []byte {
	t.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: ts + int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "value-%d-%d", ts, i)}
	}
	b, err := segment.EncodeBatch(recs, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// baseOffsets returns the base offsets of the batches in b.
func baseOffsets(t *testing.T, b []byte) []int64 {
	t.Helper()
	hs, err := segment.SplitBatches(b)
	if err != nil {
		t.Fatalf("returned batches: %v", err)
	}
	out := make([]int64, len(hs))
	for i, h := range hs {
		out[i] = h.BaseOffset
	}
	return out
}

// wantErr checks that err is an API error matching sentinel.
func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, sentinel)
	}
	if got := apierr.FromStatus(err); !errors.Is(got, sentinel) {
		t.Fatalf("%s: error %v, want %v", what, got, sentinel)
	}
}

// countingStore counts the reads that reach the object store.
type countingStore struct {
	objstore.Store
	gets  atomic.Int64
	bytes atomic.Int64 // bytes the gets returned
}

func (s *countingStore) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	s.gets.Add(1)
	b, err := s.Store.Get(ctx, key, off, length)
	s.bytes.Add(int64(len(b)))
	return b, err
}

func (s *countingStore) List(ctx context.Context, prefix string) iter.Seq2[objstore.ObjectInfo, error] {
	return s.Store.List(ctx, prefix)
}

// testBroker is a tiny but real broker: it serves the Broker service,
// builds a segment object per produce, PUTs it and commits it with the
// fencing commit, so acks mean what they mean in Strata.
type testBroker struct {
	stratav1.UnimplementedBrokerServer
	id    string
	addr  string
	meta  *meta.Store
	store objstore.Store
	calls atomic.Int64
	// streams counts the ProduceStreams opened to it; legacy makes them
	// Unimplemented.
	streams atomic.Int64
	legacy  atomic.Bool
	// streamed counts the produces that came over a stream; holds the
	// holds that messages marked more took, and held those not yet
	// released.
	streamed, holds, held atomic.Int64

	mu   sync.Mutex // serialises Produce; guards seq and hook
	seq  int
	hook func() // runs at the start of each Produce, if set
}

func (e *env) startBroker(id string) *testBroker {
	e.t.Helper()
	b := &testBroker{id: id, meta: e.meta, store: e.store.Store}
	srv := rpc.NewServer(e.srv.log)
	stratav1.RegisterBrokerServer(srv, b)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	b.addr = lis.Addr().String()
	go srv.Serve(lis)
	srv.SetServing(true)
	e.t.Cleanup(srv.Stop)
	reg, err := e.meta.RegisterBroker(e.ctx, meta.BrokerInfo{ID: id, Addr: b.addr}, 10*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { reg.Close(context.Background()) })
	e.waitView("broker "+id, func(v *meta.View) bool { _, ok := v.Broker(id); return ok })
	return b
}

// ProduceStream serves produces over a stream with Produce, as a broker
// does; legacy makes it Unimplemented, as on a broker before it.
func (b *testBroker) ProduceStream(stream stratav1.Broker_ProduceStreamServer) error {
	if b.legacy.Load() {
		return b.UnimplementedBrokerServer.ProduceStream(stream)
	}
	b.streams.Add(1)
	produce := func(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
		b.streamed.Add(1)
		rpc.ReleaseHold(ctx)
		return b.Produce(ctx, req)
	}
	return rpc.ServeProduceStream(stream, produce, func() func() {
		b.holds.Add(1)
		b.held.Add(1)
		var once sync.Once
		return func() { once.Do(func() { b.held.Add(-1) }) }
	})
}

func (b *testBroker) setHook(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hook = f
}

func (b *testBroker) Produce(ctx context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	b.calls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hook != nil {
		b.hook()
	}
	top, err := b.meta.GetTopic(ctx, req.Topic)
	if err != nil {
		return nil, err
	}
	st, err := b.meta.GetPartition(ctx, top.ID, req.Partition)
	if err != nil {
		return nil, err
	}
	if st.Broker != b.id {
		return nil, apierr.Errorf(apierr.ErrNotOwner, "broker %s: %s/%d is owned by %q", b.id, req.Topic, req.Partition, st.Broker)
	}
	batches := append([]byte(nil), req.Batches...)
	next, err := segment.AssignOffsets(batches, st.NextOffset)
	if err != nil {
		return nil, apierr.Errorf(apierr.ErrCorruptBatch, "%v", err)
	}
	hs, _ := segment.SplitBatches(batches)
	for pos, i := 0, 0; i < len(hs); pos, i = pos+hs[i].Size(), i+1 {
		segment.SetPartitionLeaderEpoch(batches[pos:], int32(st.Epoch))
	}
	w := segment.NewWriter(segment.WriterOptions{})
	if err := w.Add(top.ID, req.Partition, batches); err != nil {
		return nil, apierr.Errorf(apierr.ErrCorruptBatch, "%v", err)
	}
	obj, footer, err := w.Finish()
	if err != nil {
		return nil, err
	}
	b.seq++
	key := fmt.Sprintf("test/%s/%06d", b.id, b.seq)
	if err := b.store.Put(ctx, key, obj); err != nil {
		return nil, apierr.Errorf(apierr.ErrStorageUnavailable, "%v", err)
	}
	c := footer.Chunks[0]
	entry := meta.SegmentEntry{
		ObjectKey: key, ObjectSize: int64(len(obj)), Pos: c.Position, Len: c.Length,
		FirstOffset: c.FirstOffset, LastOffset: c.LastOffset,
		MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp, CreatedMs: time.Now().UnixMilli(),
		TopicID: top.ID, Partition: req.Partition,
	}
	if err := b.meta.CommitSegments(ctx, []meta.Commit{{Broker: b.id, Epoch: st.Epoch, Entry: entry}})[0]; err != nil {
		return nil, err
	}
	// No transactions here: like a broker's, the answer reports every
	// offset below next stable.
	return &stratav1.ProduceResponse{BaseOffset: st.NextOffset, LastOffset: next - 1, Epoch: st.Epoch, LastStableOffset: next}, nil
}
