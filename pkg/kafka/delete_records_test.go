package kafka_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDeleteRecords drives DeleteRecords with franz-go's admin client:
// the log start moves to the offset asked (-1: the high watermark), a
// consumer from the earliest offset starts there and reads every record
// above it, ListOffsets agrees, the log start never moves back, and an
// offset past the high watermark or an unknown partition fails alone.
func TestDeleteRecords(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("trim", 3)
	cl := c.client(kgo.DefaultProduceTopic("trim"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 110 {
		p := int32(0)
		if i >= 100 {
			p = 1
		}
		if err := cl.ProduceSync(c.ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(c.client())
	topics, err := adm.ListTopics(c.ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	// fetchCode fetches partition 0 at offset straight from the proxy and
	// returns the partition's error code.
	fetchCode := func(offset int64) int16 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "trim", topics["trim"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl.DiscoveredBrokers()[0].Request(c.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
	}
	deleteTo := func(p int32, offset int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "trim", Partition: p, At: offset})
		resps, err := adm.DeleteRecords(c.ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := resps.Lookup("trim", p)
		if !ok {
			t.Fatalf("no answer for partition %d", p)
		}
		return r
	}
	for _, tc := range []struct {
		name      string
		partition int32
		offset    int64
		low       int64
		err       error
	}{
		{"inside the log", 0, 40, 40, nil},
		{"never backwards", 0, 10, 40, nil},
		{"the high watermark (-1)", 1, -1, 10, nil},
		{"past the high watermark", 0, 101, -1, kerr.OffsetOutOfRange},
	} {
		r := deleteTo(tc.partition, tc.offset)
		if !errors.Is(r.Err, tc.err) || r.LowWatermark != tc.low {
			t.Fatalf("%s: low watermark %d, err %v; want %d, %v", tc.name, r.LowWatermark, r.Err, tc.low, tc.err)
		}
	}
	// kadm and kgo route by partition leader; a partition the topic lacks
	// goes to the proxy as a raw request, beside two it has. The raw
	// request sends no Metadata request first, which would read the log
	// starts again: the proxy that forwarded the call must refuse the
	// deleted records at once, not once its log start cache expires.
	if code := fetchCode(45); code != 0 {
		t.Fatalf("fetch at 45 with the log start at 40: error code %d", code)
	}
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "trim"
	for p, offset := range map[int32]int64{7: 0, 2: 0, 0: 50} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, offset
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.DiscoveredBrokers()[0].Request(c.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	raw := kresp.(*kmsg.DeleteRecordsResponse)
	for _, rp := range raw.Topics[0].Partitions {
		want := map[int32]int64{2: 0, 0: 50}
		if rp.Partition == 7 && rp.ErrorCode != kerr.UnknownTopicOrPartition.Code ||
			rp.Partition != 7 && (rp.ErrorCode != 0 || rp.LowWatermark != want[rp.Partition]) {
			t.Fatalf("raw DeleteRecords answered partition %d: code %d, low watermark %d", rp.Partition, rp.ErrorCode, rp.LowWatermark)
		}
	}
	if code := fetchCode(45); code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch at 45 right after DeleteRecords to 50: error code %d, want OFFSET_OUT_OF_RANGE", code)
	}
	starts, err := adm.ListStartOffsets(c.ctx, "trim")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 50, 1: 10, 2: 0} {
		if o, _ := starts.Lookup("trim", p); o.Err != nil || o.Offset != want {
			t.Fatalf("start offset of partition %d: %d (%v), want %d", p, o.Offset, o.Err, want)
		}
	}
	// A consumer from the earliest offset reads partition 0 from 50 on.
	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"trim": {0: kgo.NewOffset().AtStart()}}))
	next := int64(50)
	for next < 100 {
		fs := cons.PollFetches(c.ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next || string(r.Value) != fmt.Sprintf("v%d", next) {
				t.Fatalf("read offset %d %q, want offset %d", r.Offset, r.Value, next)
			}
			next++
		})
	}
}
