package lifecycle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// One etcd and one MinIO serve every test of the package; each test has its
// own etcd prefix and bucket.
var (
	etcd *testenv.Etcd
	seq  atomic.Int64
)

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// env is one test's cluster: a metadata store, an S3 store on MinIO, a
// topic, and a clock the test moves forward.
type env struct {
	t     testing.TB
	meta  *meta.Store
	store objstore.Store
	topic meta.Topic
	skew  atomic.Int64 // added to the wall clock
	flush int
	// want holds every record produced, by partition, with its offset.
	want map[int32][]segment.Record
	// view, if set (useView), is given to the managers.
	view *meta.View
}

func newEnv(t testing.TB, partitions int32) *env {
	t.Helper()
	n := seq.Add(1)
	ms, err := meta.New(meta.Config{Endpoints: etcd.Endpoints(), Prefix: fmt.Sprintf("/t-lc-%d-%d", time.Now().UnixNano(), n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	m := testenv.SharedMinIO(t)
	bucket := fmt.Sprintf("lifecycle-%d-%d", time.Now().UnixNano()%1e9, n)
	if err := m.CreateBucket(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	st, err := objstore.NewS3(context.Background(), objstore.S3Config{
		Endpoint: m.Endpoint, Region: testenv.MinIORegion, Bucket: bucket, PathStyle: true,
		AccessKeyID: testenv.MinIOAccessKey, SecretAccessKey: testenv.MinIOSecretKey,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, meta: ms, store: st, topic: createTopic(t, ms, "events", partitions), want: map[int32][]segment.Record{}}
}

// createTopic creates a topic without limits whose partitions broker b1
// owns.
func createTopic(t testing.TB, ms *meta.Store, name string, partitions int32) meta.Topic {
	t.Helper()
	ctx := context.Background()
	topic, err := ms.CreateTopic(ctx, meta.Topic{Name: name, Partitions: partitions, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for p := range partitions {
		cur, err := ms.GetPartition(ctx, topic.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ms.AssignPartition(ctx, cur, "b1"); err != nil {
			t.Fatal(err)
		}
	}
	return topic
}

// newGarbageEnv returns an env of two partitions whose 12 flush objects
// compaction has replaced: unreferenced now, and marked by the first
// collection once the clock has moved past the grace period.
func newGarbageEnv(t testing.TB) *env {
	t.Helper()
	e := newEnv(t, 2)
	for range 12 {
		e.produce(8)
	}
	e.advance(time.Minute)
	if _, err := e.manager(nil).Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// useView gives the env's managers a started view of its metadata.
func (e *env) useView() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.view = meta.NewView(e.meta)
	e.view.Start(ctx)
	e.t.Cleanup(func() { cancel(); e.view.Wait() })
	<-e.view.Ready()
}

// syncView waits, if the env has a view, until it shows every partition's
// next offset as produced.
func (e *env) syncView() {
	e.t.Helper()
	if e.view == nil {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for p := range e.topic.Partitions {
		for st, _ := e.view.Partition(e.topic.ID, p); st.NextOffset != int64(len(e.want[p])); st, _ = e.view.Partition(e.topic.ID, p) {
			if time.Now().After(deadline) {
				e.t.Fatalf("view shows partition %d at %d, want %d", p, st.NextOffset, len(e.want[p]))
			}
			time.Sleep(time.Millisecond) // polling the view, bounded by the deadline
		}
	}
}

func (e *env) now() time.Time          { return time.Now().Add(time.Duration(e.skew.Load())) }
func (e *env) advance(d time.Duration) { e.skew.Add(int64(d)) }

// manager returns a Manager on the env with small sizes and the given
// hook; mutate adjusts its config first.
func (e *env) manager(step func(context.Context, string) error, mutate ...func(*lifecycle.Config)) *lifecycle.Manager {
	e.t.Helper()
	cfg := lifecycle.Config{
		Meta: e.meta, Store: e.store, Logger: slog.New(slog.DiscardHandler),
		CompactMinAge: time.Second, CompactEntryBytes: 8 << 10, CompactObjectBytes: 64 << 10,
		CompactMinInputs: 4, CompactBytesPerSec: -1, GCGrace: time.Minute, Now: e.now, View: e.view,
	}
	for _, f := range mutate {
		f(&cfg)
	}
	if step != nil {
		cfg.Hooks = &lifecycle.Hooks{Step: step}
	}
	m, err := lifecycle.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// produce writes one flush object holding a chunk of n records (two
// batches) for each partition, and commits it as a broker would.
func (e *env) produce(n int) {
	e.t.Helper()
	ctx := context.Background()
	e.flush++
	w := segment.NewWriter(segment.WriterOptions{})
	ts := e.now().UnixMilli()
	var commits []meta.Commit
	key := fmt.Sprintf("segments/flush-%06d", e.flush)
	for p := range e.topic.Partitions {
		base := int64(len(e.want[p]))
		var recs []segment.Record
		for i := range n {
			off := base + int64(i)
			r := segment.Record{
				Offset: off, Timestamp: ts + int64(i),
				Key:     fmt.Appendf(nil, "k-%d-%d", p, off),
				Value:   bytes.Repeat([]byte{byte(off)}, 100+int(off%50)),
				Headers: []segment.Header{{Key: "h", Value: fmt.Appendf(nil, "%d", off)}},
			}
			if off%7 == 0 {
				r.Key = nil // nil keys survive too
			}
			recs = append(recs, r)
		}
		half := n / 2
		var chunk []byte
		for _, part := range [][]segment.Record{recs[:half], recs[half:]} {
			b, err := segment.EncodeBatch(part, segment.BatchOptions{})
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := segment.AssignOffsets(b, part[0].Offset); err != nil {
				e.t.Fatal(err)
			}
			chunk = append(chunk, b...)
		}
		if err := w.Add(e.topic.ID, p, chunk); err != nil {
			e.t.Fatal(err)
		}
		e.want[p] = append(e.want[p], recs...)
	}
	obj, footer, err := w.Finish()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range footer.Chunks {
		commits = append(commits, meta.Commit{Broker: "b1", Epoch: 1, Entry: meta.SegmentEntry{
			TopicID: c.TopicID, Partition: c.Partition, ObjectKey: key, ObjectSize: int64(len(obj)),
			Pos: c.Position, Len: c.Length, FirstOffset: c.FirstOffset, LastOffset: c.LastOffset,
			MinTimestamp: c.MinTimestamp, MaxTimestamp: c.MaxTimestamp, CreatedMs: e.now().UnixMilli(),
		}})
	}
	if err := e.store.Put(ctx, key, obj); err != nil {
		e.t.Fatal(err)
	}
	for i, err := range e.meta.CommitSegments(ctx, commits) {
		if err != nil {
			e.t.Fatalf("commit %d: %v", i, err)
		}
	}
}

// read returns every record of partition p from its log start, checking
// that offsets are dense up to the high watermark.
func (e *env) read(p int32) (logStart int64, recs []segment.Record) {
	e.t.Helper()
	ctx := context.Background()
	l, err := e.meta.ReadLayout(ctx, e.topic.ID, p)
	if err != nil {
		e.t.Fatal(err)
	}
	next := l.LogStart
	if len(l.Entries) > 0 && l.Entries[0].FirstOffset < next && l.Entries[0].LastOffset >= next {
		next = l.Entries[0].FirstOffset // DeleteRecords put the log start inside it
	}
	for _, en := range l.Entries {
		if en.FirstOffset != next {
			e.t.Fatalf("partition %d: entry at %d, want %d", p, en.FirstOffset, next)
		}
		chunk, err := e.store.Get(ctx, en.ObjectKey, en.Pos, en.Len)
		if err != nil {
			e.t.Fatalf("partition %d entry %d: %v", p, en.FirstOffset, err)
		}
		hs, err := segment.SplitBatches(chunk)
		if err != nil {
			e.t.Fatal(err)
		}
		at := 0
		for _, h := range hs {
			rs, err := segment.DecodeRecords(chunk[at : at+h.Size()])
			if err != nil {
				e.t.Fatal(err)
			}
			at += h.Size()
			for _, r := range rs {
				if r.Offset >= l.LogStart { // readers skip the records below it
					recs = append(recs, r)
				}
			}
		}
		next = en.LastOffset + 1
	}
	if next != l.NextOffset {
		e.t.Fatalf("partition %d: entries end at %d, high watermark %d", p, next, l.NextOffset)
	}
	return l.LogStart, recs
}

// checkAll checks that every partition reads back exactly the records
// produced from its log start on, and returns the entry count.
func (e *env) checkAll() (entries int) {
	e.t.Helper()
	for p := range e.topic.Partitions {
		ls, got := e.read(p)
		want := e.want[p][ls:]
		if len(got) != len(want) {
			e.t.Fatalf("partition %d: read %d records from %d, want %d", p, len(got), ls, len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
				!bytes.Equal(g.Value, w.Value) || !reflect.DeepEqual(g.Headers, w.Headers) {
				e.t.Fatalf("partition %d record %d: got %+v, want %+v", p, i, g, w)
			}
		}
		l, err := e.meta.ReadLayout(context.Background(), e.topic.ID, p)
		if err != nil {
			e.t.Fatal(err)
		}
		entries += len(l.Entries)
	}
	return entries
}

// objects lists the keys in the store.
func (e *env) objects() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for o, err := range e.store.List(context.Background(), "segments/") {
		if err != nil {
			e.t.Fatal(err)
		}
		out[o.Key] = true
	}
	return out
}

// referencedObjects returns the object keys the topic's entries name.
func (e *env) referencedObjects() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for p := range e.topic.Partitions {
		l, err := e.meta.ReadLayout(context.Background(), e.topic.ID, p)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, en := range l.Entries {
			out[en.ObjectKey] = true
		}
	}
	return out
}

// referencedExist checks that every object an entry references exists.
func (e *env) referencedExist() {
	e.t.Helper()
	refs, _, err := e.meta.ReferencedObjects(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	objs := e.objects()
	for k := range refs {
		if !objs[k] {
			e.t.Fatalf("referenced object %s was deleted", k)
		}
	}
}

var errCrash = errors.New("injected crash")

// crashAt returns a hook that fails at the named step.
func crashAt(name string) func(context.Context, string) error {
	return func(_ context.Context, step string) error {
		if step == name {
			return errCrash
		}
		return nil
	}
}
