package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/coalesce"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/client/clienttest"
	"github.com/strata-mq/strata/pkg/segment"
)

// setup starts a fake proxy with topic "t" of the given partitions and
// returns a client for it.
func setup(t *testing.T, partitions int32) (*clienttest.FakeProxy, *Client) {
	t.Helper()
	f := clienttest.Start(t)
	if partitions > 0 {
		f.AddTopic(t, "t", partitions)
	}
	c, err := New(f.Addr(), RetryBackoff(time.Millisecond, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return f, c
}

func newProducer(t *testing.T, c *Client, opts ...ProducerOpt) *Producer {
	t.Helper()
	opts = append([]ProducerOpt{ProducerRetryBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)
	p, err := c.NewProducer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// requestBatches decodes the fake's produce requests into record counts
// per batch, one slice per request.
func requestBatches(t *testing.T, reqs []*stratav1.ProduceRequest) [][]int {
	t.Helper()
	var out [][]int
	for _, r := range reqs {
		hs, err := segment.SplitBatches(r.GetBatches())
		if err != nil {
			t.Fatal(err)
		}
		var counts []int
		pos := 0
		for _, h := range hs {
			recs, err := segment.DecodeRecords(r.GetBatches()[pos : pos+h.Size()])
			if err != nil {
				t.Fatal(err)
			}
			pos += h.Size()
			counts = append(counts, len(recs))
		}
		out = append(out, counts)
	}
	return out
}

func TestOptionValidation(t *testing.T) {
	f := clienttest.Start(t)
	tests := []struct {
		name string
		make func(*Client) error
	}{
		{"request timeout", func(*Client) error { _, err := New(f.Addr(), RequestTimeout(0)); return err }},
		{"admin attempts", func(*Client) error { _, err := New(f.Addr(), AdminAttempts(0)); return err }},
		{"backoff order", func(*Client) error { _, err := New(f.Addr(), RetryBackoff(time.Second, time.Millisecond)); return err }},
		{"empty address", func(*Client) error { _, err := New(""); return err }},
		{"address without port in a list", func(*Client) error { _, err := New(f.Addr() + ",localhost"); return err }},
		{"empty address in a list", func(*Client) error { _, err := New(f.Addr() + ","); return err }},
		{"negative linger", func(c *Client) error { _, err := c.NewProducer(Linger(-1)); return err }},
		{"tiny batch", func(c *Client) error { _, err := c.NewProducer(MaxBatchBytes(10)); return err }},
		{"huge batch", func(c *Client) error { _, err := c.NewProducer(MaxBatchBytes(1 << 30)); return err }},
		{"buffer below batch", func(c *Client) error {
			_, err := c.NewProducer(MaxBatchBytes(1<<20), MaxBufferedBytes(1<<10))
			return err
		}},
		{"codec", func(c *Client) error { _, err := c.NewProducer(Compression(segment.Codec(9))); return err }},
		{"reconnect backoff", func(*Client) error { _, err := New("127.0.0.1:1", ReconnectBackoff(0, time.Second)); return err }},
		{"delivery timeout", func(c *Client) error { _, err := c.NewProducer(DeliveryTimeout(0)); return err }},
		{"metadata max age", func(c *Client) error { _, err := c.NewProducer(MetadataMaxAge(0)); return err }},
		{"group without a subscription", func(c *Client) error { _, err := c.NewGroupConsumer("g"); return err }},
		{"group pattern that does not compile", func(c *Client) error {
			_, err := c.NewGroupConsumer("g", SubscribePattern("orders-("))
			return err
		}},
		{"start", func(c *Client) error { _, err := c.NewConsumer(ConsumeStart(7)); return err }},
		{"fetch wait", func(c *Client) error { _, err := c.NewConsumer(FetchMaxWait(time.Hour)); return err }},
		{"fetch bytes", func(c *Client) error { _, err := c.NewConsumer(FetchMaxBytes(0)); return err }},
	}
	c, err := New(f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.make(c); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v, want ErrInvalidRequest", err)
			}
		})
	}
	if _, err := c.NewProducer(Linger(0), MaxBatchBytes(1024), MaxBufferedBytes(1024), Compression(segment.CodecZstd)); err != nil {
		t.Fatalf("valid options rejected: %v", err)
	}
}

func TestAdmin(t *testing.T) {
	_, c := setup(t, 0)
	ctx := context.Background()
	info, err := c.CreateTopic(ctx, "a", 3, Retention(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "a" || info.Partitions != 3 || info.Config.Retention != time.Hour {
		t.Fatalf("created %+v", info)
	}
	if _, err := c.CreateTopic(ctx, "a", 1); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: %v, want ErrTopicExists", err)
	}
	if _, err := c.CreateTopic(ctx, "bad name", 1); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad name: %v, want ErrInvalidTopic", err)
	}
	if _, err := c.CreateTopic(ctx, "", 1); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("empty name: %v, want ErrInvalidTopic", err)
	}
	if _, err := c.CreateTopic(ctx, "z", 0); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("zero partitions: %v, want ErrInvalidRequest", err)
	}
	d, err := c.DescribeTopic(ctx, "a")
	if err != nil || len(d.PartitionInfo) != 3 || d.PartitionInfo[2].Broker == "" {
		t.Fatalf("describe: %+v, %v", d, err)
	}
	list, err := c.ListTopics(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %+v, %v", list, err)
	}
	alt, err := c.AlterTopic(ctx, "a", Retention(-1))
	if err != nil || alt.Config.Retention >= 0 {
		t.Fatalf("alter: %+v, %v", alt, err)
	}
	if _, err := c.AlterTopic(ctx, "nope", Retention(time.Hour)); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("alter unknown: %v", err)
	}
	st, err := c.ClusterStatus(ctx)
	if err != nil || len(st.Brokers) != 1 || len(st.Brokers[0].Partitions) != 3 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if err := c.DeleteTopic(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeTopic(ctx, "a"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("describe deleted: %v, want ErrUnknownTopic", err)
	}
}

// TestProducerMaxBatchBytes checks that a partition's buffer becomes a
// batch when the next record would not fit in MaxBatchBytes, and that
// Flush sends the rest without waiting for the linger.
func TestProducerMaxBatchBytes(t *testing.T) {
	f, c := setup(t, 1)
	p := newProducer(t, c, Linger(time.Hour), MaxBatchBytes(1024), MaxInflight(1))
	// Each record counts 26+200 bytes: four fit in 1024-61 bytes, five don't.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		r := (&Record{Topic: "t", Value: make([]byte, 200)}).SetPartition(0)
		r.Value[0] = byte(i)
		p.Produce(context.Background(), r, func(r *Record, err error) {
			defer wg.Done()
			if err != nil || r.Offset != int64(i) {
				t.Errorf("record %d: offset %d, %v", i, r.Offset, err)
			}
		})
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := fmt.Sprint(requestBatches(t, f.ProduceRequests()))
	if want := "[[4] [4] [2]]"; got != want {
		t.Fatalf("requests with batches of %s records, want %s", got, want)
	}
}

// TestProducerLinger checks that records are sent once Linger passes,
// without Flush, in one batch.
func TestProducerLinger(t *testing.T) {
	f, c := setup(t, 1)
	p := newProducer(t, c, Linger(time.Second))
	done := make(chan error, 3)
	for range 3 {
		p.Produce(context.Background(), &Record{Topic: "t", Value: []byte("v")}, func(_ *Record, err error) { done <- err })
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(requestBatches(t, f.ProduceRequests())); got != "[[3]]" {
		t.Fatalf("batches %s, want [[3]]", got)
	}
}

// TestProducerGathersPartitions: the requests of partitions whose batches
// are ready together travel in ProduceMany calls of several partitions,
// each with its own result. A call held at the proxy keeps the producer
// busy, so the requests after it gather.
func TestProducerGathersPartitions(t *testing.T) {
	const n = 100
	f, c := setup(t, n+1)
	release, holding := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	f.ProduceHook = func(req *stratav1.ProduceRequest) error {
		if req.GetPartition() == n && held.CompareAndSwap(false, true) {
			close(holding)
			<-release
		}
		return nil
	}
	p := newProducer(t, c, Linger(0))
	first := make(chan error, 1)
	p.Produce(context.Background(), &Record{Topic: "t", Partition: n, Value: []byte("first")}, func(_ *Record, err error) { first <- err })
	<-holding
	done := make(chan error, n)
	for i := range int32(n) {
		p.Produce(context.Background(), &Record{Topic: "t", Partition: i, Value: fmt.Appendf(nil, "%d", i)}, func(r *Record, err error) {
			if err == nil && (r.Offset != 0 || r.Partition != i) {
				err = fmt.Errorf("record of partition %d acked at %d/%d", i, r.Partition, r.Offset)
			}
			done <- err
		})
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// Each call gathers what arrives within half a millisecond, so a slow
	// machine makes more calls; one per request would mean no gathering.
	if calls := f.ProduceManyCalls(); calls > n/4 {
		t.Fatalf("%d partitions' requests took %d ProduceMany calls, want them gathered", n+1, calls)
	}
}

// TestProducerGathersFollowUps: requests sent while their partition's
// previous request is still in flight — most requests under load — also
// travel many to a ProduceMany call, apart from the others, and never as
// a Produce call of their own; every record is acknowledged in order.
func TestProducerGathersFollowUps(t *testing.T) {
	const n = 100
	f, c := setup(t, n)
	release, held, seconds := make(chan struct{}), make(chan struct{}, n), make(chan struct{}, 4*n)
	f.ProduceHook = func(req *stratav1.ProduceRequest) error {
		if bytes.Contains(req.GetBatches(), []byte("first")) {
			held <- struct{}{}
			<-release
		} else {
			seconds <- struct{}{}
		}
		return nil
	}
	p := newProducer(t, c, Linger(0))
	done := make(chan error, 2*n)
	produce := func(i int32, value string, offset int64) {
		r := (&Record{Topic: "t", Value: []byte(value)}).SetPartition(i)
		p.Produce(context.Background(), r, func(r *Record, err error) {
			if err == nil && r.Offset != offset {
				err = fmt.Errorf("record %q of partition %d acked at %d, want %d", value, i, r.Offset, offset)
			}
			done <- err
		})
	}
	for i := range int32(n) {
		produce(i, "first", 0)
	}
	for range n {
		<-held // every partition's first request is in flight
	}
	calls := f.ProduceManyCalls()
	for i := range int32(n) {
		produce(i, "second", 1)
	}
	for range n {
		<-seconds // every second request reached the proxy
	}
	// Each call gathers what arrives within half a millisecond, so a slow
	// machine makes more calls; one per request would mean no gathering.
	if got := f.ProduceManyCalls() - calls; got > n/4 {
		t.Errorf("%d requests sent behind one in flight took %d ProduceMany calls, want them gathered", n, got)
	}
	close(release)
	for range 2 * n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.ProduceCalls(); got != 0 {
		t.Errorf("%d requests went as Produce calls of their own, want 0", got)
	}
}

// TestProducerSendsLargeFollowUpAlone: a follow-up request that carries
// a large batch goes as a Produce call of its own: it amortizes its call,
// and gathered it would wait for the others' bytes.
func TestProducerSendsLargeFollowUpAlone(t *testing.T) {
	f, c := setup(t, 1)
	release, held := make(chan struct{}), make(chan struct{}, 1)
	f.ProduceHook = func(req *stratav1.ProduceRequest) error {
		if bytes.Contains(req.GetBatches(), []byte("first")) {
			held <- struct{}{}
			<-release
		}
		return nil
	}
	p := newProducer(t, c, Linger(0))
	done := make(chan error, 2)
	for _, value := range [][]byte{[]byte("first"), make([]byte, gatherFollowBytes)} {
		if string(value) != "first" {
			<-held // the first request is in flight
		}
		p.Produce(context.Background(), (&Record{Topic: "t", Value: value}).SetPartition(0), func(_ *Record, err error) { done <- err })
	}
	testenv.Eventually(t, "the large follow-up reaching the proxy", 0, func() bool { return f.ProduceCalls() == 1 })
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.ProduceCalls(); got != 1 {
		t.Errorf("%d Produce calls, want 1: the large follow-up alone", got)
	}
}

// TestProducerLingerDrainsTogether: when the oldest buffered record has
// lingered, every partition's buffer goes, and they travel in one
// ProduceMany call although none was in flight (the first does not leave
// alone), as a Kafka producer drains its partitions for a broker.
func TestProducerLingerDrainsTogether(t *testing.T) {
	const n = 20
	f, c := setup(t, n)
	p := newProducer(t, c, Linger(time.Hour))
	// An hour's gathering window: the group can only go as one call.
	p.calls = coalesce.New(func(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
		return c.api.ProduceMany(ctx, req)
	}, nil, time.Hour, 0)
	done := make(chan error, n)
	for i := range int32(n) {
		p.Produce(context.Background(), &Record{Topic: "t", Partition: i, Value: []byte("v")}, func(_ *Record, err error) { done <- err })
	}
	if calls := f.ProduceManyCalls(); calls != 0 {
		t.Fatalf("%d calls before the linger passed, want 0", calls)
	}
	p.lingerExpired() // the oldest record's linger has passed
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if calls := f.ProduceManyCalls(); calls != 1 {
		t.Fatalf("%d partitions lingering together took %d ProduceMany calls, want 1", n, calls)
	}
}

// TestProducerLingerQueuesPartitionOnce: a partition whose batch filled
// and began to linger again is drained once, not listed once per batch
// for as long as the linger lasts.
func TestProducerLingerQueuesPartitionOnce(t *testing.T) {
	_, c := setup(t, 1)
	p := newProducer(t, c, Linger(time.Hour), MaxBatchBytes(4096))
	value := make([]byte, 3000) // two do not fit in one batch
	for range 5 {
		p.Produce(context.Background(), &Record{Topic: "t", Partition: 0, Value: value}, nil)
	}
	p.mu.Lock()
	n := len(p.lingering)
	p.mu.Unlock()
	if n != 1 {
		t.Fatalf("one partition listed %d times for the linger, want 1", n)
	}
}

// TestProducerRetryNotOwner: the proxy answers NOT_OWNER twice (a broker
// failover), then accepts. Every record must be written exactly once and
// in produce order, although later batches were waiting during the
// retries.
func TestProducerRetryNotOwner(t *testing.T) {
	f, c := setup(t, 1)
	var calls atomic.Int32
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		if calls.Add(1) <= 2 {
			return apierr.Status(apierr.Errorf(apierr.ErrNotOwner, "failover"))
		}
		return nil
	}
	p := newProducer(t, c, Linger(0))
	const n = 50
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}
	}
	if err := p.ProduceSync(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	stored := f.Records(t, "t", 0)
	if len(stored) != n {
		t.Fatalf("stored %d records, want %d", len(stored), n)
	}
	for i, r := range stored {
		if string(r.Value) != fmt.Sprint(i) || r.Offset != int64(i) || recs[i].Offset != int64(i) {
			t.Fatalf("record %d: stored %q at %d, acked at %d", i, r.Value, r.Offset, recs[i].Offset)
		}
	}
	if calls.Load() < 3 {
		t.Fatalf("%d produce calls, want retries", calls.Load())
	}
}

func TestProducerErrors(t *testing.T) {
	f, c := setup(t, 2)
	var calls atomic.Int32
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		calls.Add(1)
		return apierr.Status(apierr.Errorf(apierr.ErrCorruptBatch, "bad crc"))
	}
	p := newProducer(t, c, Linger(0), MaxBatchBytes(1024))
	ctx := context.Background()
	tests := []struct {
		name string
		rec  *Record
		want error
	}{
		{"non-retriable server error", &Record{Topic: "t", Value: []byte("x")}, ErrCorruptBatch},
		{"unknown topic", &Record{Topic: "nope", Value: []byte("x")}, ErrUnknownTopic},
		{"partition out of range", (&Record{Topic: "t"}).SetPartition(2), ErrPartitionRange},
		{"negative partition", (&Record{Topic: "t"}).SetPartition(-1), ErrPartitionRange},
		{"nil record", nil, ErrInvalidRequest},
		{"empty topic", &Record{Value: []byte("x")}, ErrInvalidTopic},
		{"too large", &Record{Topic: "t", Value: make([]byte, 2000)}, ErrRecordTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.ProduceSync(ctx, tt.rec); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d produce calls, want 1 (no retry of a non-retriable error)", n)
	}
}

func TestProducerDeliveryTimeout(t *testing.T) {
	f, c := setup(t, 1)
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		return apierr.Status(apierr.ErrStorageUnavailable)
	}
	p := newProducer(t, c, Linger(0), DeliveryTimeout(100*time.Millisecond))
	err := p.ProduceSync(context.Background(), &Record{Topic: "t", Value: []byte("x")})
	if !errors.Is(err, ErrDeliveryTimeout) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrDeliveryTimeout", err)
	}
}

// TestProducerBufferFull: with the proxy stuck, Produce blocks once
// MaxBufferedBytes is held, until its context ends.
func TestProducerBufferFull(t *testing.T) {
	f, c := setup(t, 1)
	release := make(chan struct{})
	f.ProduceHook = func(*stratav1.ProduceRequest) error { <-release; return nil }
	p := newProducer(t, c, Linger(0), MaxBatchBytes(1024), MaxBufferedBytes(1024))
	defer close(release)
	ok := make(chan error, 10)
	for range 3 { // 3 × 326 bytes fit in 1024
		p.Produce(context.Background(), &Record{Topic: "t", Value: make([]byte, 300)}, func(_ *Record, err error) { ok <- err })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var got error
	p.Produce(ctx, &Record{Topic: "t", Value: make([]byte, 300)}, func(_ *Record, err error) { got = err })
	if !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("fourth record: %v, want to block until the deadline", got)
	}
}

func TestProducerClosed(t *testing.T) {
	_, c := setup(t, 1)
	p := newProducer(t, c)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(context.Background(), &Record{Topic: "t"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("produce after close: %v", err)
	}
}

// produceBatch writes values to partition 0 of "t" as a single batch,
// with timestamps base, base+1s, ….
func produceBatch(t *testing.T, c *Client, base time.Time, values ...string) {
	t.Helper()
	p := newProducer(t, c, Linger(time.Hour))
	recs := make([]*Record, len(values))
	for i, v := range values {
		recs[i] = (&Record{Topic: "t", Value: []byte(v), Key: []byte("k"), Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers: []Header{{Key: "h", Value: []byte(v)}}}).SetPartition(0)
	}
	errc := make(chan error, len(recs))
	for _, r := range recs {
		p.Produce(context.Background(), r, func(_ *Record, err error) { errc <- err })
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range recs {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func newConsumer(t *testing.T, c *Client, opts ...ConsumerOpt) *Consumer {
	t.Helper()
	cons, err := c.NewConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Close() })
	return cons
}

func pollN(t *testing.T, cons *Consumer, n int) []*Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Record
	for len(out) < n {
		recs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("poll after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
	}
	return out
}

// TestConsumerSkipsBelowPosition: a fetch from offset 5 returns the whole
// batch 0..9; the consumer must return 5..9 only.
func TestConsumerSkipsBelowPosition(t *testing.T) {
	_, c := setup(t, 1)
	base := time.UnixMilli(1_700_000_000_000)
	produceBatch(t, c, base, "0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
	cons := newConsumer(t, c)
	if err := cons.Seek("t", 0, 5); err != nil {
		t.Fatal(err)
	}
	recs := pollN(t, cons, 5)
	if len(recs) != 5 {
		t.Fatalf("got %d records, want 5", len(recs))
	}
	for i, r := range recs {
		want := int64(5 + i)
		if r.Offset != want || string(r.Value) != fmt.Sprint(want) || r.Topic != "t" || r.Partition != 0 ||
			string(r.Key) != "k" || len(r.Headers) != 1 || !r.Timestamp.Equal(base.Add(time.Duration(want)*time.Second)) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if pos, ok := cons.Position("t", 0); !ok || pos != 10 {
		t.Fatalf("position %d %v, want 10", pos, ok)
	}
}

func TestConsumerSeekToTime(t *testing.T) {
	f, c := setup(t, 1)
	base := time.UnixMilli(1_700_000_000_000)
	produceBatch(t, c, base, "0", "1", "2", "3", "4")
	cons := newConsumer(t, c)
	at := base.Add(3 * time.Second)
	if err := cons.SeekToTime(context.Background(), "t", 0, at); err != nil {
		t.Fatal(err)
	}
	reqs := f.ListOffsetsRequests()
	if len(reqs) != 1 || reqs[0].GetTimestampMs() != at.UnixMilli() {
		t.Fatalf("ListOffsets requests %v, want one at %d", reqs, at.UnixMilli())
	}
	recs := pollN(t, cons, 2)
	if recs[0].Offset != 3 || len(recs) != 2 {
		t.Fatalf("first record at %d (%d records), want 3 (2)", recs[0].Offset, len(recs))
	}
}

// TestConsumerStart checks both start positions: earliest reads what is
// there, latest only what comes after the first fetch.
func TestConsumerStart(t *testing.T) {
	_, c := setup(t, 2)
	produceBatch(t, c, time.Now(), "a", "b")

	early := newConsumer(t, c)
	if err := early.Assign("t"); err != nil {
		t.Fatal(err)
	}
	if recs := pollN(t, early, 2); string(recs[0].Value) != "a" {
		t.Fatalf("earliest: first value %q", recs[0].Value)
	}

	late := newConsumer(t, c, ConsumeStart(StartLatest), FetchMaxWait(10*time.Millisecond))
	if err := late.Assign("t", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if recs, err := late.Poll(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("latest: poll = %d records, %v; want none", len(recs), err)
	}
	if pos, ok := late.Position("t", 0); !ok || pos != 2 {
		t.Fatalf("latest: position %d %v, want 2", pos, ok)
	}
	produceBatch(t, c, time.Now(), "c")
	if recs := pollN(t, late, 1); recs[0].Offset != 2 || string(recs[0].Value) != "c" {
		t.Fatalf("latest: got %+v", recs[0])
	}
}

func TestConsumerErrors(t *testing.T) {
	_, c := setup(t, 1)
	ctx := context.Background()

	all := newConsumer(t, c)
	if err := all.Assign("nope"); err != nil {
		t.Fatal(err)
	}
	if _, err := all.Poll(ctx); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("all partitions of unknown topic: %v", err)
	}

	one := newConsumer(t, c)
	if err := one.Assign("nope", 0); err != nil {
		t.Fatal(err)
	}
	_, err := one.Poll(ctx)
	var fe *FetchError
	if !errors.Is(err, ErrUnknownTopic) || !errors.As(err, &fe) || fe.Topic != "nope" {
		t.Fatalf("one partition of unknown topic: %v", err)
	}

	far := newConsumer(t, c, OffsetReset(ResetNone))
	if err := far.Seek("t", 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := far.Poll(ctx); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("seek past the end: %v", err)
	}

	for name, err := range map[string]error{
		"empty topic":        one.Assign(""),
		"negative partition": one.Assign("t", -1),
		"negative offset":    one.Seek("t", 0, -5),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestConsumerOffsetReset seeks past the end of a partition: by default the
// consumer starts again from the first readable offset; with ResetLatest it
// waits at the high watermark for new records.
func TestConsumerOffsetReset(t *testing.T) {
	_, c := setup(t, 1)
	produceBatch(t, c, time.Now(), "a", "b")

	early := newConsumer(t, c)
	if err := early.Seek("t", 0, 100); err != nil {
		t.Fatal(err)
	}
	if recs := pollN(t, early, 2); recs[0].Offset != 0 || string(recs[1].Value) != "b" {
		t.Fatalf("reset to earliest: got offsets %d, %d", recs[0].Offset, recs[1].Offset)
	}

	late := newConsumer(t, c, OffsetReset(ResetLatest), FetchMaxWait(10*time.Millisecond))
	if err := late.Seek("t", 0, 100); err != nil {
		t.Fatal(err)
	}
	// Wait until the reset has landed at the high watermark, then write.
	deadline := time.Now().Add(10 * time.Second)
	for pos, _ := late.Position("t", 0); pos != 2; pos, _ = late.Position("t", 0) {
		if time.Now().After(deadline) {
			t.Fatalf("position %d after reset to latest, want 2", pos)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		if recs, err := late.Poll(ctx); len(recs) > 0 {
			t.Fatalf("reset to latest returned old records: %v", recs)
		} else if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		cancel()
	}
	produceBatch(t, c, time.Now(), "c")
	if recs := pollN(t, late, 1); recs[0].Offset != 2 {
		t.Fatalf("reset to latest: got offset %d, want 2", recs[0].Offset)
	}
}

// TestProducerSeesAddedPartitions: partitions added to a topic take
// records once the producer's cached partition count is MetadataMaxAge
// old, without a restart; partitions are never removed.
func TestProducerSeesAddedPartitions(t *testing.T) {
	_, c := setup(t, 2)
	ctx := context.Background()
	p := newProducer(t, c, MetadataMaxAge(20*time.Millisecond))
	produce := func() int32 {
		t.Helper()
		r := &Record{Topic: "t", Value: []byte("v")}
		if err := p.ProduceSync(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Partition
	}
	for range 10 {
		if got := produce(); got > 1 {
			t.Fatalf("a record went to partition %d of a 2-partition topic", got)
		}
	}
	info, err := c.AlterTopic(ctx, "t", Partitions(4))
	if err != nil || info.Partitions != 4 {
		t.Fatalf("add partitions: %+v, %v", info, err)
	}
	if _, err := c.AlterTopic(ctx, "t", Partitions(3)); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("fewer partitions: %v, want ErrInvalidRequest", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for produce() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no record reached partition 2 or 3 within 10 s of adding them")
		}
	}
}
