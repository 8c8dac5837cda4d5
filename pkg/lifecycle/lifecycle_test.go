package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestRetentionByTimeAndBytes: entries past the topic's time limit, then
// past its size limit, are dropped whole, the log start moves to the first
// entry kept, and every record from there on reads back unchanged; while
// the topic is compacted (cleanup.policy=compact) nothing is dropped.
func TestRetentionByTimeAndBytes(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	for range 5 {
		e.produce(10)
	}
	e.advance(time.Hour)
	for range 5 {
		e.produce(10)
	}
	m := e.manager(nil)
	// Retention forever: nothing moves.
	if st, err := m.Retention(ctx); err != nil || st.Entries != 0 {
		t.Fatalf("retention with no limits: %+v, %v", st, err)
	}
	// Keep 30 minutes: the first five flushes are an hour old. A compacted
	// topic keeps them all the same.
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error {
		tp.RetentionMs, tp.CleanupPolicy = (30 * time.Minute).Milliseconds(), meta.CleanupCompact
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Retention(ctx); err != nil || st.Entries != 0 {
		t.Fatalf("retention of a compacted topic: %+v, %v", st, err)
	}
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.CleanupPolicy = meta.CleanupDelete; return nil }); err != nil {
		t.Fatal(err)
	}
	st, err := m.Retention(ctx)
	if err != nil || st.Entries != 10 || st.Partitions != 2 {
		t.Fatalf("time retention: %+v, %v; want 10 entries of 2 partitions", st, err)
	}
	for p := range e.topic.Partitions {
		if ls, _ := e.read(p); ls != 50 {
			t.Fatalf("partition %d: log start %d, want 50", p, ls)
		}
	}
	e.checkAll()

	// Keep about two flushes' worth of bytes per partition.
	l, err := e.meta.ReadLayout(ctx, e.topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	limit := l.Entries[len(l.Entries)-1].Len + l.Entries[len(l.Entries)-2].Len
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.RetentionBytes = limit; return nil }); err != nil {
		t.Fatal(err)
	}
	if st, err = m.Retention(ctx); err != nil || st.Entries != 6 {
		t.Fatalf("size retention: %+v, %v; want 6 entries dropped", st, err)
	}
	if n := e.checkAll(); n != 4 {
		t.Fatalf("%d entries left, want 4", n)
	}
	// Everything expired: the log is empty at the high watermark.
	e.advance(2 * time.Hour)
	if _, err = m.Retention(ctx); err != nil {
		t.Fatal(err)
	}
	if ls, recs := e.read(0); ls != 100 || len(recs) != 0 {
		t.Fatalf("all expired: log start %d, %d records", ls, len(recs))
	}
	// Dropped objects become garbage and go after the grace period.
	for range 2 {
		e.advance(2 * time.Minute)
		if _, err := m.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if objs := e.objects(); len(objs) != 0 {
		t.Fatalf("%d objects left after retention and GC", len(objs))
	}
}

// TestCompactPreservesRecords: compaction replaces many small entries by a
// few, every record reads back identical, and the newest entries (younger
// than CompactMinAge) are left as written.
func TestCompactPreservesRecords(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	for range 60 {
		e.produce(8)
	}
	before := e.checkAll()
	e.advance(time.Minute)
	e.produce(8) // young: stays
	m := e.manager(nil)
	for {
		st, err := m.Compact(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Tasks == 0 {
			break
		}
	}
	after := e.checkAll()
	if after >= before/4 {
		t.Fatalf("entries %d -> %d, want a drop to under a quarter", before, after)
	}
	for p := range e.topic.Partitions {
		l, _ := e.meta.ReadLayout(ctx, e.topic.ID, p)
		if last := l.Entries[len(l.Entries)-1]; last.ObjectKey != "segments/flush-000061" {
			t.Fatalf("partition %d: newest entry is in %s, want the young flush", p, last.ObjectKey)
		}
	}
	// The flush objects are garbage now; GC deletes them after the grace
	// period, and the records stay readable.
	for range 3 {
		e.advance(2 * time.Minute)
		if _, err := m.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.checkAll()
	e.referencedExist()
	refs, _, _ := e.meta.ReferencedObjects(ctx)
	if objs := e.objects(); len(objs) != len(refs) {
		t.Fatalf("%d objects, %d referenced", len(objs), len(refs))
	}
}

// TestCompactReadsEachFlushOnce: the partitions of a flush object are
// compacted together, so compaction reads each flush object with about one
// GET (their chunks lie side by side), not one GET per partition's chunk,
// also when the data takes several compacted objects: a task takes the
// partitions' groups in turn, so its partitions cover the same flushes.
func TestCompactReadsEachFlushOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flushes int
		tasks   int // at least
	}{{"one object", 12, 1}, {"several objects", 48, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 4)
			ctx := context.Background()
			for range tc.flushes {
				e.produce(4)
			}
			before := e.checkAll()
			objectsBefore := e.referencedObjects()
			e.advance(time.Minute)
			gets := &countingStore{Store: e.store}
			e.store = gets
			st, err := e.manager(nil).Compact(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := gets.n.Load()
			if st.Tasks < tc.tasks || st.Swaps < 4 {
				t.Fatalf("compaction %+v; want at least %d objects for the 4 partitions", st, tc.tasks)
			}
			if after := e.checkAll(); after >= before/4 {
				t.Fatalf("entries %d -> %d, want a drop to under a quarter", before, after)
			}
			objectsAfter := e.referencedObjects()
			merged := 0
			for k := range objectsBefore {
				if !objectsAfter[k] {
					merged++
				}
			}
			if merged < tc.flushes-2 {
				t.Fatalf("compaction merged %d of %d flush objects", merged, tc.flushes)
			}
			// A task boundary falls at a different flush for each partition
			// (groups are cut by bytes), so the flushes between are read by
			// both tasks; a GET per chunk would be 4 per flush.
			if limit := merged + 3*(st.Tasks-1); n > int64(limit) {
				t.Fatalf("compaction made %d GETs for %d flush objects of 4 partitions in %d objects; want at most %d", n, merged, st.Tasks, limit)
			}
			t.Logf("%d GETs for %d flush objects, %d compacted objects", n, merged, st.Tasks)
		})
	}
}

// TestCompactRewritesSlowPartitionsLittle: a partition that gets a few
// small flushes between passes is merged in tiers — an entry is merged
// again only with at least its own size of newer data — so its bytes are
// rewritten a few times in all, not once per pass until its first entry
// reaches half an entry.
func TestCompactRewritesSlowPartitionsLittle(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	// Half an entry is 128 KiB; a round adds about 1.6 KiB.
	m := e.manager(nil, func(c *lifecycle.Config) { c.CompactEntryBytes, c.CompactObjectBytes = 256<<10, 1<<20 })
	var rewritten int64
	for range 40 {
		for range 4 { // CompactMinInputs of the env's manager
			e.produce(2)
		}
		e.advance(time.Minute)
		st, err := m.Compact(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rewritten += st.Bytes
	}
	l, err := e.meta.ReadLayout(ctx, e.topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := l.Bytes()
	t.Logf("%d bytes written, %d rewritten by compaction, %d entries left", written, rewritten, len(l.Entries))
	if rewritten > 8*written {
		t.Fatalf("compaction rewrote %d bytes for %d written: each byte %.1f times", rewritten, written, float64(rewritten)/float64(written))
	}
	e.checkAll()
}

// TestCompactKeepsTopicsApart: a compacted object holds the partitions of
// one topic only, so that deleting or expiring a topic's data never waits
// on another topic's entries in the same object.
func TestCompactKeepsTopicsApart(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	// Its flush objects are numbered apart from e's.
	e2 := &env{t: t, meta: e.meta, store: e.store, topic: createTopic(t, e.meta, "other", 2), flush: 1000, want: map[int32][]segment.Record{}}
	for range 12 {
		e.produce(4)
		e2.produce(4)
	}
	e.advance(time.Minute)
	e2.advance(time.Minute)
	st, err := e.manager(nil).Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tasks != 2 || st.Swaps != 4 {
		t.Fatalf("compaction %+v; want one object per topic", st)
	}
	objs, others := e.referencedObjects(), e2.referencedObjects()
	for k := range objs {
		if others[k] {
			t.Fatalf("object %s holds entries of both topics", k)
		}
	}
	e.checkAll()
	e2.checkAll()
}

// TestCompactPartLosesRace: when one partition of a compaction task
// changed between the plan and the swap (here retention dropped its first
// entry), its swap is refused and its entries stay as they were, while the
// other partitions move to the new object; no record is lost, and garbage
// collection keeps the object, which the others reference.
func TestCompactPartLosesRace(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	for range 8 {
		e.produce(4)
	}
	e.advance(time.Minute)
	truncated := false
	hook := func(ctx context.Context, step string) error {
		if step != lifecycle.StepCompactPut || truncated {
			return nil
		}
		truncated = true
		l, err := e.meta.ReadLayout(ctx, e.topic.ID, 1)
		if err != nil {
			return err
		}
		return e.meta.TruncateSegments(ctx, l, l.Entries[1].FirstOffset)
	}
	m := e.manager(hook)
	st, err := m.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tasks != 1 || st.Swaps != 2 {
		t.Fatalf("compaction %+v; want partitions 0 and 2 swapped into one object, 1 refused", st)
	}
	l, err := e.meta.ReadLayout(ctx, e.topic.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range l.Entries {
		if !strings.HasPrefix(en.ObjectKey, "segments/flush-") {
			t.Fatalf("partition 1 has an entry in %s; its swap should have been refused", en.ObjectKey)
		}
	}
	for range 3 {
		e.advance(2 * time.Minute)
		if _, err := m.CollectGarbage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.checkAll()
	e.referencedExist()
}

// countingStore counts the GETs made through it.
type countingStore struct {
	objstore.Store
	n atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	s.n.Add(1)
	return s.Store.Get(ctx, key, off, length)
}

// TestCompactCrashAtEachStep: a compaction that dies after reading, after
// its PUT or after its swap loses no record and leaves every referenced
// object in place; the next passes finish the job and collect the orphan.
func TestCompactCrashAtEachStep(t *testing.T) {
	for _, step := range []string{lifecycle.StepCompactRead, lifecycle.StepCompactPut, lifecycle.StepCompactSwap} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t, 1)
			ctx := context.Background()
			for range 20 {
				e.produce(8)
			}
			before := e.checkAll()
			e.advance(time.Minute)
			if _, err := e.manager(crashAt(step)).Compact(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("compact: %v, want the injected crash", err)
			}
			n := e.checkAll()
			e.referencedExist()
			if step == lifecycle.StepCompactSwap && n >= before {
				t.Fatalf("crash after the swap: %d entries, want fewer than %d", n, before)
			}
			if step != lifecycle.StepCompactSwap && n != before {
				t.Fatalf("crash before the swap: %d entries, want %d", n, before)
			}
			m := e.manager(nil)
			for range 3 {
				if err := m.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
				e.advance(2 * time.Minute)
			}
			if n := e.checkAll(); n > before/3 {
				t.Fatalf("after recovery: %d entries from %d", n, before)
			}
			e.referencedExist()
			refs, _, _ := e.meta.ReferencedObjects(ctx)
			if objs := e.objects(); len(objs) != len(refs) {
				t.Fatalf("%d objects, %d referenced: an orphan survived", len(objs), len(refs))
			}
		})
	}
}

// TestGCCrashAtEachStep: garbage collection that dies after listing, after
// marking, or after deleting one object never deletes a referenced object,
// and later passes delete every unreferenced one.
func TestGCCrashAtEachStep(t *testing.T) {
	for _, step := range []string{lifecycle.StepGCList, lifecycle.StepGCMark, lifecycle.StepGCDelete} {
		t.Run(step, func(t *testing.T) {
			e := newGarbageEnv(t)
			ctx := context.Background()
			crash := e.manager(crashAt(step))
			for range 3 { // each pass crashes at step
				e.advance(2 * time.Minute)
				if _, err := crash.CollectGarbage(ctx); err != nil && !errors.Is(err, errCrash) {
					t.Fatal(err)
				}
				e.referencedExist()
				e.checkAll()
			}
			m := e.manager(nil)
			for range 3 {
				e.advance(2 * time.Minute)
				if _, err := m.CollectGarbage(ctx); err != nil {
					t.Fatal(err)
				}
			}
			e.referencedExist()
			e.checkAll()
			refs, _, _ := e.meta.ReferencedObjects(ctx)
			if objs := e.objects(); len(objs) != len(refs) {
				t.Fatalf("%d objects, %d referenced", len(objs), len(refs))
			}
			if marks, _ := e.meta.GarbageMarks(ctx); len(marks) != 0 {
				t.Fatalf("%d garbage marks left", len(marks))
			}
		})
	}
}

// TestGCDeletesFencedCommitObject: an object whose commit was fenced is
// referenced by nothing; GC leaves it alone during the grace period (it
// could be an in-flight PUT) and deletes it afterwards.
func TestGCDeletesFencedCommitObject(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	e.produce(4)
	// A stale broker PUTs an object, and its commit is fenced.
	obj := []byte("not even a segment; nobody will read it")
	if err := e.store.Put(ctx, "segments/fenced-1", obj); err != nil {
		t.Fatal(err)
	}
	errs := e.meta.CommitSegments(ctx, []meta.Commit{{Broker: "old", Epoch: 1, Entry: meta.SegmentEntry{
		TopicID: e.topic.ID, Partition: 0, ObjectKey: "segments/fenced-1", ObjectSize: int64(len(obj)),
		Pos: 0, Len: 10, FirstOffset: 4, LastOffset: 4,
	}}})
	if !errors.Is(errs[0], meta.ErrFenced) {
		t.Fatalf("commit: %v, want fenced", errs[0])
	}
	m := e.manager(nil)
	st, err := m.CollectGarbage(ctx)
	if err != nil || st.Marked != 0 || !e.objects()["segments/fenced-1"] {
		t.Fatalf("young orphan: %+v, %v; want it kept and unmarked", st, err)
	}
	e.advance(2 * time.Minute)
	if st, err = m.CollectGarbage(ctx); err != nil || st.Marked != 1 || st.Deleted != 0 {
		t.Fatalf("old orphan: %+v, %v; want it marked", st, err)
	}
	e.advance(2 * time.Minute)
	if st, err = m.CollectGarbage(ctx); err != nil || st.Deleted != 1 {
		t.Fatalf("marked orphan: %+v, %v; want it deleted", st, err)
	}
	if e.objects()["segments/fenced-1"] {
		t.Fatal("fenced object still there")
	}
	e.referencedExist()
	e.checkAll()
}

// TestCompactSwapConflict: a swap planned on a layout that retention has
// changed since is refused, and the records stay intact.
func TestCompactSwapConflict(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	for range 6 {
		e.produce(4)
	}
	l, err := e.meta.ReadLayout(ctx, e.topic.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.meta.TruncateSegments(ctx, l, l.Entries[1].FirstOffset); err != nil {
		t.Fatal(err)
	}
	old := l.Entries[1:3]
	repl := []meta.SegmentEntry{old[0]}
	repl[0].LastOffset, repl[0].Len = old[1].LastOffset, old[0].Len // shape only; must be refused
	if _, err := e.meta.SwapSegments(ctx, l, old, repl); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("stale swap: %v, want ErrConflict", err)
	}
	e.checkAll()
}

// TestRunCollectsGarbageEveryGCInterval: Run passes retention and
// compaction every Interval, but lists the bucket for garbage only every
// GCInterval (and on its first pass).
func TestRunCollectsGarbageEveryGCInterval(t *testing.T) {
	e := newEnv(t, 1)
	reg := prometheus.NewRegistry()
	m, err := lifecycle.New(lifecycle.Config{
		Meta: e.meta, Store: e.store, Logger: slog.New(slog.DiscardHandler), Registry: reg,
		Interval: 5 * time.Millisecond, GCInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for passes(t, reg, "retention") < 5 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pass retention 5 times in 30 s")
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, bounded by the deadline
	}
	if n := passes(t, reg, "gc"); n != 1 {
		t.Fatalf("%d garbage collections in the first hour, want 1", n)
	}
}

// TestRunCollectsAgainWhileGarbageIsLeft: a collection that finds more
// objects due than GCMaxDeletes deletes that many and leaves the rest
// (GCStats.Left), and Run collects again at its next pass instead of
// after GCInterval, until nothing is left.
func TestRunCollectsAgainWhileGarbageIsLeft(t *testing.T) {
	e := newGarbageEnv(t)
	ctx := context.Background()
	// Mark the flush objects compaction replaced; a grace later they are due.
	e.advance(2 * time.Minute)
	st, err := e.manager(nil).CollectGarbage(ctx)
	if err != nil || st.Marked < 6 {
		t.Fatalf("first collection: %+v, %v; want the replaced flush objects marked", st, err)
	}
	e.advance(2 * time.Minute)
	reg := prometheus.NewRegistry()
	m := e.manager(nil, func(c *lifecycle.Config) {
		c.GCMaxDeletes, c.Interval, c.GCInterval, c.Registry = 2, 5*time.Millisecond, time.Hour, reg
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); m.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	refs, _, err := e.meta.ReferencedObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Deleting them all, 2 at most at a time, takes this many collections
	// (a pass's count is recorded as it ends).
	want := uint64((st.Marked + 1) / 2)
	deadline := time.Now().Add(30 * time.Second)
	for len(e.objects()) > len(refs) || passes(t, reg, "gc") < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d objects, %d referenced, after %d collections in 30 s; want %d collections (GCInterval 1 h)",
				len(e.objects()), len(refs), passes(t, reg, "gc"), want)
		}
		time.Sleep(5 * time.Millisecond) // polling the bucket, bounded by the deadline
	}
	e.referencedExist()
	e.checkAll()
}

// passes counts the lifecycle passes named pass that reg observed.
func passes(t *testing.T, reg *prometheus.Registry, pass string) uint64 {
	t.Helper()
	for _, m := range series(t, reg, "strata_lifecycle_pass_seconds") {
		for _, l := range m.GetLabel() {
			if l.GetName() == "pass" && l.GetValue() == pass {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// series returns the series of the metric name that reg holds.
func series(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

// TestSettledPartitionsAreNotRead: a pass does not read the layout of a
// partition in which it found nothing to do, until the partition gets new
// entries (for compaction: enough, or a minute passes) or time changes
// the verdict (entries age into compaction and out of retention); work
// that comes due is still done.
func TestSettledPartitionsAreNotRead(t *testing.T) {
	t.Run("listing", func(t *testing.T) { testSettled(t, false) })
	t.Run("view", func(t *testing.T) { testSettled(t, true) })
}

// A partition never written to is not read; and under a time limit alone,
// neither are its first entries until they could have expired.
func TestEmptyPartitionsAreNotRead(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.RetentionMs = time.Hour.Milliseconds(); return nil }); err != nil {
		t.Fatal(err)
	}
	m := e.manager(nil)
	retain := func(what string, settled int) {
		t.Helper()
		st, err := m.Retention(ctx)
		if err != nil || st.Settled != settled || st.Partitions != 3-settled {
			t.Fatalf("%s: retention %+v, %v; want %d of 3 partitions settled, the others read", what, st, err, settled)
		}
	}
	retain("nothing written yet", 3)
	e.produce(2)
	retain("first records, a time limit only", 3)
	e.advance(2 * time.Hour)
	retain("an hour after the first pass", 0)
	e.checkAll()
}

// TestCompactionKeepsRetentionVerdict: compacting a partition does not
// make retention read it again under a time limit alone (merged entries
// expire no sooner), and does under a size limit; entries still expire on
// time after the merge.
func TestCompactionKeepsRetentionVerdict(t *testing.T) {
	for _, tc := range []struct {
		name         string
		bytes        int64
		settledAfter int
	}{
		{"time limit", -1, 3},
		{"size limit", 1 << 30, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 3)
			ctx := context.Background()
			if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error {
				tp.RetentionMs, tp.RetentionBytes = time.Hour.Milliseconds(), tc.bytes
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			m := e.manager(nil)
			retain := func(what string, settled, entries int) {
				t.Helper()
				st, err := m.Retention(ctx)
				if err != nil || st.Settled != settled || st.Entries != entries {
					t.Fatalf("%s: retention %+v, %v; want %d partitions settled, %d entries dropped", what, st, err, settled, entries)
				}
			}
			for range 4 {
				e.produce(10)
			}
			retain("first pass", 0, 0)
			e.advance(2 * time.Second)
			if st, err := m.Compact(ctx); err != nil || st.Swaps != 3 {
				t.Fatalf("compaction %+v, %v; want every partition compacted", st, err)
			}
			retain("after compaction", tc.settledAfter, 0)
			e.advance(2 * time.Hour)
			if st, err := m.Retention(ctx); err != nil || st.Settled != 0 || st.Partitions != 3 {
				t.Fatalf("entries expired: retention %+v, %v; want every partition read and truncated", st, err)
			}
			e.checkAll()
		})
	}
}

// testSettled is TestSettledPartitionsAreNotRead with the next offsets
// listed from etcd, or taken from a view.
func testSettled(t *testing.T, withView bool) {
	e := newEnv(t, 3)
	if withView {
		e.useView()
	}
	ctx := context.Background()
	m := e.manager(nil)
	produce := func(n int) {
		e.produce(n)
		e.syncView()
	}
	compact := func(what string, settled, compacted int) {
		t.Helper()
		st, err := m.Compact(ctx)
		if err != nil || st.Settled != settled || st.Swaps != compacted {
			t.Fatalf("%s: compaction %+v, %v; want %d partitions settled, %d compacted", what, st, err, settled, compacted)
		}
	}
	e.syncView()
	compact("nothing written yet", 3, 0)
	produce(10)
	produce(10) // two small entries per partition: too few to merge
	compact("young entries", 0, 0)
	compact("nothing changed", 3, 0)
	e.advance(2 * time.Second)
	compact("entries aged", 0, 0)
	compact("aged, nothing changed", 3, 0)
	produce(10)
	produce(10) // four small entries: CompactMinInputs, once they age
	compact("new entries", 0, 0)
	compact("new entries still young", 3, 0)
	e.advance(2 * time.Second)
	compact("new entries aged", 0, 3)
	compact("after its own change", 0, 0)
	compact("compacted, nothing changed", 3, 0)
	produce(2) // one more entry: with the compacted one, too few to merge
	compact("two new records each", 3, 0)
	e.advance(2 * time.Minute)
	compact("a minute later", 0, 0)
	e.checkAll()

	retain := func(what string, settled, entries int) {
		t.Helper()
		st, err := m.Retention(ctx)
		if err != nil || st.Settled != settled || st.Entries != entries {
			t.Fatalf("%s: retention %+v, %v; want %d partitions settled, %d entries dropped", what, st, err, settled, entries)
		}
	}
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.RetentionMs = time.Hour.Milliseconds(); return nil }); err != nil {
		t.Fatal(err)
	}
	retain("limit set", 0, 0)
	retain("nothing changed", 3, 0)
	produce(2)
	retain("new records, a time limit only", 3, 0) // the oldest entry is the same
	if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.RetentionBytes = 1 << 30; return nil }); err != nil {
		t.Fatal(err)
	}
	retain("limits altered", 0, 0)
	produce(2)
	retain("new records, a size limit", 0, 0)
	e.advance(2 * time.Hour)
	_, before := e.read(0)
	if st, err := m.Retention(ctx); err != nil || st.Settled != 0 || st.Partitions != 3 || len(before) == 0 {
		t.Fatalf("entries expired: retention %+v, %v; want every partition read and truncated", st, err)
	}
	e.checkAll()
}

// overlapStore records the Gets and the most in flight at once. With
// second set, it holds the first Get until a second one is in flight (or
// for 5 s), and closes second then.
type overlapStore struct {
	objstore.Store
	inflight, most atomic.Int64
	gets           atomic.Int64
	second         chan struct{}
	once           sync.Once
}

func (s *overlapStore) Get(ctx context.Context, key string, off, n int64) ([]byte, error) {
	cur := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for old := s.most.Load(); cur > old; old = s.most.Load() {
		if s.most.CompareAndSwap(old, cur) {
			break
		}
	}
	first := s.gets.Add(1) == 1
	if s.second == nil {
		return s.Store.Get(ctx, key, off, n)
	}
	if cur >= 2 {
		s.once.Do(func() { close(s.second) })
	}
	if first {
		select {
		case <-s.second:
		case <-time.After(5 * time.Second): // a compaction reading one object at a time
		}
	}
	return s.Store.Get(ctx, key, off, n)
}

// TestCompactReadsOverlap: a task's ranged GETs of many flush objects are
// in flight together, a bounded number at a time; each is a small read
// whose time is the store's latency.
func TestCompactReadsOverlap(t *testing.T) {
	e := newEnv(t, 2)
	for range 16 {
		e.produce(8)
	}
	before := e.checkAll()
	e.advance(time.Minute)
	gets := &overlapStore{Store: e.store, second: make(chan struct{})}
	e.store = gets
	st, err := e.manager(nil).Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Tasks == 0 || e.checkAll() >= before {
		t.Fatalf("compaction %+v left %d entries of %d; want them merged", st, e.checkAll(), before)
	}
	if most := gets.most.Load(); most < 2 || most > lifecycle.CompactReads {
		t.Fatalf("at most %d GETs in flight of %d; want 2 to %d", most, gets.gets.Load(), lifecycle.CompactReads)
	}
}

// pacedStore counts the bytes its Puts send through the context's write
// pace, and the Puts that had none.
type pacedStore struct {
	objstore.Store
	paced, unpaced atomic.Int64
	putBytes       atomic.Int64
}

func (s *pacedStore) Put(ctx context.Context, key string, data []byte) error {
	s.putBytes.Add(int64(len(data)))
	pace := objstore.WritePace(ctx)
	if pace == nil {
		s.unpaced.Add(1)
		return s.Store.Put(ctx, key, data)
	}
	counted := func(ctx context.Context, n int64) error {
		s.paced.Add(n)
		return pace(ctx, n)
	}
	return s.Store.Put(objstore.WithWritePace(ctx, counted), key, data)
}

// TestCompactPacesItsWrites: with CompactBytesPerSec set, every byte of a
// compacted object goes through the throttle as the store sends it (not
// in one burst); with -1 nothing is paced.
func TestCompactPacesItsWrites(t *testing.T) {
	for _, rate := range []int64{1 << 30, -1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			e := newEnv(t, 2)
			for range 16 {
				e.produce(8)
			}
			before := e.checkAll()
			e.advance(time.Minute)
			puts := &pacedStore{Store: e.store}
			e.store = puts
			st, err := e.manager(nil, func(c *lifecycle.Config) { c.CompactBytesPerSec = rate }).Compact(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Tasks == 0 || e.checkAll() >= before {
				t.Fatalf("compaction %+v left %d entries of %d; want objects written", st, e.checkAll(), before)
			}
			paced, unpaced, written := puts.paced.Load(), puts.unpaced.Load(), puts.putBytes.Load()
			switch {
			case rate > 0 && (paced != written || unpaced != 0):
				t.Fatalf("paced %d of %d bytes written (%d puts unpaced), want all", paced, written, unpaced)
			case rate < 0 && (paced != 0 || unpaced != int64(st.Tasks)):
				t.Fatalf("paced %d bytes, %d of %d puts unpaced; want none paced without a limit", paced, unpaced, st.Tasks)
			}
		})
	}
}

// TestCompactThrottleRisesWhileBehind: a pass merges at most
// CompactObjectBytes of a partition and leaves the rest for the next
// (CompactStats.Behind). After three passes in a row that left work
// behind, the throttle of the Manager's own executor doubles for each
// further one, up to eight times CompactBytesPerSec; once a pass leaves
// nothing behind, each pass halves it, down to CompactBytesPerSec. The
// gauge shows the rate in force, and every record still reads back.
func TestCompactThrottleRisesWhileBehind(t *testing.T) {
	const base = 1 << 30
	e := newEnv(t, 2)
	reg := prometheus.NewRegistry()
	m := e.manager(nil, func(c *lifecycle.Config) {
		c.CompactBytesPerSec, c.CompactObjectBytes, c.Registry = base, 16<<10, reg
	})
	pass := func(flushes int) lifecycle.CompactStats {
		t.Helper()
		for range flushes {
			e.produce(8) // about 1.3 KiB a partition
		}
		e.advance(time.Minute) // past CompactMinAge
		st, err := m.Compact(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	check := func(what string, want int64) {
		t.Helper()
		if r, w := lifecycle.ThrottleOf(m); r != want || w != want {
			t.Fatalf("%s: throttle read %d, write %d; want %d", what, r, w, want)
		}
		if g := gauge(t, reg, "strata_lifecycle_compact_throttle_bytes_per_second"); g != float64(want) {
			t.Fatalf("%s: gauge %v, want %d", what, g, want)
		}
	}
	check("at start", base)
	// Each pass gets about twice what it may merge of each partition.
	for i, want := range []int64{base, base, 2 * base, 4 * base, 8 * base, 8 * base} {
		if st := pass(24); st.Behind != 2 || st.Tasks == 0 {
			t.Fatalf("pass %d: %+v; want tasks run and both partitions behind", i+1, st)
		}
		check(fmt.Sprintf("after %d passes behind", i+1), want)
	}
	// Drain the backlog without new records.
	for i := 0; ; i++ {
		st := pass(0)
		if st.Behind == 0 {
			break
		}
		check("while draining", 8*base)
		if i == 20 {
			t.Fatalf("still behind after %d passes: %+v", i+1, st)
		}
	}
	check("after the first pass that left nothing", 4*base)
	for _, want := range []int64{2 * base, base, base} {
		pass(1)
		check("after a pass that left nothing", want)
	}
	e.checkAll()
}

// gauge returns the value of the unlabelled gauge name in reg (0 if
// absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	if ms := series(t, reg, name); len(ms) == 1 {
		return ms[0].GetGauge().GetValue()
	}
	return 0
}

// TestSetLogStartBetweenLifecycleSteps: DeleteRecords (meta.SetLogStart)
// moving every log start in the middle of a compaction task (after its
// reads, after its PUT) or of a retention pass (before its truncate)
// fences that change off: the pass loses the race (its swap or truncate
// gets ErrConflict and is left for the next pass), no record at or above
// the log start is lost, and no entry lies wholly below it. Later passes
// then finish their work.
func TestSetLogStartBetweenLifecycleSteps(t *testing.T) {
	for _, step := range []string{lifecycle.StepCompactRead, lifecycle.StepCompactPut, lifecycle.StepRetentionTruncate} {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t, 2)
			ctx := context.Background()
			for range 20 {
				e.produce(8)
			}
			e.advance(2 * time.Hour)
			for range 20 {
				e.produce(8)
			}
			e.advance(time.Minute)
			// The first 20 flushes are past the limit: retention has work.
			if _, err := e.meta.AlterTopic(ctx, e.topic.Name, func(tp *meta.Topic) error { tp.RetentionMs = time.Hour.Milliseconds(); return nil }); err != nil {
				t.Fatal(err)
			}
			const moveTo = 250 // inside the flushes retention keeps
			moved := false
			m := e.manager(func(ctx context.Context, at string) error {
				if at != step || moved {
					return nil
				}
				moved = true
				for p := range e.topic.Partitions {
					if got, err := e.meta.SetLogStart(ctx, e.topic.ID, p, moveTo); err != nil || got != moveTo {
						t.Errorf("SetLogStart(%d) = %d, %v", p, got, err)
					}
				}
				return nil
			})
			for range 4 {
				if _, err := m.Retention(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := m.Compact(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if !moved {
				t.Fatalf("no pass reached %s", step)
			}
			e.checkAll()
			for p := range e.topic.Partitions {
				l, err := e.meta.ReadLayout(ctx, e.topic.ID, p)
				if err != nil {
					t.Fatal(err)
				}
				if l.LogStart != moveTo || len(l.Entries) == 0 || l.Entries[0].LastOffset < l.LogStart {
					t.Fatalf("partition %d: log start %d, entries %+v; want %d and no entry wholly below it", p, l.LogStart, l.Entries, moveTo)
				}
			}
		})
	}
}
