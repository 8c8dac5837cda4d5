package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// brokerSeq numbers the brokers the tests start.
var brokerSeq atomic.Int64

// newMeta returns a metadata store on the shared etcd under a fresh prefix.
func newMeta(t testing.TB, mutate ...func(*meta.Config)) *meta.Store {
	return testenv.NewMeta(t, etcd.Endpoints(), mutate...)
}

func testCtx(t testing.TB) context.Context { return testenv.Context(t) }

// faultStore wraps a real store and fails or holds PUTs on demand.
type faultStore struct {
	objstore.Store

	mu sync.Mutex // guards the fields below
	// failNext fails this many of the next PUTs (decided when each starts).
	failNext int
	// hold, if not nil, makes PUTs wait until it is closed.
	hold chan struct{}
	// started receives the key of each PUT as it starts, if not nil.
	started chan string
	// done receives the key of each PUT as it ends, if not nil.
	done chan string
}

var errInjected = errors.New("injected PUT failure")

func (f *faultStore) Put(ctx context.Context, key string, data []byte) error {
	f.mu.Lock()
	fail := f.failNext > 0
	if fail {
		f.failNext--
	}
	hold, started, done := f.hold, f.started, f.done
	f.mu.Unlock()
	if done != nil {
		defer func() { done <- key }()
	}
	if started != nil {
		started <- key
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errInjected
	}
	return f.Store.Put(ctx, key, data)
}

// env is one test's cluster: metadata, a store and a broker.
type env struct {
	meta  *meta.Store
	store *faultStore
	b     *Server
	cli   stratav1.BrokerClient
}

// newEnv starts a broker with test-friendly defaults changed by mutate
// (which may also replace Meta).
func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: &faultStore{Store: fs}}
	cfg := Config{
		ID:            fmt.Sprintf("b-%d", brokerSeq.Add(1)),
		Store:         e.store,
		FlushInterval: 2 * time.Millisecond,
		LeaseTTL:      2 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	}
	for _, f := range mutate {
		f(&cfg)
	}
	if cfg.Meta == nil {
		cfg.Meta = newMeta(t)
	}
	e.meta = cfg.Meta
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	<-b.Ready()
	conn, err := rpc.Dial(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.b, e.cli = b, stratav1.NewBrokerClient(conn)
	return e
}

// createTopic creates a topic and assigns every partition to the broker,
// waiting until the broker owns them all.
func (e *env) createTopic(t testing.TB, name string, n int32) meta.Topic {
	t.Helper()
	top, err := e.meta.CreateTopic(testCtx(t), meta.Topic{Name: name, Partitions: n, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for p := range n {
		e.assign(t, top.ID, p, e.b.ID())
	}
	return top
}

// assign gives a partition to broker and, when that is the test's broker,
// waits until it owns the partition at the new epoch.
func (e *env) assign(t testing.TB, topicID string, p int32, broker string) meta.PartitionState {
	t.Helper()
	ctx := testCtx(t)
	st, err := e.meta.GetPartition(ctx, topicID, p)
	if err != nil {
		t.Fatal(err)
	}
	st, err = e.meta.AssignPartition(ctx, st, broker)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		ep, ok := e.b.ownedEpoch(topicID, p)
		if broker == e.b.ID() {
			return ok && ep == st.Epoch
		}
		return !ok
	})
	return st
}

// ownedEpoch reports whether the broker owns a partition, and at which
// epoch.
func (s *Server) ownedEpoch(topicID string, p int32) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	part, ok := s.parts[meta.PartitionID{TopicID: topicID, Partition: p}]
	if !ok {
		return 0, false
	}
	return part.epoch, true
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, "condition", 20*time.Second, cond)
}

// batch encodes n records whose values are "<tag>-<i>".
func batch(t testing.TB, tag string, n int) []byte {
	t.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: time.Now().UnixMilli(), Key: []byte(tag), Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	b, err := segment.EncodeBatch(recs, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storeReader reads one object of a store as a segment.RangeReader.
type storeReader struct {
	s   objstore.Store
	key string
}

func (r storeReader) ReadRange(ctx context.Context, off, length int64) ([]byte, error) {
	return r.s.Get(ctx, r.key, off, length)
}

// readPartition checks that the partition's committed entries are dense
// from 0 to its next offset, reads every record back from the objects and
// returns the record values by offset.
func (e *env) readPartition(t testing.TB, topicID string, p int32) []string {
	t.Helper()
	ctx := testCtx(t)
	st, err := e.meta.GetPartition(ctx, topicID, p)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for ent, err := range e.meta.Segments(ctx, topicID, p, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if ent.FirstOffset != int64(len(values)) {
			t.Fatalf("%s/%d: entry starts at %d, want %d (gap or overlap)", topicID, p, ent.FirstOffset, len(values))
		}
		r, err := segment.Open(ctx, storeReader{e.store, ent.ObjectKey}, ent.ObjectSize)
		if err != nil {
			t.Fatalf("open %s: %v", ent.ObjectKey, err)
		}
		c, ok := r.Footer().Find(topicID, p)
		if !ok || c.Position != ent.Pos || c.Length != ent.Len || c.FirstOffset != ent.FirstOffset || c.LastOffset != ent.LastOffset {
			t.Fatalf("entry %+v does not match chunk %+v", ent, c)
		}
		b, err := r.ReadChunk(ctx, topicID, p, ent.FirstOffset, ent.Len)
		if err != nil {
			t.Fatal(err)
		}
		for pos := 0; pos < len(b); {
			h, err := segment.ParseBatchHeader(b[pos:])
			if err != nil {
				t.Fatal(err)
			}
			recs, err := segment.DecodeRecords(b[pos:])
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if rec.Offset != int64(len(values)) {
					t.Fatalf("%s/%d: record offset %d, want %d", topicID, p, rec.Offset, len(values))
				}
				values = append(values, string(rec.Value))
			}
			pos += h.Size()
		}
		if int64(len(values)) != ent.LastOffset+1 {
			t.Fatalf("%s/%d: entry ends at %d, records end at %d", topicID, p, ent.LastOffset, len(values)-1)
		}
	}
	if st.NextOffset != int64(len(values)) {
		t.Fatalf("%s/%d: next offset %d, entries hold %d records", topicID, p, st.NextOffset, len(values))
	}
	return values
}

// apiErr converts a gRPC call's error as a client would.
func apiErr(err error) error { return apierr.FromStatus(err) }
