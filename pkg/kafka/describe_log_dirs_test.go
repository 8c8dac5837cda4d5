package kafka_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDescribeLogDirs: one log directory holds every partition, each with
// the bytes of its segment entries (more after more records, 0 while
// empty), for every topic or for the partitions asked.
func TestDescribeLogDirs(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("sized", 2)
	c.createTopic("other", 1)
	cl := c.client(kgo.DefaultProduceTopic("sized"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(c.client())
	size := func(s kadm.TopicsSet, topic string, p int32) int64 {
		t.Helper()
		all, err := adm.DescribeAllLogDirs(c.ctx, s)
		if err != nil {
			t.Fatalf("describe log dirs: %v", err)
		}
		dirs := all.Sorted()
		if len(dirs) != 1 || dirs[0].Err != nil || dirs[0].Dir != "object-storage" || dirs[0].TotalBytes != -1 {
			t.Fatalf("log dirs %+v, want one, object-storage, of unknown capacity", dirs)
		}
		part, ok := dirs[0].Topics.Lookup(topic, p)
		if !ok {
			return -1
		}
		return part.Size
	}
	produce := func(n int) {
		t.Helper()
		for range n {
			if err := cl.ProduceSync(c.ctx, &kgo.Record{Partition: 0, Value: make([]byte, 1000)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(5)
	first := size(nil, "sized", 0)
	if first < 5000 || size(nil, "sized", 1) != 0 || size(nil, "other", 0) != 0 {
		t.Fatalf("sizes after 5 records of 1000 bytes: %d, %d, %d", first, size(nil, "sized", 1), size(nil, "other", 0))
	}
	produce(5)
	if got := size(kadm.TopicsSet{"sized": {0: {}}}, "sized", 0); got <= first {
		t.Fatalf("partition 0 is %d bytes after 5 more records, was %d", got, first)
	}
	if got := size(kadm.TopicsSet{"sized": {0: {}}}, "other", 0); got != -1 {
		t.Fatalf("a partition not asked for was described (%d bytes)", got)
	}
}
