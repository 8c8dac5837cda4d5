package meta_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/meta"
)

// etcd is one real etcd server shared by the package's tests; each test
// works under a prefix of its own.
var etcd *testenv.Etcd

func TestMain(m *testing.M) { testenv.Main(m, &etcd) }

// newStore returns a Store on the shared etcd under a fresh prefix.
func newStore(t testing.TB, mutate ...func(*meta.Config)) *meta.Store {
	return testenv.NewMeta(t, etcd.Endpoints(), mutate...)
}

func testCtx(t testing.TB) context.Context { return testenv.Context(t) }

// createTopic creates a topic with n partitions.
func createTopic(t testing.TB, s *meta.Store, name string, n int32) meta.Topic {
	t.Helper()
	top, err := s.CreateTopic(testCtx(t), meta.Topic{Name: name, Partitions: n, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// assign gives a partition to broker and returns its new state.
func assign(t testing.TB, s *meta.Store, topicID string, p int32, broker string) meta.PartitionState {
	t.Helper()
	ctx := testCtx(t)
	st, err := s.GetPartition(ctx, topicID, p)
	if err != nil {
		t.Fatal(err)
	}
	st, err = s.AssignPartition(ctx, st, broker)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// entry returns a well-formed segment entry for offsets first..first+n-1.
func entry(topicID string, p int32, first, n int64) meta.SegmentEntry {
	return meta.SegmentEntry{
		TopicID: topicID, Partition: p,
		ObjectKey:   fmt.Sprintf("seg/%d-%d", first, n),
		ObjectSize:  1000,
		Pos:         10,
		Len:         100,
		FirstOffset: first,
		LastOffset:  first + n - 1,
		// Timestamps grow with offsets: 1000 ms per offset.
		MinTimestamp: first * 1000,
		MaxTimestamp: (first + n - 1) * 1000,
	}
}
