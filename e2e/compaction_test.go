package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/meta"
)

// TestReadBackAfterCompaction: records written as many small flushes, then
// compacted by the coordinator's lifecycle — into objects that hold
// several partitions' chunks, each chunk several entries — read back from
// the start: every acknowledged record once, at its offset. The compacted
// entries are larger than the proxy's cache blocks, so they are read by
// ranged GETs; those once refused every entry that was not a whole chunk
// as corrupt data.
func TestReadBackAfterCompaction(t *testing.T) {
	const (
		topic      = "compacted"
		partitions = 4
		records    = 4000
		batch      = 40 // records per ProduceSync: one small flush each
	)
	c := StartCluster(t, ClusterOptions{
		Brokers: 1,
		CoordinatorArgs: []string{"-lifecycle-interval", "1s", "-compact-min-age", "1s",
			"-compact-entry-bytes", fmt.Sprint(64 << 10)},
		ProxyArgs: []string{"-cache-block-bytes", fmt.Sprint(16 << 10), "-tail-window", proxyTailWindow.String()},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, topic, partitions); err != nil {
		t.Fatal(err)
	}
	chk := checker.New()
	p, err := cl.NewProducer(client.Linger(0))
	if err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 1000)
	for i := 0; i < records; i += batch {
		var recs []*client.Record
		for j := i; j < i+batch; j++ {
			recs = append(recs, &client.Record{Topic: topic, Partition: int32(j % partitions), Value: fmt.Appendf(nil, "v-%06d-%s", j, value)})
		}
		if err := p.ProduceSync(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}

	store := testenv.NewMeta(t, c.Etcd.Endpoints(), func(cfg *meta.Config) { cfg.Prefix = "/e2e" })
	tp, err := store.GetTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	testenv.Eventually(t, "compaction of every partition into shared objects of several entries each", time.Minute, func() bool {
		var ok bool
		ok, newest = compactedShape(t, ctx, store, tp)
		return ok
	})
	// A proxy reads entries younger than its tail window whole, through
	// its block cache, as the tail; older ones by ranged GETs. Read these
	// as a consumer catching up on older data does.
	if wait := time.Until(newest.Add(proxyTailWindow + time.Second)); wait > 0 {
		t.Logf("waiting %v for the compacted entries to leave the proxy's tail window", wait.Round(time.Second))
		time.Sleep(wait)
	}

	consumeAll(t, ctx, cl, chk, topic)
	if rep := chk.Verify(0); !rep.OK() || rep.Read != records {
		t.Fatalf("read back after compaction: %v", rep)
	}
}

// proxyTailWindow is the proxy's tail window in TestReadBackAfterCompaction
// (-tail-window; 30 s by default).
const proxyTailWindow = 2 * time.Second

// compactedShape reports whether compaction has left every partition of
// tp with at least two entries in compacted objects, and one such object
// holding entries of every partition; and when the newest entry was
// committed.
func compactedShape(t *testing.T, ctx context.Context, store *meta.Store, tp meta.Topic) (bool, time.Time) {
	t.Helper()
	var newest int64
	partsOf := map[string]map[int32]bool{}
	for p := range tp.Partitions {
		l, err := store.ReadLayout(ctx, tp.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		compacted := 0
		for _, e := range l.Entries {
			newest = max(newest, e.CreatedMs)
			if strings.Contains(e.ObjectKey, "compact-") {
				compacted++
				if partsOf[e.ObjectKey] == nil {
					partsOf[e.ObjectKey] = map[int32]bool{}
				}
				partsOf[e.ObjectKey][p] = true
			}
		}
		if compacted < 2 {
			return false, time.Time{}
		}
	}
	for _, ps := range partsOf {
		if len(ps) == int(tp.Partitions) {
			return true, time.UnixMilli(newest)
		}
	}
	return false, time.Time{}
}
