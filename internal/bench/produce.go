package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-mq/strata/pkg/client"
	"github.com/strata-mq/strata/pkg/segment"
)

// Defaults of the load generator's settings.
const (
	DefaultTopic       = "bench"
	DefaultPartitions  = 8
	DefaultRecordBytes = 1024
	DefaultProducers   = 1
	DefaultDuration    = 10 * time.Second
	// flushTimeout bounds the wait for outstanding acknowledgements (and,
	// end to end, for the consumer to catch up) after the measured time.
	flushTimeout = 60 * time.Second
	// interruptGrace bounds each of those waits once the run's context
	// has ended (the command was interrupted): long enough to collect the
	// answers already on their way, short enough that the two of them
	// (acknowledgements, then closing the producers) end within the
	// CLI's 2 s.
	interruptGrace = 500 * time.Millisecond
)

// afterRun returns the context of the waits after the measured time: it
// ends flushTimeout from now, or interruptGrace after ctx ends, whichever
// comes first. A proxy that went away must not hold an interrupted
// bench for a minute.
func afterRun(ctx context.Context) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	var (
		mu    sync.Mutex
		grace *time.Timer // guarded by mu
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		grace = time.AfterFunc(interruptGrace, cancel)
	})
	return actx, func() {
		stop()
		mu.Lock()
		if grace != nil {
			grace.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// stampBytes is the size of the send time an e2e record's value starts with.
const stampBytes = 8

// Protocols the load generator speaks.
const (
	// ProtocolGRPC drives the proxy's gRPC API with the Strata SDK.
	ProtocolGRPC = "grpc"
	// ProtocolKafka drives the proxy's Kafka listener with franz-go.
	ProtocolKafka = "kafka"
)

// ProduceConfig configures Produce and the producing half of E2E.
type ProduceConfig struct {
	// Server is the proxy address: its gRPC address, or its Kafka
	// address with ProtocolKafka.
	Server string `json:"server"`
	// Protocol is ProtocolGRPC (the default when empty) or ProtocolKafka.
	Protocol string `json:"protocol,omitempty"`
	// Topic is written to. It is created with Partitions partitions when
	// it does not exist.
	Topic string `json:"topic"`
	// Partitions is the partition count of a topic that Produce creates;
	// an existing topic must have this many (0: any, and never create).
	Partitions int32 `json:"partitions"`
	// RecordBytes is the size of each record's value; records have no key,
	// so the producer spreads them round-robin.
	RecordBytes int `json:"record_bytes"`
	// Producers is the number of producers, each with its own connection,
	// producing concurrently.
	Producers int `json:"producers"`
	// Linger, MaxBatchBytes and Codec are the producers' settings
	// (client.Linger, client.MaxBatchBytes, client.Compression); zero
	// MaxBatchBytes means the SDK default.
	Linger        time.Duration `json:"linger"`
	MaxBatchBytes int           `json:"max_batch_bytes"`
	Codec         string        `json:"codec"`
	// Rate is the target records per second over all producers; 0 sends as
	// fast as the producers accept records. With a rate, latency counts
	// from each record's scheduled send time, so that a stall is not
	// hidden by the sender falling behind (no coordinated omission).
	Rate float64 `json:"rate"`
	// Inflight bounds each producer's unacknowledged records; 0 bounds
	// them only by the producer's buffer. Inflight 1 sends one record at a
	// time: the latency-tuned configuration.
	Inflight int `json:"inflight"`
	// Duration is the measured time; Warmup runs before it, unmeasured.
	Duration time.Duration `json:"duration"`
	Warmup   time.Duration `json:"warmup"`
	// ConsumeServer, for E2E only, is where the consumer connects when it
	// is not Server (same protocol): another proxy, so that records are
	// read through a proxy that did not forward them. Empty: Server.
	ConsumeServer string `json:"consume_server,omitempty"`
}

// Validate checks the settings.
func (c *ProduceConfig) Validate() error {
	if _, err := segment.ParseCodec(c.codecName()); err != nil {
		return fmt.Errorf("bench: codec: %w", err)
	}
	switch {
	case c.Server == "":
		return errors.New("bench: no server address")
	case c.Protocol != "" && c.Protocol != ProtocolGRPC && c.Protocol != ProtocolKafka:
		return fmt.Errorf("bench: protocol %q: want %s or %s", c.Protocol, ProtocolGRPC, ProtocolKafka)
	case c.Topic == "":
		return errors.New("bench: no topic")
	case c.Partitions < 0:
		return fmt.Errorf("bench: partitions must not be negative, got %d", c.Partitions)
	case c.RecordBytes < stampBytes || c.RecordBytes > 8<<20:
		return fmt.Errorf("bench: record size must be in [%d, %d], got %d", stampBytes, 8<<20, c.RecordBytes)
	case c.Producers < 1 || c.Producers > 1024:
		return fmt.Errorf("bench: producers must be in [1, 1024], got %d", c.Producers)
	case c.Linger < 0:
		return fmt.Errorf("bench: linger must not be negative, got %v", c.Linger)
	case c.Rate < 0:
		return fmt.Errorf("bench: rate must not be negative, got %v", c.Rate)
	case c.Inflight < 0:
		return fmt.Errorf("bench: inflight must not be negative, got %d", c.Inflight)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("bench: duration must be in (0, 24h], got %v", c.Duration)
	case c.Warmup < 0 || c.Warmup > time.Hour:
		return fmt.Errorf("bench: warmup must be in [0, 1h], got %v", c.Warmup)
	}
	return nil
}

func (c *ProduceConfig) codecName() string {
	if c.Codec == "" {
		return "none"
	}
	return c.Codec
}

// ensureTopic creates the topic if needed and checks its partition count.
func ensureTopic(ctx context.Context, cl *client.Client, topic string, partitions int32) (int32, error) {
	info, err := cl.DescribeTopic(ctx, topic)
	if errors.Is(err, client.ErrUnknownTopic) && partitions > 0 {
		if info, err = cl.CreateTopic(ctx, topic, partitions); errors.Is(err, client.ErrTopicExists) {
			info, err = cl.DescribeTopic(ctx, topic)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("bench: topic %q: %w", topic, err)
	}
	if partitions > 0 && info.Partitions != partitions {
		return 0, fmt.Errorf("bench: topic %q has %d partitions, not %d", topic, info.Partitions, partitions)
	}
	return info.Partitions, nil
}

// Produce runs producers against the proxy for the configured time and
// reports acknowledged records per second and the produce-to-ack latency.
// Progress lines go to progress (nil: none).
func Produce(ctx context.Context, cfg ProduceConfig, progress io.Writer) (*Summary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rec := newRecorder("produce", "records", progress)
	l, err := startLoad(ctx, cfg, false, rec)
	if err != nil {
		return nil, err
	}
	defer l.close(ctx)
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	return rec.summary(l.end, cfg), nil
}

// load is a running set of producers.
type load struct {
	cfg     ProduceConfig
	stamp   bool // put the send time into each value (e2e)
	rec     *recorder
	clients []*client.Client // SDK clients (gRPC)
	prods   []sender
	end     time.Time // when the last acknowledgement came in
	// acked counts acknowledged records, warm-up included; finished is
	// set once every record is acknowledged or failed.
	acked    atomic.Int64
	finished atomic.Bool
}

// sender is one producer of the load, over either protocol.
type sender interface {
	// produce sends value; done is called with the outcome.
	produce(ctx context.Context, value []byte, done func(error))
	flush(ctx context.Context) error
	close(ctx context.Context) error
}

// sdkSender is a Strata SDK producer.
type sdkSender struct {
	p     *client.Producer
	topic string
}

func (s sdkSender) produce(ctx context.Context, value []byte, done func(error)) {
	s.p.Produce(ctx, &client.Record{Topic: s.topic, Value: value}, func(_ *client.Record, err error) { done(err) })
}
func (s sdkSender) flush(ctx context.Context) error { return s.p.Flush(ctx) }
func (s sdkSender) close(ctx context.Context) error { return s.p.Close(ctx) }

func startLoad(ctx context.Context, cfg ProduceConfig, stamp bool, rec *recorder) (*load, error) {
	if cfg.Protocol == ProtocolKafka {
		return startKafkaLoad(ctx, cfg, stamp, rec)
	}
	codec, _ := segment.ParseCodec(cfg.codecName())
	l := &load{cfg: cfg, stamp: stamp, rec: rec}
	opts := []client.ProducerOpt{client.Linger(cfg.Linger), client.Compression(codec)}
	if cfg.MaxBatchBytes > 0 {
		opts = append(opts, client.MaxBatchBytes(cfg.MaxBatchBytes),
			client.MaxBufferedBytes(max(int64(cfg.MaxBatchBytes), client.DefaultMaxBufferedBytes)))
	}
	for i := range cfg.Producers {
		cl, err := client.New(cfg.Server)
		if err != nil {
			l.close(ctx)
			return nil, err
		}
		l.clients = append(l.clients, cl)
		if i == 0 {
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err = ensureTopic(actx, cl, cfg.Topic, cfg.Partitions)
			cancel()
			if err != nil {
				l.close(ctx)
				return nil, err
			}
		}
		p, err := cl.NewProducer(opts...)
		if err != nil {
			l.close(ctx)
			return nil, err
		}
		l.prods = append(l.prods, sdkSender{p, cfg.Topic})
	}
	return l, nil
}

// run produces for Warmup + Duration, then waits for the outstanding
// acknowledgements.
func (l *load) run(ctx context.Context) error {
	value := make([]byte, l.cfg.RecordBytes)
	_, _ = rand.Read(value) // incompressible, like encrypted or compressed payloads
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range l.prods {
		wg.Go(func() { l.produceLoop(ctx, p, i, start, value, stop) })
	}
	if l.cfg.Warmup > 0 {
		select {
		case <-time.After(l.cfg.Warmup):
		case <-ctx.Done():
		}
		l.rec.restart()
	}
	stopTicker := l.rec.startTicker(time.Second)
	defer stopTicker()
	select {
	case <-time.After(l.cfg.Duration):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	fctx, cancel := afterRun(ctx)
	defer cancel()
	var errs []error
	for _, p := range l.prods {
		errs = append(errs, p.flush(fctx))
	}
	l.end = time.Now()
	l.finished.Store(true)
	stopTicker()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: waiting for acknowledgements: %w", err)
	}
	return nil
}

// produceLoop is producer i's sending loop.
func (l *load) produceLoop(ctx context.Context, p sender, i int, start time.Time, value []byte, stop <-chan struct{}) {
	var sem chan struct{}
	if l.cfg.Inflight > 0 {
		sem = make(chan struct{}, l.cfg.Inflight)
	}
	var interval time.Duration // between this producer's records
	if l.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(l.cfg.Producers) / l.cfg.Rate)
		// Spread the producers' schedules over one interval.
		start = start.Add(interval * time.Duration(i) / time.Duration(l.cfg.Producers))
	}
	size := len(value)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		// With a target rate, latency counts from the scheduled send time
		// (no coordinated omission); without one, from when the record may
		// go out (after its in-flight slot), so a record does not also count
		// its predecessor's wait.
		var sent time.Time
		if interval > 0 {
			sent = start.Add(interval * time.Duration(n))
			if d := time.Until(sent); d > 200*time.Microsecond {
				select {
				case <-time.After(d):
				case <-stop:
					return
				}
			}
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-stop:
				return
			}
		}
		if interval == 0 {
			sent = time.Now()
		}
		v := value
		if l.stamp {
			v = make([]byte, size)
			copy(v, value)
			sent = time.Now()
			binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
		}
		p.produce(ctx, v, func(err error) {
			switch {
			case err != nil:
				l.rec.failed(err)
			case l.stamp:
				l.rec.acked(time.Since(sent))
			default:
				l.rec.done(time.Since(sent), size)
			}
			if err == nil {
				l.acked.Add(1)
			}
			if sem != nil {
				<-sem
			}
		})
	}
}

// close closes the producers, waiting for what they still hold as
// afterRun allows, and the clients.
func (l *load) close(ctx context.Context) {
	cctx, cancel := afterRun(ctx)
	defer cancel()
	for _, p := range l.prods {
		_ = p.close(cctx)
	}
	for _, cl := range l.clients {
		_ = cl.Close()
	}
}
