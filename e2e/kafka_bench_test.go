package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/pkg/segment"
)

// Load of BenchmarkKafkaLargeRequests.
const (
	largeClients    = 8
	largeRounds     = 2
	largePartitions = 40
	largeValue      = 2_200_000 // bytes per partition: 88 MB a request
	// largeMemLimit is the chart's proxy GOMEMLIMIT: its 256 MiB cache
	// plus 96 MiB.
	largeMemLimit = "352MiB"
)

// BenchmarkKafkaLargeRequests: eight Kafka clients, each on a connection
// of its own, send an 88 MB produce request (40 partitions of 2.2 MB, under
// Kafka's 100 MiB request limit) at the same moment, twice, to a proxy
// with the chart's GOMEMLIMIT. It reports the proxy's peak resident memory
// and the bytes produced per second. Each connection may hold one request
// limit of requests, so what bounds the proxy here is the limit on all
// connections together (-kafka-max-queued-request-bytes, 256 MiB).
//
//	go test ./e2e -run '^$' -bench 'KafkaLargeRequests$' -benchtime 1x
func BenchmarkKafkaLargeRequests(b *testing.B) {
	for range b.N {
		c, addr := startKafkaCluster(b, ClusterOptions{Env: []string{"GOMEMLIMIT=" + largeMemLimit}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		kgoCreateTopic(b, ctx, addr, "large", largePartitions)
		req := largeProduce(b)
		start := time.Now()
		for range largeRounds {
			var g errgroup.Group
			for range largeClients {
				cl := kgoClient(b, addr)
				g.Go(func() error {
					resp, err := req.RequestWith(ctx, cl)
					if err != nil {
						return err
					}
					for _, p := range resp.Topics[0].Partitions {
						if p.ErrorCode != 0 {
							b.Errorf("partition %d: error %d", p.Partition, p.ErrorCode)
						}
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		secs := time.Since(start).Seconds()
		cancel()
		b.ReportMetric(largeRounds*largeClients*largePartitions*largeValue/1e6/secs, "MB/s")
		b.ReportMetric(procStatusMiB(b, c.Proxy.Pid(), "VmHWM"), "proxy-peak-MiB")
	}
}

// largeProduce is one produce request of a 2.2 MB record to each of the
// topic's partitions.
func largeProduce(b *testing.B) *kmsg.ProduceRequest {
	batch, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Value: make([]byte, largeValue)}}, segment.BatchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 60_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "large"
	for p := range int32(largePartitions) {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}
