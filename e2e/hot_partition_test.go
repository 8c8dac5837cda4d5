package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-mq/strata/internal/checker"
	"github.com/strata-mq/strata/pkg/client"
)

// TestHotPartitionMoves writes to 12 partitions on two brokers (6 each)
// with one partition taking 60 % of the bytes. Brokers report their
// busiest partitions; the coordinator must move load until no broker
// exceeds the mean by more than 25 % — here: the hot partition's broker
// keeps only it — and stay there, and every acknowledged record must be
// read back exactly once.
func TestHotPartitionMoves(t *testing.T) {
	const (
		topic = "hot"
		hot   = 1
		parts = 12
	)
	c := StartCluster(t, ClusterOptions{Brokers: 2,
		CoordinatorArgs: []string{"-load-rebalance-interval", "3s"},
		BrokerArgs:      []string{"-load-report-interval", "1s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl := c.Client()
	if _, err := cl.CreateTopic(ctx, topic, parts); err != nil {
		t.Fatal(err)
	}
	owners := func() map[string][]int32 {
		st, err := cl.ClusterStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]int32{}
		for _, b := range st.Brokers {
			for _, p := range b.Partitions {
				if p.Topic == topic {
					out[b.ID] = append(out[b.ID], p.Partition)
				}
			}
		}
		return out
	}
	// Placement first spreads the partitions by count, 6 and 6.
	for i := 0; ; i++ {
		o := owners()
		if len(o) == 2 && len(o["broker-0"]) == parts/2 && len(o["broker-1"]) == parts/2 {
			t.Logf("partitions at the start: %v", o)
			break
		}
		if i == 1200 {
			t.Fatalf("partitions never spread 6/6: %v", o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p, err := cl.NewProducer(client.Linger(5 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	chk := checker.New()
	var (
		mu      sync.Mutex
		failed  error
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() { // about 2 MB/s: every 10 ms 6 records to the hot partition and 4 to the others, 2 KiB of random bytes each (incompressible)
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 200_000; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for j := range 10 {
				part := int32(hot)
				if j >= 6 {
					part = []int32{0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}[i%11]
				}
				value := make([]byte, 2048)
				_, _ = rand.Read(value)
				r := &client.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: value}
				r.SetPartition(part)
				i++
				p.Produce(ctx, r, func(r *client.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
						return
					}
					chk.Acked(checker.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value})
				})
			}
		}
	}()
	start := time.Now()
	var converged time.Duration
	for converged == 0 {
		o := owners()
		for id, ps := range o {
			if len(ps) == 1 && ps[0] == hot && len(o) == 2 && len(o["broker-0"])+len(o["broker-1"]) == parts {
				converged = time.Since(start)
				t.Logf("converged after %v: %s owns only the hot partition", converged.Round(time.Millisecond), id)
			}
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("never converged: %v", owners())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// It stays: several load intervals later nothing moved back.
	settled := owners()
	time.Sleep(12 * time.Second)
	if again := owners(); fmt.Sprint(again) != fmt.Sprint(settled) {
		t.Errorf("partitions moved after converging: %v, then %v", settled, again)
	}
	st, err := cl.ClusterStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total, top := 0.0, 0.0
	for _, b := range st.Brokers {
		total += b.BytesInPerSec
		top = max(top, b.BytesInPerSec)
		t.Logf("broker %s: %.0f KB/s, %d partitions", b.ID, b.BytesInPerSec/1e3, len(b.Partitions))
	}
	if mean := total / float64(len(st.Brokers)); top > 1.25*mean {
		t.Errorf("busiest broker at %.2f× the mean", top/mean)
	} else {
		t.Logf("busiest broker at %.2f× the mean", top/mean)
	}
	close(stop)
	<-stopped
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if failed != nil {
		t.Fatalf("a produce failed: %v", failed)
	}
	mu.Unlock()
	consumeAll(t, ctx, cl, chk, topic)
	rep := chk.Verify(0)
	if !rep.OK() {
		t.Fatal(rep)
	}
	t.Log(rep)
}
