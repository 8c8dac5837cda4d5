package kafka_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOffsetDelete drives OffsetDelete with franz-go's admin client: the
// offsets named go and the others stay; a partition the topic lacks and
// an unknown topic fail alone; an unknown group is GROUP_ID_NOT_FOUND;
// and while the group has a live member every partition is refused with
// GROUP_SUBSCRIBED_TO_TOPIC and nothing is deleted.
func TestOffsetDelete(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("od", 2)
	adm := kadm.NewClient(c.client())
	var os kadm.Offsets
	os.AddOffset("od", 0, 5, -1)
	os.AddOffset("od", 1, 7, -1)
	if resp, err := adm.CommitOffsets(c.ctx, "g", os); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	committed := func() map[int32]int64 {
		t.Helper()
		fetched, err := adm.FetchOffsets(c.ctx, "g")
		if err != nil || fetched.Error() != nil {
			t.Fatalf("fetch offsets: %v %v", err, fetched.Error())
		}
		out := map[int32]int64{}
		fetched.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 {
				out[o.Partition] = o.At
			}
		})
		return out
	}

	resp, err := adm.DeleteOffsets(c.ctx, "g", kadm.TopicsSet{"od": {0: {}, 9: {}}, "nope": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic     string
		partition int32
		want      error
	}{{"od", 0, nil}, {"od", 9, kerr.UnknownTopicOrPartition}, {"nope", 0, kerr.UnknownTopicOrPartition}} {
		if got, _ := resp.Lookup(tc.topic, tc.partition); !errors.Is(got, tc.want) {
			t.Fatalf("%s/%d: %v, want %v", tc.topic, tc.partition, got, tc.want)
		}
	}
	if got := committed(); len(got) != 1 || got[1] != 7 {
		t.Fatalf("committed after deleting partition 0: %v, want only partition 1 at 7", got)
	}
	if _, err := adm.DeleteOffsets(c.ctx, "never", kadm.TopicsSet{"od": {0: {}}}); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}

	// A live member: nothing goes.
	c.client(kgo.ConsumerGroup("g"), kgo.ConsumeTopics("od")) // joins at once
	waitFor(t, "a live member", func() bool {
		groups, err := adm.DescribeGroups(c.ctx, "g")
		return err == nil && len(groups["g"].Members) == 1
	})
	resp, err = adm.DeleteOffsets(c.ctx, "g", kadm.TopicsSet{"od": {1: {}}})
	if got, _ := resp.Lookup("od", 1); err != nil || !errors.Is(got, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete with a live member: %v %v, want GROUP_SUBSCRIBED_TO_TOPIC", err, got)
	}
	if got := committed(); got[1] != 7 {
		t.Fatalf("committed after a refused delete: %v, want partition 1 at 7", got)
	}
}
