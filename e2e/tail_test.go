package e2e

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// TestTailThroughOtherProxy produces through one proxy and, while the load
// runs, tails the topic through another. That reader has no tail buffer:
// it learns of each commit from the etcd watch and reads what its proxy's
// tail warming loaded. The checker holds it to what is stored: every
// record read once, at dense offsets, in order, and it keeps up.
func TestTailThroughOtherProxy(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Brokers: 2})
	_, addr2 := c.addProxy("proxy-1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const topic = "othertail"
	admin := c.Client(client.AdminAttempts(20))
	if _, err := admin.CreateTopic(ctx, topic, outagePartitions); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ctx, admin, "every partition assigned", func(st *client.ClusterStatus) bool { return len(st.Unassigned) == 0 })

	reader, err := client.New(addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	chk := checker.New()
	tl := startTail(t, ctx, reader, topic, chk)

	cl := c.Client()
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	load := startLoad(t, ctx, p, topic, outagePartitions)
	waitFor(t, "acknowledgements", func() bool { return load.ackedCount() >= 10000 })
	waitFor(t, "the tail reader to follow the load", func() bool { return tl.read.Load() >= 5000 })
	summary := load.finish(ctx, cl, true)
	stored, err := readTopic(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range stored {
		chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
	}
	waitFor(t, "the tail reader to read every stored record", func() bool { return tl.read.Load() >= int64(len(stored)) })
	if err := tl.end(); err != nil {
		t.Fatalf("tail reader: %v", err)
	}
	rep := chk.Verify(0)
	if !rep.OK() || tl.read.Load() != int64(len(stored)) {
		t.Errorf("the tail reader read %d records, %d are stored: %v", tl.read.Load(), len(stored), rep)
	}
	t.Logf("tail through the other proxy: %v; the load: %s", rep, summary)
}

// tailReader reads every partition of a topic from the beginning in a
// goroutine, and gives what it reads to a checker.
type tailReader struct {
	chk  *checker.Checker
	read atomic.Int64 // records read
	stop chan struct{}
	done chan error
}

func startTail(t *testing.T, ctx context.Context, cl *client.Client, topic string, chk *checker.Checker) *tailReader {
	t.Helper()
	cons, err := cl.NewConsumer(client.ConsumeStart(client.StartEarliest))
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Assign(topic); err != nil {
		cons.Close()
		t.Fatal(err)
	}
	tl := &tailReader{chk: chk, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		defer cons.Close()
		tl.done <- tl.run(ctx, cons)
	}()
	t.Cleanup(func() { _ = tl.end() })
	return tl
}

// run polls until stop closes or ctx ends.
func (tl *tailReader) run(ctx context.Context, cons *client.Consumer) error {
	for {
		select {
		case <-tl.stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		recs, err := cons.Poll(pctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !client.IsRetriable(err) {
			return err
		}
		for _, r := range recs {
			tl.chk.Read(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: r.Value})
		}
		tl.read.Add(int64(len(recs)))
	}
}

// end stops the reader and returns its error; later calls return nil.
func (tl *tailReader) end() error {
	select {
	case <-tl.stop:
		return nil
	default:
	}
	close(tl.stop)
	return <-tl.done
}
