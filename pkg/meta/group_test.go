package meta_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

func TestGroupOffsets(t *testing.T) {
	s := newStore(t, func(c *meta.Config) { c.MaxTxnOps = 8 })
	ctx := testCtx(t)
	var offs []meta.CommittedOffset
	for p := int32(0); p < 20; p++ { // more than one transaction
		offs = append(offs, meta.CommittedOffset{TopicID: "t1", Partition: p, Offset: int64(p) * 10, Metadata: "m"})
	}
	if err := s.CommitOffsets(ctx, "billing", offs); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, "billing", []meta.CommittedOffset{{TopicID: "t1", Partition: 3, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("%d offsets, want 20", len(got))
	}
	for _, o := range got {
		want := int64(o.Partition) * 10
		if o.Partition == 3 {
			want = 99
		}
		if o.TopicID != "t1" || o.Offset != want || o.CommittedAt.IsZero() {
			t.Errorf("offset %+v, want %d", o, want)
		}
	}
	other, err := s.FetchOffsets(ctx, "other")
	if err != nil || len(other) != 0 {
		t.Fatalf("other group: %v %v", other, err)
	}

	bad := []struct {
		name  string
		group string
		off   meta.CommittedOffset
	}{
		{"empty group", "", meta.CommittedOffset{TopicID: "t1", Offset: 1}},
		{"slash in group", "a/b", meta.CommittedOffset{TopicID: "t1", Offset: 1}},
		{"negative offset", "g", meta.CommittedOffset{TopicID: "t1", Offset: -1}},
		{"negative partition", "g", meta.CommittedOffset{TopicID: "t1", Partition: -1}},
		{"no topic", "g", meta.CommittedOffset{Offset: 1}},
		{"huge metadata", "g", meta.CommittedOffset{TopicID: "t1", Metadata: strings.Repeat("x", meta.MaxOffsetMetadata+1)}},
	}
	for _, tt := range bad {
		if err := s.CommitOffsets(ctx, tt.group, []meta.CommittedOffset{tt.off}); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if _, err := s.FetchOffsets(ctx, "bad group"); !errors.Is(err, meta.ErrInvalidGroup) {
		t.Errorf("FetchOffsets(bad group) = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  meta.Config
		ok   bool
	}{
		{"defaults", meta.Config{Endpoints: []string{"http://127.0.0.1:2379"}}, true},
		{"no endpoints", meta.Config{}, false},
		{"blank endpoint", meta.Config{Endpoints: []string{" "}}, false},
		{"prefix without slash", meta.Config{Endpoints: []string{"x"}, Prefix: "strata"}, false},
		{"prefix trailing slash", meta.Config{Endpoints: []string{"x"}, Prefix: "/strata/"}, false},
		{"negative timeout", meta.Config{Endpoints: []string{"x"}, RequestTimeout: -1}, false},
		{"tiny txn", meta.Config{Endpoints: []string{"x"}, MaxTxnOps: 2}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
