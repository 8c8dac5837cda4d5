package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka protocol (ProtocolKafka) drives the proxy's Kafka listener
// with franz-go, configured like the SDK's producers (linger, batch size,
// codec, idempotence on), so the two protocols can be compared in the
// same run (docs/kafka.md).

// kafkaCodecs maps the load generator's codec names to franz-go's.
var kafkaCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// kafkaSender is a franz-go producer.
type kafkaSender struct{ cl *kgo.Client }

func (s kafkaSender) produce(ctx context.Context, value []byte, done func(error)) {
	s.cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) { done(err) })
}
func (s kafkaSender) flush(ctx context.Context) error { return s.cl.Flush(ctx) }
func (s kafkaSender) close(context.Context) error     { s.cl.Close(); return nil }

// startKafkaLoad starts the producers of a ProtocolKafka load.
func startKafkaLoad(ctx context.Context, cfg ProduceConfig, stamp bool, rec *recorder) (*load, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Server), kgo.DefaultProduceTopic(cfg.Topic),
		kgo.ProducerLinger(cfg.Linger), kgo.ProducerBatchCompression(kafkaCodecs[cfg.codecName()]),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}
	if cfg.MaxBatchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(cfg.MaxBatchBytes, 1<<30))))
	}
	l := &load{cfg: cfg, stamp: stamp, rec: rec}
	for i := range cfg.Producers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			l.close(ctx)
			return nil, err
		}
		l.prods = append(l.prods, kafkaSender{cl})
		if i == 0 {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err = ensureKafkaTopic(actx, kadm.NewClient(cl), cfg.Topic, cfg.Partitions)
			cancel()
			if err != nil {
				l.close(ctx)
				return nil, err
			}
		}
	}
	return l, nil
}

// ensureKafkaTopic creates the topic if needed and returns its end
// offsets.
func ensureKafkaTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) (kadm.ListedOffsets, error) {
	if partitions > 0 {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return nil, fmt.Errorf("bench: topic %q: %w", topic, err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("bench: topic %q: %w", topic, err)
	}
	n := 0
	ends.Each(func(kadm.ListedOffset) { n++ })
	if partitions > 0 && n != int(partitions) {
		return nil, fmt.Errorf("bench: topic %q has %d partitions, not %d", topic, n, partitions)
	}
	return ends, nil
}

// consumeKafka is Consume over ProtocolKafka: a franz-go consumer reads
// the topic from the start up to the end offsets it had when the run
// started.
func consumeKafka(ctx context.Context, cfg ConsumeConfig, progress io.Writer) (*Summary, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(cfg.Server))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ends, err := ensureKafkaTopic(actx, kadm.NewClient(adm), cfg.Topic, 0)
	if err != nil {
		return nil, err
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	if len(remaining) == 0 {
		return nil, fmt.Errorf("bench: topic %q is empty", cfg.Topic)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Server), kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if cfg.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(cfg.FetchMaxBytes))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rec := newRecorder("consume", "records", progress)
	stopTicker := rec.startTicker(time.Second)
	defer stopTicker()
	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Duration)
	defer cancelRun()
	for len(remaining) > 0 {
		t := time.Now()
		fs := cl.PollFetches(runCtx)
		if runCtx.Err() != nil {
			break
		}
		rec.latency(time.Since(t))
		fs.EachError(func(_ string, _ int32, err error) { rec.failed(err) })
		if rec.errCount() > 100 {
			return nil, fmt.Errorf("bench: consuming: %w", fs.Err())
		}
		n, nbytes := 0, 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			nbytes += len(r.Value) + len(r.Key)
			if hw, ok := remaining[r.Partition]; ok && r.Offset+1 >= hw {
				delete(remaining, r.Partition)
			}
		})
		rec.batch(n, nbytes)
	}
	stopTicker()
	return rec.summary(time.Now(), cfg), nil
}

// kafkaTail is a franz-go consumer of the topic from its current end.
func kafkaTail(ctx context.Context, cfg ProduceConfig) (tail, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(cfg.Server))
	if err != nil {
		return tail{}, err
	}
	ends, err := ensureKafkaTopic(ctx, kadm.NewClient(adm), cfg.Topic, cfg.Partitions)
	adm.Close()
	if err != nil {
		return tail{}, err
	}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Server), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: start}))
	if err != nil {
		return tail{}, err
	}
	poll := func(ctx context.Context) ([][]byte, error) {
		fs := cl.PollFetches(ctx)
		var values [][]byte
		fs.EachRecord(func(r *kgo.Record) { values = append(values, r.Value) })
		var err error
		fs.EachError(func(_ string, _ int32, e error) { err = errors.Join(err, e) })
		return values, err
	}
	return tail{poll: poll, close: cl.Close}, nil
}
