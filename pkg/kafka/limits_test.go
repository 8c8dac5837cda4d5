package kafka_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
	"github.com/strata-mq/strata/pkg/segment"
)

// TestLimitsAndQuotas checks that the proxy's limits and quotas apply to
// Kafka clients as to gRPC ones: connections past the per-client limit are
// closed, a request over the size limit closes its connection, and a
// principal over its produce quota has its response delayed.
func TestLimitsAndQuotas(t *testing.T) {
	c := startCluster(t, clusterOpts{proxy: func(pc *proxy.Config) {
		pc.Limits.MaxConnsPerClient = 3
		pc.Limits.MaxRequestBytes = 1 << 20
		pc.Auth.Quota = auth.QuotaConfig{Default: auth.Rates{ProduceBytesPerSec: 100_000}}
	}})
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
