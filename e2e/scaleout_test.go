package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// TestScaleOutUnderLoad grows a cluster from one broker to four while a
// producer writes to 16 partitions. It measures how long the coordinator
// takes to spread the partitions 4/4/4/4 and the longest gap between two
// acknowledgements of one partition during the move, and it proves the
// move copies no data: no broker reads object storage except to answer a
// retry from the log, and every acknowledged record is read back exactly
// once at its offset.
func TestScaleOutUnderLoad(t *testing.T) {
	const partitions = 16
	m0 := metricsAddr(t)
	c := StartCluster(t, ClusterOptions{Brokers: 1, BrokerArgs: []string{"-metrics-addr", m0}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, "scale", partitions); err != nil {
		t.Fatal(err)
	}
	p, err := cl.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	chk := checker.New()
	var (
		mu      sync.Mutex
		acks    = map[int32][]time.Time{} // per partition, in ack order
		failed  error
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() { // the load: bounded by stop and by a record cap
		defer close(stopped)
		for i := 0; i < 2_000_000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := &client.Record{Topic: "scale", Partition: -1, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%08d", i)}
			p.Produce(ctx, r, func(r *client.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = err
					return
				}
				acks[r.Partition] = append(acks[r.Partition], time.Now())
				chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
			})
			if i%200 == 0 {
				time.Sleep(time.Millisecond) // pace the load: about 200k records/s at most
			}
		}
	}()
	waitAcks := func(n int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for chk.AckedCount() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d acknowledgements", chk.AckedCount())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcks(20_000)

	moveStart := time.Now()
	metrics := []string{m0}
	for i := 1; i <= 3; i++ {
		m := metricsAddr(t)
		metrics = append(metrics, m)
		c.AddBroker(fmt.Sprintf("broker-new-%d", i), "-metrics-addr", m)
	}
	// Wait until every broker owns its fair share.
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		balanced := len(st.Brokers) == 4 && len(st.Unassigned) == 0
		for _, b := range st.Brokers {
			balanced = balanced && len(b.Partitions) == partitions/4
		}
		if balanced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not balanced after a minute: %+v", st.Brokers)
		}
		time.Sleep(20 * time.Millisecond)
	}
	balanced := time.Now()
	waitAcks(chk.AckedCount() + 20_000)
	close(stop)
	<-stopped
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if failed != nil {
		t.Fatalf("a produce failed: %v", failed)
	}
	// The longest gap between two acknowledgements of a partition while
	// brokers were added and partitions handed off.
	var gaps []time.Duration
	for _, ts := range acks {
		g := time.Duration(0)
		for i := 1; i < len(ts); i++ {
			if ts[i].After(moveStart) && ts[i-1].Before(balanced) {
				g = max(g, ts[i].Sub(ts[i-1]))
			}
		}
		gaps = append(gaps, g)
	}
	mu.Unlock()
	slices.Sort(gaps)

	// Moving a partition copies nothing: a broker's only reads are the
	// few KiB of log it reads to answer a retried request older than the
	// ones the new owner remembers (a producer whose answers were lost in
	// the move resends them; their offsets are in the log).
	var written, lookups float64
	for _, m := range metrics {
		s := scrape(t, "http://"+m+"/metrics")
		l := s["strata_broker_retry_lookup_bytes_total"]
		if r := s["strata_objstore_read_bytes_total"]; r != l {
			t.Errorf("broker at %s read %v bytes from object storage, %v of them to answer retries", m, r, l)
		}
		written += s["strata_objstore_written_bytes_total"]
		lookups += l
	}

	consumeAll(t, ctx, cl, chk, "scale")
	rep := chk.Verify(0)
	if !rep.OK() {
		t.Fatal(rep)
	}
	t.Logf("1→4 brokers under load: balanced %v after the first new broker started (adding three brokers included); "+
		"longest per-partition ack gap during the move: median %v, max %v; brokers read %.0f bytes (retry lookups only), wrote %.1f MB (produced data); %v",
		balanced.Sub(moveStart).Round(time.Millisecond), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond), lookups, written/1e6, rep)
}
