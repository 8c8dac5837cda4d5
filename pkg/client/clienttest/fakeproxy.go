// Package clienttest provides FakeProxy, an in-memory stand-in for a
// Strata proxy, for unit tests of the SDK and of code built on it (the
// CLI). It serves the public Strata gRPC service on 127.0.0.1 with a
// memory log per partition; it has no brokers, no durability and no
// object storage. End-to-end tests use the real servers instead.
package clienttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
	"google.golang.org/protobuf/proto"
)

// FakeProxy is an in-memory Strata proxy. Its exported hooks may be set
// before the first request.
type FakeProxy struct {
	stratav1.UnimplementedStrataServer

	// ProduceHook, if set, is called for every Produce before it is
	// applied; a non-nil error is returned to the client instead (as
	// apierr.Status would send it).
	ProduceHook func(*stratav1.ProduceRequest) error
	// AckHook, if set, is called for every Produce that was applied; a
	// non-nil error is returned to the client instead of the offsets, as
	// when an acknowledgement is lost. It runs under the fake's lock and
	// must not call the fake.
	AckHook func(*stratav1.ProduceRequest) error

	addr string

	mu          sync.Mutex
	topics      map[string]*fakeTopic          // guarded by mu
	produces    []*stratav1.ProduceRequest     // guarded by mu
	listOffsets []*stratav1.ListOffsetsRequest // guarded by mu
	manyCalls   int                            // guarded by mu
	manyParts   int                            // parts of the ProduceMany calls; guarded by mu
	// changed is closed and replaced on every append, to wake long polls.
	changed chan struct{} // guarded by mu
}

type fakeTopic struct {
	info  *stratav1.TopicInfo
	parts []*fakePartition
}

type fakePartition struct {
	batches [][]byte // stamped with offsets
	headers []segment.BatchHeader
	next    int64
	// seqs are the idempotent producers' applied requests, oldest first.
	seqs map[int64][]fakeSeq
}

// fakeSeq is one applied request of an idempotent producer.
type fakeSeq struct {
	first, last int32 // sequences
	base        int64 // offset of first
}

// fakeSeqHistory is how many requests per producer the fake remembers,
// as a broker does.
const fakeSeqHistory = 8

// Start starts a FakeProxy on 127.0.0.1 and stops it when t ends.
func Start(t testing.TB) *FakeProxy {
	t.Helper()
	f := &FakeProxy{topics: map[string]*fakeTopic{}, changed: make(chan struct{})}
	f.addr = f.Serve(t, "127.0.0.1:0").Addr
	return f
}

// Listener is one address a FakeProxy serves on.
type Listener struct {
	// Addr is the address served.
	Addr string
	// Produces and Fetches count the produce (Produce and ProduceMany)
	// and Fetch calls that arrived here.
	Produces, Fetches atomic.Int64
	srv               *rpc.Server
}

// Stop closes the listener and every connection to it at once, as when a
// proxy process is killed.
func (l *Listener) Stop() { l.srv.Stop() }

// Serve serves f on one more address — another proxy in front of the same
// partitions — until Stop or the end of t. addr may end in ":0"; opts
// may add TLS (rpc.WithServerTLS).
func (f *FakeProxy) Serve(t testing.TB, addr string, opts ...rpc.ServerOption) *Listener {
	t.Helper()
	l, err := rpc.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	fl := &Listener{Addr: l.Addr().String()}
	count := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		switch req.(type) {
		case *stratav1.ProduceRequest, *stratav1.ProduceManyRequest:
			fl.Produces.Add(1)
		case *stratav1.FetchRequest:
			fl.Fetches.Add(1)
		}
		return h(ctx, req)
	}
	opts = append(opts, rpc.WithUnaryInterceptors(count))
	fl.srv = rpc.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	stratav1.RegisterStrataServer(fl.srv.Server, f)
	fl.srv.SetServing(true)
	go func() { _ = fl.srv.Serve(l) }()
	t.Cleanup(fl.srv.Stop)
	return fl
}

// Addr returns the proxy's address.
func (f *FakeProxy) Addr() string { return f.addr }

// AddTopic creates a topic with n partitions, failing t if it exists.
func (f *FakeProxy) AddTopic(t testing.TB, name string, n int32) {
	t.Helper()
	if _, err := f.CreateTopic(context.Background(), &stratav1.CreateTopicRequest{Name: name, Partitions: n}); err != nil {
		t.Fatal(err)
	}
}

// ProduceRequests returns copies of the Produce requests received, in
// order, including rejected ones.
func (f *FakeProxy) ProduceRequests() []*stratav1.ProduceRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*stratav1.ProduceRequest, len(f.produces))
	for i, r := range f.produces {
		out[i] = proto.Clone(r).(*stratav1.ProduceRequest)
	}
	return out
}

// ListOffsetsRequests returns copies of the ListOffsets requests received.
func (f *FakeProxy) ListOffsetsRequests() []*stratav1.ListOffsetsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*stratav1.ListOffsetsRequest, len(f.listOffsets))
	for i, r := range f.listOffsets {
		out[i] = proto.Clone(r).(*stratav1.ListOffsetsRequest)
	}
	return out
}

// ForgetProducers drops a partition's idempotent-producer state, as a
// broker does for producers beyond the 32 it remembers per partition.
func (f *FakeProxy) ForgetProducers(t testing.TB, topic string, partition int32) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.partitionLocked(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	p.seqs = nil
}

// Records returns the decoded records of a partition, in offset order.
func (f *FakeProxy) Records(t testing.TB, topic string, partition int32) []segment.Record {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.partitionLocked(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	var out []segment.Record
	for _, b := range p.batches {
		recs, err := segment.DecodeRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

func (f *FakeProxy) partitionLocked(topic string, partition int32) (*fakePartition, error) {
	tp := f.topics[topic]
	if tp == nil {
		return nil, apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", topic)
	}
	if partition < 0 || int(partition) >= len(tp.parts) {
		return nil, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of %d", partition, len(tp.parts))
	}
	return tp.parts[partition], nil
}

// Produce appends the request's batches, stamping offsets.
// ProduceMany answers each part as Produce would, all at once.
func (f *FakeProxy) ProduceMany(ctx context.Context, req *stratav1.ProduceManyRequest) (*stratav1.ProduceManyResponse, error) {
	if err := rpc.CheckParts(len(req.GetParts())); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.manyCalls++
	f.manyParts += len(req.GetParts())
	f.mu.Unlock()
	results := make([]*stratav1.ProducePartResult, len(req.GetParts()))
	var wg sync.WaitGroup
	for i, part := range req.GetParts() {
		wg.Go(func() {
			resp, err := f.Produce(ctx, part)
			results[i] = &stratav1.ProducePartResult{Response: resp, Error: apierr.ToPart(err)}
		})
	}
	wg.Wait()
	return &stratav1.ProduceManyResponse{Results: results}, nil
}

// ProduceManyCalls returns the number of ProduceMany calls received.
func (f *FakeProxy) ProduceManyCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manyCalls
}

// ProduceCalls returns the number of Produce calls received, not counting
// the parts of ProduceMany calls.
func (f *FakeProxy) ProduceCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.produces) - f.manyParts
}

func (f *FakeProxy) Produce(_ context.Context, req *stratav1.ProduceRequest) (*stratav1.ProduceResponse, error) {
	f.mu.Lock()
	f.produces = append(f.produces, proto.Clone(req).(*stratav1.ProduceRequest))
	hook := f.ProduceHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(req); err != nil {
			return nil, err
		}
	}
	hs, err := segment.SplitBatches(req.GetBatches())
	if err != nil || len(hs) == 0 {
		return nil, apierr.Errorf(apierr.ErrCorruptBatch, "%v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.partitionLocked(req.GetTopic(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	if dup, err := p.checkSequence(hs); dup != nil || err != nil {
		return dup, err
	}
	base := p.next
	if err := p.append(req.GetBatches(), hs); err != nil {
		return nil, err
	}
	close(f.changed)
	f.changed = make(chan struct{})
	if f.AckHook != nil {
		if err := f.AckHook(req); err != nil {
			return nil, err
		}
	}
	return &stratav1.ProduceResponse{BaseOffset: base, LastOffset: p.next - 1}, nil
}

// checkSequence checks an idempotent producer's request against the
// requests applied before, as a broker does, and records it. A request
// seen already gets the answer it had (dup); a gap, or a duplicate not
// within one applied request, an error. f.mu must be held.
func (p *fakePartition) checkSequence(hs []segment.BatchHeader) (dup *stratav1.ProduceResponse, err error) {
	pid := hs[0].ProducerID
	if pid == segment.NoProducerID || hs[0].Attributes&segment.AttrControl != 0 {
		return nil, nil // a transaction marker has no sequence
	}
	first := hs[0].BaseSequence
	last := first
	for _, h := range hs {
		last = h.BaseSequence + h.RecordCount - 1
	}
	if p.seqs == nil {
		p.seqs = map[int64][]fakeSeq{}
	}
	hist := p.seqs[pid]
	if len(hist) == 0 && first != 0 {
		return nil, apierr.Status(apierr.Errorf(apierr.ErrOutOfOrderSequence, "sequence %d of a new producer, want 0", first))
	}
	if len(hist) > 0 {
		prev := hist[len(hist)-1]
		switch {
		case first > prev.last+1:
			return nil, apierr.Status(apierr.Errorf(apierr.ErrOutOfOrderSequence, "sequence %d, want %d", first, prev.last+1))
		case first <= prev.last:
			for _, q := range hist {
				if first >= q.first && last <= q.last {
					b := q.base + int64(first-q.first)
					return &stratav1.ProduceResponse{BaseOffset: b, LastOffset: b + int64(last-first)}, nil
				}
			}
			return nil, apierr.Status(apierr.Errorf(apierr.ErrInvalidRequest, "sequences %d..%d precede %d..%d", first, last, prev.first, prev.last))
		}
	}
	if len(hist) == fakeSeqHistory {
		hist = hist[1:]
	}
	p.seqs[pid] = append(hist, fakeSeq{first: first, last: last, base: p.next})
	return nil, nil
}

// append stores copies of the batches hs describes, stamped with the
// partition's next offsets. f.mu must be held.
func (p *fakePartition) append(batches []byte, hs []segment.BatchHeader) error {
	pos := 0
	for _, h := range hs {
		b := append([]byte(nil), batches[pos:pos+h.Size()]...)
		pos += h.Size()
		if _, err := segment.DecodeRecords(b); err != nil {
			return apierr.Errorf(apierr.ErrCorruptBatch, "%v", err)
		}
		segment.SetBaseOffset(b, p.next)
		h.BaseOffset = p.next
		p.batches = append(p.batches, b)
		p.headers = append(p.headers, h)
		p.next += int64(h.RecordCount)
	}
	return nil
}

// Fetch returns whole batches from the one holding the offset, waiting up
// to max_wait_ms at the end of the partition.
func (f *FakeProxy) Fetch(ctx context.Context, req *stratav1.FetchRequest) (*stratav1.FetchResponse, error) {
	var timer <-chan time.Time
	if req.GetMaxWaitMs() > 0 {
		t := time.NewTimer(time.Duration(req.GetMaxWaitMs()) * time.Millisecond)
		defer t.Stop()
		timer = t.C
	}
	maxBytes := int(req.GetMaxBytes())
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	for {
		f.mu.Lock()
		p, err := f.partitionLocked(req.GetTopic(), req.GetPartition())
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		off := req.GetOffset()
		if off < 0 || off > p.next {
			f.mu.Unlock()
			return nil, apierr.Errorf(apierr.ErrOffsetOutOfRange, "offset %d, high watermark %d", off, p.next)
		}
		if off < p.next || timer == nil {
			resp := &stratav1.FetchResponse{HighWatermark: p.next}
			for i, h := range p.headers {
				if h.LastOffset() < off {
					continue
				}
				if len(resp.Batches) > 0 && len(resp.Batches)+len(p.batches[i]) > maxBytes {
					break
				}
				resp.Batches = append(resp.Batches, p.batches[i]...)
			}
			f.mu.Unlock()
			return resp, nil
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-timer:
			timer = nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ListOffsets resolves EARLIEST (0), LATEST (the next offset) or the first
// offset with a timestamp at or after the time.
func (f *FakeProxy) ListOffsets(_ context.Context, req *stratav1.ListOffsetsRequest) (*stratav1.ListOffsetsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listOffsets = append(f.listOffsets, proto.Clone(req).(*stratav1.ListOffsetsRequest))
	p, err := f.partitionLocked(req.GetTopic(), req.GetPartition())
	if err != nil {
		return nil, err
	}
	resp := &stratav1.ListOffsetsResponse{HighWatermark: p.next}
	switch ts := req.GetTimestampMs(); {
	case ts == int64(stratav1.OffsetSpec_EARLIEST):
		resp.Offset = 0
	case ts == int64(stratav1.OffsetSpec_LATEST):
		resp.Offset = p.next
	case ts < 0:
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "timestamp %d", ts)
	default:
		resp.Offset = p.next
	search:
		for _, b := range p.batches {
			recs, err := segment.DecodeRecords(b)
			if err != nil {
				return nil, err
			}
			for _, r := range recs {
				if r.Timestamp >= ts {
					resp.Offset = r.Offset
					break search
				}
			}
		}
	}
	return resp, nil
}

// CreateTopic creates a topic; names may not be empty or hold '/' or
// spaces.
func (f *FakeProxy) CreateTopic(_ context.Context, req *stratav1.CreateTopicRequest) (*stratav1.CreateTopicResponse, error) {
	name := req.GetName()
	if name == "" || strings.ContainsAny(name, "/ \t\n") {
		return nil, apierr.Errorf(apierr.ErrInvalidTopic, "%q", name)
	}
	n := max(req.GetPartitions(), 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.topics[name] != nil {
		return nil, apierr.Errorf(apierr.ErrTopicExists, "%q", name)
	}
	info := &stratav1.TopicInfo{
		Name:        name,
		Id:          fmt.Sprintf("id-%s", name),
		Partitions:  n,
		Config:      req.GetConfig(),
		CreatedAtMs: time.Now().UnixMilli(),
	}
	tp := &fakeTopic{info: info}
	for range n {
		tp.parts = append(tp.parts, &fakePartition{})
	}
	f.topics[name] = tp
	return &stratav1.CreateTopicResponse{Topic: info}, nil
}

// DeleteTopic deletes a topic.
func (f *FakeProxy) DeleteTopic(_ context.Context, req *stratav1.DeleteTopicRequest) (*stratav1.DeleteTopicResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.topics[req.GetName()] == nil {
		return nil, apierr.Errorf(apierr.ErrUnknownTopic, "%q", req.GetName())
	}
	delete(f.topics, req.GetName())
	return &stratav1.DeleteTopicResponse{}, nil
}

// ListTopics lists topics (in no particular order).
func (f *FakeProxy) ListTopics(context.Context, *stratav1.ListTopicsRequest) (*stratav1.ListTopicsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &stratav1.ListTopicsResponse{}
	for _, t := range f.topics {
		resp.Topics = append(resp.Topics, proto.Clone(t.info).(*stratav1.TopicInfo))
	}
	return resp, nil
}

// DescribeTopic describes a topic; every partition is owned by broker
// "fake-broker" at epoch 1.
func (f *FakeProxy) DescribeTopic(_ context.Context, req *stratav1.DescribeTopicRequest) (*stratav1.DescribeTopicResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.topics[req.GetName()]
	if t == nil {
		return nil, apierr.Errorf(apierr.ErrUnknownTopic, "%q", req.GetName())
	}
	info := proto.Clone(t.info).(*stratav1.TopicInfo)
	for i, p := range t.parts {
		info.PartitionInfo = append(info.PartitionInfo, &stratav1.PartitionInfo{
			Partition: int32(i), Broker: "fake-broker", Epoch: 1, HighWatermark: p.next,
		})
	}
	return &stratav1.DescribeTopicResponse{Topic: info}, nil
}

// ClusterStatus reports one coordinator and one broker owning every
// partition.
func (f *FakeProxy) ClusterStatus(context.Context, *stratav1.ClusterStatusRequest) (*stratav1.ClusterStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := &stratav1.BrokerStatus{Id: "fake-broker", Addr: f.addr, Zone: "local"}
	for name, t := range f.topics {
		for i := range t.parts {
			b.Partitions = append(b.Partitions, &stratav1.PartitionRef{Topic: name, Partition: int32(i), Epoch: 1})
		}
	}
	return &stratav1.ClusterStatusResponse{CoordinatorLeader: "fake-coordinator", CoordinatorAddr: f.addr, Brokers: []*stratav1.BrokerStatus{b}}, nil
}

// AlterTopic replaces the non-zero fields of a topic's config, sets the
// ones named in reset_to_default to 0 (the default) and adds partitions.
func (f *FakeProxy) AlterTopic(_ context.Context, req *stratav1.AlterTopicRequest) (*stratav1.AlterTopicResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.topics[req.GetName()]
	if t == nil {
		return nil, apierr.Errorf(apierr.ErrUnknownTopic, "%q", req.GetName())
	}
	if n := req.GetPartitions(); n != 0 && n < t.info.Partitions {
		return nil, apierr.Errorf(apierr.ErrInvalidRequest, "topic %q has %d partitions; partitions can only be added", req.GetName(), t.info.Partitions)
	}
	for int32(len(t.parts)) < req.GetPartitions() {
		t.parts = append(t.parts, &fakePartition{})
	}
	t.info.Partitions = int32(len(t.parts))
	cfg := proto.Clone(t.info.GetConfig()).(*stratav1.TopicConfig)
	if cfg == nil {
		cfg = &stratav1.TopicConfig{}
	}
	if v := req.GetConfig().GetRetentionMs(); v != 0 {
		cfg.RetentionMs = v
	}
	if v := req.GetConfig().GetRetentionBytes(); v != 0 {
		cfg.RetentionBytes = v
	}
	if v := req.GetConfig().GetMaxMessageBytes(); v != 0 {
		cfg.MaxMessageBytes = v
	}
	if v := req.GetConfig().GetCleanupPolicy(); v != "" {
		cfg.CleanupPolicy = v
	}
	for _, name := range req.GetResetToDefault() { // 0: the default
		switch name {
		case "retention_ms":
			cfg.RetentionMs = 0
		case "retention_bytes":
			cfg.RetentionBytes = 0
		case "max_message_bytes":
			cfg.MaxMessageBytes = 0
		case "cleanup_policy":
			cfg.CleanupPolicy = ""
		default:
			return nil, apierr.Errorf(apierr.ErrInvalidRequest, "cannot reset %q", name)
		}
	}
	t.info.Config = cfg
	return &stratav1.AlterTopicResponse{Topic: proto.Clone(t.info).(*stratav1.TopicInfo)}, nil
}
