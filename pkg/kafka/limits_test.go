package kafka_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/kafka"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestLimitsAndQuotas checks that the proxy's limits and quotas apply to
// Kafka clients as to gRPC ones: connections past the per-client limit are
// closed, and a principal over its produce quota has its response
// delayed; and that a request over the Kafka listener's size limit closes
// its connection.
func TestLimitsAndQuotas(t *testing.T) {
	c := startCluster(t, clusterOpts{proxy: func(pc *proxy.Config) {
		pc.Limits.MaxConnsPerClient = 3
		pc.Auth.Quota = auth.QuotaConfig{Default: auth.Rates{ProduceBytesPerSec: 100_000}}
	}, kafka: func(kc *kafka.Config) { kc.MaxRequestBytes = 1 << 20 }})
	// Created in etcd, so that no Kafka client holds connections.
	if _, err := c.meta.CreateTopic(c.ctx, meta.Topic{Name: "limits", Partitions: 1, RetentionMs: -1, RetentionBytes: -1}); err != nil {
		t.Fatal(err)
	}

	// Connections per client: the fourth is closed at once.
	held := []*raw{c.raw(), c.raw(), c.raw()}
	for _, r := range held {
		r.roundTrip(kmsg.NewPtrApiVersionsRequest())
	}
	c.raw().expectClosed()
	held[0].conn.Close()
	held[1].conn.Close()
	for c.gauge("strata_kafka_connections") > 1 { // bounded by the cluster's context
		select {
		case <-c.ctx.Done():
			t.Fatal("closed connections never released")
		case <-time.After(5 * time.Millisecond):
		}
	}

	// A frame over the request size limit closes its connection (one
	// that was accepted: it answers ApiVersions first).
	big := c.raw()
	big.roundTrip(kmsg.NewPtrApiVersionsRequest())
	big.write(binary.BigEndian.AppendUint32(nil, 2<<20))
	big.expectClosed()

	{
		r := held[2]
		big := make([]segment.Record, 300)
		for i := range big {
			big[i] = segment.Record{Timestamp: 1, Value: make([]byte, 1000)}
		}
		b, err := segment.EncodeBatch(big, segment.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp := r.roundTrip(produceReq(9, -1, "limits", 0, b)).(*kmsg.ProduceResponse)
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: error %d", code)
		}
		// 300 kB at 100 kB/s with a one-second burst: about 2 s of debt.
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Fatalf("produce over the quota answered after %v, want it delayed about 2s", d)
		}
	}
}

// TestQueuedRequestBytes: the request bytes every connection holds read
// and unanswered are bounded together (MaxQueuedRequestBytes, Kafka's
// queued.max.request.bytes), not only per connection. One connection
// sends the head of a frame of almost the whole budget and holds it; a
// small request on another connection still fits and is answered, a
// larger one waits unread until the first connection goes, and then is
// answered; nothing stays held.
func TestQueuedRequestBytes(t *testing.T) {
	const limit, room = 1 << 20, 4 << 10
	c := startCluster(t, clusterOpts{kafka: func(kc *kafka.Config) {
		kc.MaxRequestBytes, kc.MaxQueuedRequestBytes = limit, limit+room
	}})
	hog := c.raw()
	hog.roundTrip(kmsg.NewPtrApiVersionsRequest())
	hog.write(binary.BigEndian.AppendUint32(nil, limit))
	hog.write(make([]byte, 100)) // the frame's start; the rest never comes
	heldIs := func(n float64) func() bool {
		return func() bool { return c.gauge("strata_kafka_queued_request_bytes") == n }
	}
	testenv.Eventually(t, "the first connection's frame held", 0, heldIs(limit))

	other := c.raw()
	other.roundTrip(kmsg.NewPtrApiVersionsRequest()) // fits in the room left

	big := kmsg.NewPtrMetadataRequest()
	big.Version = 9
	for i := range 2 * room / 100 { // about 2 × room bytes of topic names
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(fmt.Sprintf("absent-%093d", i))
		big.Topics = append(big.Topics, mt)
	}
	corr := other.send(big)
	testenv.Eventually(t, "the large request waiting", 0, func() bool {
		return c.gauge("strata_kafka_queued_request_waits_total") == 1
	})
	if got := c.gauge("strata_kafka_queued_request_bytes"); got != limit {
		t.Fatalf("%v request bytes held while the large request waits, want only the first connection's %d", got, limit)
	}
	hog.conn.Close() // its frame is never finished: the bytes come back
	resp := big.ResponseKind()
	if got := other.recv(resp); got != corr {
		t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	if n := len(resp.(*kmsg.MetadataResponse).Topics); n != len(big.Topics) {
		t.Fatalf("metadata answered %d topics, want %d", n, len(big.Topics))
	}
	testenv.Eventually(t, "every request's bytes released", 0, heldIs(0))
}

// TestFetchWaitCap checks that the proxy's cap on long-polls
// (MaxFetchWait) bounds a Kafka fetch's MaxWaitMillis, as it bounds a gRPC
// fetch's wait.
func TestFetchWaitCap(t *testing.T) {
	c := startCluster(t, clusterOpts{proxy: func(pc *proxy.Config) { pc.MaxFetchWait = 200 * time.Millisecond }})
	c.createTopic("capped", 1)
	r := c.raw()
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 12, 60_000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "capped"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	start := time.Now()
	r.roundTrip(f)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("a fetch asking to wait 60s answered after %v; the 200ms cap should have ended it", d)
	}
}

// TestProduceRequestOfManyPartitions: a Kafka client gathers every
// partition's batch for a broker into one produce request, up to Kafka's
// own request limit (100 MiB), so a producer writing to many partitions
// at once sends requests larger than the gRPC listener's limit (32 MiB).
// The Kafka listener takes them, as Kafka does: refused, the connection
// closes and the client sends the same request again, without end.
//
// The request is built here and written by franz-go's client: a
// producer's own requests hold whatever is buffered when its sink drains,
// which on a busy machine may be half of the partitions.
func TestProduceRequestOfManyPartitions(t *testing.T) {
	const partitions, valueBytes = 40, 900_000 // 36 MB in one request
	c := startCluster(t, clusterOpts{})
	c.createTopic("wide", partitions)
	batch, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Value: make([]byte, valueBytes)}}, segment.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req := produceReq(9, -1, "wide", 0, batch)
	for p := int32(1); p < partitions; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	var largest atomic.Int64
	cl := c.client(kgo.WithHooks(produceWrites{&largest}))
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode != 0 {
			t.Errorf("partition %d: error %d", rp.Partition, rp.ErrorCode)
		}
	}
	if n := largest.Load(); n <= proxy.DefaultMaxRequestBytes {
		t.Fatalf("largest produce request %d bytes, want one over %d", n, proxy.DefaultMaxRequestBytes)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "wide")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != 1 {
			t.Errorf("partition %d: end offset %d (%v), want 1", o.Partition, o.Offset, o.Err)
		}
	})
}

// produceWrites is a franz-go hook keeping the size of the largest
// produce request written.
type produceWrites struct{ largest *atomic.Int64 }

func (h produceWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, _ error) {
	if key != int16(kmsg.Produce) {
		return
	}
	for {
		old := h.largest.Load()
		if int64(n) <= old || h.largest.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}
