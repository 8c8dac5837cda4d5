package coordinator

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
)

func TestAdminValidation(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1", func(c *Config) { c.MaxPartitionsPerTopic = 8 })
	waitFor(t, "leader", c.IsLeader)
	cli := client(t, c)
	if _, err := cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "taken"}); err != nil {
		t.Fatal(err)
	}

	create := func(name string, parts int32, cfg *stratav1.TopicConfig) func() error {
		return func() error {
			_, err := cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: name, Partitions: parts, Config: cfg})
			return err
		}
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty name", create("", 1, nil), apierr.ErrInvalidTopic},
		{"slash in name", create("a/b", 1, nil), apierr.ErrInvalidTopic},
		{"space in name", create("a b", 1, nil), apierr.ErrInvalidTopic},
		{"dot-dot", create("..", 1, nil), apierr.ErrInvalidTopic},
		{"name too long", create(strings.Repeat("x", meta.MaxTopicNameLen+1), 1, nil), apierr.ErrInvalidTopic},
		{"negative partitions", create("neg", -1, nil), apierr.ErrInvalidRequest},
		{"too many partitions", create("many", 9, nil), apierr.ErrInvalidRequest},
		{"retention_ms below -1", create("ret", 1, &stratav1.TopicConfig{RetentionMs: -2}), apierr.ErrInvalidRequest},
		{"retention_bytes below -1", create("retb", 1, &stratav1.TopicConfig{RetentionBytes: -5}), apierr.ErrInvalidRequest},
		{"negative max_message_bytes", create("mmb", 1, &stratav1.TopicConfig{MaxMessageBytes: -1}), apierr.ErrInvalidRequest},
		{"duplicate", create("taken", 3, nil), apierr.ErrTopicExists},
		{"delete unknown", func() error {
			_, err := cli.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: "nope"})
			return err
		}, apierr.ErrUnknownTopic},
		{"delete invalid name", func() error {
			_, err := cli.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: ""})
			return err
		}, apierr.ErrInvalidTopic},
		{"describe unknown", func() error {
			_, err := cli.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "nope"})
			return err
		}, apierr.ErrUnknownTopic},
		{"describe invalid name", func() error {
			_, err := cli.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "no/pe"})
			return err
		}, apierr.ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantAPIErr(t, tt.call(), tt.want) })
	}
	if n := testenv.MetricValue(t, c.metrics.admin.WithLabelValues("CreateTopic", "INVALID_TOPIC")); n != 5 {
		t.Errorf("admin_requests_total{CreateTopic,INVALID_TOPIC} = %v, want 5", n)
	}
	// Nothing the rejected calls named was created.
	list, err := cli.ListTopics(ctx, &stratav1.ListTopicsRequest{})
	if err != nil || len(list.GetTopics()) != 1 || list.GetTopics()[0].GetName() != "taken" {
		t.Fatalf("ListTopics = %v, %v; want only taken", list, err)
	}
}

func TestAdminTopicLifecycle(t *testing.T) {
	ctx := testCtx(t)
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	c := startCoordinator(t, store, "c1", func(c *Config) { c.PlacementInterval = time.Hour })
	waitFor(t, "leader", c.IsLeader)
	cli := client(t, c)

	// Zero values take the defaults.
	resp, err := cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "defaults"})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetTopic()
	if got.GetPartitions() != 1 || got.GetConfig().GetRetentionMs() != DefaultRetentionMs ||
		got.GetConfig().GetRetentionBytes() != -1 || got.GetConfig().GetMaxMessageBytes() != 0 ||
		got.GetId() == "" || got.GetCreatedAtMs() == 0 {
		t.Fatalf("created %v, want 1 partition, 7-day retention, no size limit", got)
	}
	// Explicit values are kept.
	resp, err = cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "b-explicit", Partitions: 3,
		Config: &stratav1.TopicConfig{RetentionMs: -1, RetentionBytes: 1 << 30, MaxMessageBytes: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := resp.GetTopic().GetConfig(); cfg.GetRetentionMs() != -1 || cfg.GetRetentionBytes() != 1<<30 || cfg.GetMaxMessageBytes() != 1<<20 {
		t.Fatalf("config %v not kept", cfg)
	}
	id := resp.GetTopic().GetId()

	list, err := cli.ListTopics(ctx, &stratav1.ListTopicsRequest{})
	if err != nil || len(list.GetTopics()) != 2 || list.GetTopics()[0].GetName() != "b-explicit" || list.GetTopics()[1].GetName() != "defaults" {
		t.Fatalf("ListTopics = %v, %v; want b-explicit, defaults", list, err)
	}

	// DescribeTopic reports owner, epoch, high watermark and log start.
	st, err := store.GetPartition(ctx, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AssignPartition(ctx, st, "bx"); err != nil {
		t.Fatal(err)
	}
	e := meta.SegmentEntry{TopicID: id, Partition: 1, ObjectKey: "seg/1", ObjectSize: 1000,
		Pos: 0, Len: 100, FirstOffset: 0, LastOffset: 6, MinTimestamp: 1, MaxTimestamp: 2}
	if errs := store.CommitSegments(ctx, []meta.Commit{{Broker: "bx", Epoch: 1, Entry: e}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// DeleteRecords moves log starts, each partition on its own.
	del, err := cli.DeleteRecords(ctx, &stratav1.DeleteRecordsRequest{Topic: "b-explicit", Partitions: []*stratav1.DeleteRecordsPartition{
		{Partition: 1, Offset: 3}, {Partition: 2, Offset: -1}, {Partition: 0, Offset: 1}, {Partition: 5, Offset: 0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if r := del.GetResults(); len(r) != 4 || r[0].GetLogStartOffset() != 3 || r[0].GetError() != nil || r[1].GetLogStartOffset() != 0 || r[1].GetError() != nil {
		t.Fatalf("DeleteRecords answered %v; want log start 3 for partition 1, 0 for the empty partition 2", r)
	} else {
		wantAPIErr(t, apierr.FromPart(r[2].GetError()), apierr.ErrOffsetOutOfRange) // past the high watermark 0
		wantAPIErr(t, apierr.FromPart(r[3].GetError()), apierr.ErrPartitionRange)
	}
	_, err = cli.DeleteRecords(ctx, &stratav1.DeleteRecordsRequest{Topic: "b-explicit", Partitions: []*stratav1.DeleteRecordsPartition{{Partition: 1}, {Partition: 1}}})
	wantAPIErr(t, err, apierr.ErrInvalidRequest)
	_, err = cli.DeleteRecords(ctx, &stratav1.DeleteRecordsRequest{Topic: "b-explicit"})
	wantAPIErr(t, err, apierr.ErrInvalidRequest)
	_, err = cli.DeleteRecords(ctx, &stratav1.DeleteRecordsRequest{Topic: "nope", Partitions: []*stratav1.DeleteRecordsPartition{{Partition: 0}}})
	wantAPIErr(t, err, apierr.ErrUnknownTopic)
	desc, err := cli.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "b-explicit"})
	if err != nil {
		t.Fatal(err)
	}
	pi := desc.GetTopic().GetPartitionInfo()
	if len(pi) != 3 {
		t.Fatalf("partition_info %v, want 3", pi)
	}
	if p := pi[1]; p.GetPartition() != 1 || p.GetBroker() != "bx" || p.GetEpoch() != 1 || p.GetHighWatermark() != 7 || p.GetLogStartOffset() != 3 {
		t.Fatalf("partition 1 = %v, want bx epoch 1 hw 7 log start 3", p)
	}
	if p := pi[2]; p.GetPartition() != 2 || p.GetBroker() != "" || p.GetEpoch() != 0 || p.GetHighWatermark() != 0 {
		t.Fatalf("partition 2 = %v, want unassigned and empty", p)
	}

	// A cleanup policy is "delete" or "compact".
	alt, err := cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", Config: &stratav1.TopicConfig{CleanupPolicy: "compact"}})
	if err != nil || alt.GetTopic().GetConfig().GetCleanupPolicy() != "compact" {
		t.Fatalf("alter to compact: %v, %v", alt, err)
	}
	alt, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", Config: &stratav1.TopicConfig{CleanupPolicy: "delete,compact"}})
	if err != nil || alt.GetTopic().GetConfig().GetCleanupPolicy() != "compact,delete" {
		t.Fatalf("alter to delete,compact: %v, %v; want compact,delete", alt, err)
	}
	_, err = cli.CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "c-bad", Config: &stratav1.TopicConfig{CleanupPolicy: "forever"}})
	wantAPIErr(t, err, apierr.ErrInvalidRequest)
	// AlterTopic sets configs back to the cluster's defaults by name.
	alt, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", ResetToDefault: []string{"retention_ms", "retention_bytes", "max_message_bytes", "cleanup_policy"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := alt.GetTopic().GetConfig(); cfg.GetRetentionMs() != DefaultRetentionMs || cfg.GetRetentionBytes() != DefaultRetentionBytes || cfg.GetMaxMessageBytes() != 0 || cfg.GetCleanupPolicy() != "delete" {
		t.Fatalf("config after reset = %v, want the defaults", cfg)
	}
	_, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", Config: &stratav1.TopicConfig{RetentionMs: 5}, ResetToDefault: []string{"retention_ms"}})
	wantAPIErr(t, err, apierr.ErrInvalidRequest)
	_, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", ResetToDefault: []string{"partitions"}})
	wantAPIErr(t, err, apierr.ErrInvalidRequest)
	// Partitions are only added.
	alt, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", Partitions: 5})
	if err != nil || alt.GetTopic().GetPartitions() != 5 {
		t.Fatalf("add partitions: %v, %v; want 5 partitions", alt, err)
	}
	for _, n := range []int32{2, -1, meta.MaxPartitions + 1} {
		_, err = cli.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: "b-explicit", Partitions: n})
		wantAPIErr(t, err, apierr.ErrInvalidRequest)
	}
	if desc, err := cli.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "b-explicit"}); err != nil || len(desc.GetTopic().GetPartitionInfo()) != 5 {
		t.Fatalf("describe after adding partitions: %v, %v; want 5 partitions", desc, err)
	}

	if _, err := cli.DeleteTopic(ctx, &stratav1.DeleteTopicRequest{Name: "b-explicit"}); err != nil {
		t.Fatal(err)
	}
	_, err = cli.DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "b-explicit"})
	wantAPIErr(t, err, apierr.ErrUnknownTopic)
}

func TestConfigValidate(t *testing.T) {
	store := newStore(t, etcd.Endpoints(), testenv.Prefix(t))
	ok := Config{ListenAddr: "127.0.0.1:0", Meta: store}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no meta", func(c *Config) { c.Meta = nil }, false},
		{"no listen addr", func(c *Config) { c.ListenAddr = "" }, false},
		{"bad listen addr", func(c *Config) { c.ListenAddr = "nohost" }, false},
		{"advertise without port", func(c *Config) { c.AdvertiseAddr = "host" }, false},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "host:0" }, false},
		{"advertise ok", func(c *Config) { c.AdvertiseAddr = "coord-0.coord:7072" }, true},
		{"bad metrics addr", func(c *Config) { c.MetricsAddr = "x" }, false},
		{"ttl under a second", func(c *Config) { c.SessionTTL = 500 * time.Millisecond }, false},
		{"negative interval", func(c *Config) { c.PlacementInterval = -time.Second }, false},
		{"too many partitions", func(c *Config) { c.MaxPartitionsPerTopic = meta.MaxPartitions + 1 }, false},
		{"negative partitions", func(c *Config) { c.MaxPartitionsPerTopic = -1 }, false},
		{"retention forever", func(c *Config) { c.DefaultRetentionMs = -1 }, true},
		{"retention below -1", func(c *Config) { c.DefaultRetentionMs = -2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if got := (Config{SessionTTL: 1500 * time.Millisecond}).sessionTTLSeconds(); got != 2 {
		t.Errorf("sessionTTLSeconds(1.5s) = %d, want 2", got)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	c := startCoordinator(t, newStore(t, etcd.Endpoints(), testenv.Prefix(t)), "c1", func(c *Config) { c.MetricsAddr = addr })
	waitFor(t, "leader", c.IsLeader)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"strata_coordinator_is_leader 1", "strata_coordinator_leader_elections_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// BenchmarkDescribeTopic describes a topic of 10,000 partitions, as a
// producer does once per topic.
//
//	go test ./pkg/coordinator -run '^$' -bench DescribeTopic
func BenchmarkDescribeTopic(b *testing.B) {
	store := newStore(b, etcd.Endpoints(), testenv.Prefix(b))
	c := startCoordinator(b, store, "c1")
	waitFor(b, "leader", c.IsLeader)
	ctx := testCtx(b)
	if _, err := client(b, c).CreateTopic(ctx, &stratav1.CreateTopicRequest{Name: "wide", Partitions: 10_000}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		resp, err := client(b, c).DescribeTopic(ctx, &stratav1.DescribeTopicRequest{Name: "wide"})
		if err != nil || len(resp.GetTopic().GetPartitionInfo()) != 10_000 {
			b.Fatalf("describe: %d partitions, %v", len(resp.GetTopic().GetPartitionInfo()), err)
		}
	}
}
