package proxy

import (
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestWarmOneAtATime: a partition's next warm is due only once the one
// before it has ended, and then takes every offset committed meanwhile.
// A warm per commit sent an etcd read per partition per commit, which
// queued in etcd under load and stalled tail readers for seconds.
func TestWarmOneAtATime(t *testing.T) {
	e := newEnv(t)
	top := e.createTopic("warm", 1)
	v := e.srv.view
	e.waitView("the topic", func(v *meta.View) bool { _, ok := v.TopicByID(top.ID); return ok })
	key := meta.PartitionID{TopicID: top.ID, Partition: 0}
	var tr tailReaders
	tr.note(key, 0) // a reader at the high watermark

	v.Advance(top.ID, 0, 10, 10)
	first := tr.due(v)
	if len(first) != 1 || first[0].from != 0 || first[0].to != 10 {
		t.Fatalf("after a commit to 10: due %+v, want one warm of 0..10", first)
	}
	v.Advance(top.ID, 0, 20, 20)
	v.Advance(top.ID, 0, 30, 30)
	if more := tr.due(v); len(more) != 0 {
		t.Fatalf("while the warm of 0..10 runs: due %+v, want none", more)
	}
	tr.finish(first[0])
	close(first[0].done)
	next := tr.due(v)
	if len(next) != 1 || next[0].from != 10 || next[0].to != 30 {
		t.Fatalf("after the first warm ended: due %+v, want one warm of 10..30", next)
	}
}
