package meta_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

func TestTopicValidate(t *testing.T) {
	ok := meta.Topic{Name: "orders.v1_EU-west", Partitions: 8, RetentionMs: -1, RetentionBytes: -1}
	tests := []struct {
		name   string
		mutate func(*meta.Topic)
		want   error
	}{
		{"valid", func(*meta.Topic) {}, nil},
		{"empty name", func(t *meta.Topic) { t.Name = "" }, meta.ErrInvalidTopic},
		{"dot", func(t *meta.Topic) { t.Name = "." }, meta.ErrInvalidTopic},
		{"dotdot", func(t *meta.Topic) { t.Name = ".." }, meta.ErrInvalidTopic},
		{"slash", func(t *meta.Topic) { t.Name = "a/b" }, meta.ErrInvalidTopic},
		{"space", func(t *meta.Topic) { t.Name = "a b" }, meta.ErrInvalidTopic},
		{"unicode", func(t *meta.Topic) { t.Name = "tópico" }, meta.ErrInvalidTopic},
		{"max length", func(t *meta.Topic) { t.Name = strings.Repeat("a", meta.MaxTopicNameLen) }, nil},
		{"too long", func(t *meta.Topic) { t.Name = strings.Repeat("a", meta.MaxTopicNameLen+1) }, meta.ErrInvalidTopic},
		{"zero partitions", func(t *meta.Topic) { t.Partitions = 0 }, meta.ErrInvalidTopic},
		{"negative partitions", func(t *meta.Topic) { t.Partitions = -3 }, meta.ErrInvalidTopic},
		{"max partitions", func(t *meta.Topic) { t.Partitions = meta.MaxPartitions }, nil},
		{"too many partitions", func(t *meta.Topic) { t.Partitions = meta.MaxPartitions + 1 }, meta.ErrInvalidTopic},
		{"zero retention", func(t *meta.Topic) { t.RetentionMs = 0 }, meta.ErrInvalidTopic},
		{"negative retention", func(t *meta.Topic) { t.RetentionMs = -2 }, meta.ErrInvalidTopic},
		{"zero retention bytes", func(t *meta.Topic) { t.RetentionBytes = 0 }, meta.ErrInvalidTopic},
		{"negative max message", func(t *meta.Topic) { t.MaxMessageBytes = -1 }, meta.ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := ok
			tt.mutate(&top)
			err := top.Validate()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTopicLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	created := createTopic(t, s, "orders", 4)
	if created.ID == "" || created.CreatedAt.IsZero() || created.V != 1 {
		t.Fatalf("created topic lacks id, time or version: %+v", created)
	}
	if _, err := s.CreateTopic(ctx, meta.Topic{Name: "orders", Partitions: 1, RetentionMs: -1, RetentionBytes: -1}); !errors.Is(err, meta.ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	if _, err := s.CreateTopic(ctx, meta.Topic{Name: "bad/name", Partitions: 1, RetentionMs: -1, RetentionBytes: -1}); !errors.Is(err, meta.ErrInvalidTopic) {
		t.Fatalf("invalid create: %v, want ErrInvalidTopic", err)
	}
	createTopic(t, s, "audit", 1)

	got, err := s.GetTopic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != created.ID || got.Partitions != 4 || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("GetTopic = %+v, want %+v", got, created)
	}
	list, _, err := s.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "audit" || list[1].Name != "orders" {
		t.Fatalf("ListTopics = %+v, want audit and orders", list)
	}

	// Deleting removes the topic and its partitions' metadata.
	assign(t, s, created.ID, 0, "b1")
	if errs := s.CommitSegments(ctx, []meta.Commit{{Broker: "b1", Epoch: 1, Entry: entry(created.ID, 0, 0, 5)}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if err := s.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetTopic(ctx, "orders"); !errors.Is(err, meta.ErrTopicNotFound) {
		t.Fatalf("GetTopic after delete: %v, want ErrTopicNotFound", err)
	}
	if err := s.DeleteTopic(ctx, "orders"); !errors.Is(err, meta.ErrTopicNotFound) {
		t.Fatalf("second delete: %v, want ErrTopicNotFound", err)
	}
	st, err := s.GetPartition(ctx, created.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 0 || st.NextOffset != 0 {
		t.Fatalf("partition state survived delete: %+v", st)
	}
	if segs, err := s.ListSegments(ctx, created.ID, 0, 0, 0); err != nil || len(segs) != 0 {
		t.Fatalf("segments survived delete: %v %v", segs, err)
	}

	// A topic created again under the same name is a new, empty topic.
	again := createTopic(t, s, "orders", 2)
	if again.ID == created.ID {
		t.Fatal("re-created topic reused the old id")
	}
}

// TestAddPartitions: AlterTopic adds partitions, which start unassigned
// and empty, and never removes any.
func TestAddPartitions(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	created := createTopic(t, s, "grow", 2)
	grown, err := s.AlterTopic(ctx, "grow", func(tp *meta.Topic) error { tp.Partitions = 5; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetTopic(ctx, "grow"); err != nil || got.Partitions != 5 || got.ID != created.ID || got != grown {
		t.Fatalf("after adding partitions: %+v, %v; want 5 partitions of topic %s", got, err, created.ID)
	}
	if st, err := s.GetPartition(ctx, created.ID, 4); err != nil || st.Epoch != 0 || st.NextOffset != 0 {
		t.Fatalf("new partition 4: %+v, %v; want unassigned and empty", st, err)
	}
	for _, n := range []int32{3, 0, meta.MaxPartitions + 1} {
		if _, err := s.AlterTopic(ctx, "grow", func(tp *meta.Topic) error { tp.Partitions = n; return nil }); !errors.Is(err, meta.ErrInvalidTopic) {
			t.Errorf("%d partitions: %v, want ErrInvalidTopic", n, err)
		}
	}
	if got, err := s.GetTopic(ctx, "grow"); err != nil || got.Partitions != 5 {
		t.Fatalf("after refused changes: %+v, %v; want 5 partitions", got, err)
	}
}
