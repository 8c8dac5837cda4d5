package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/tlsgen"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/client/clienttest"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// pidsPerValue maps each record value in the fake's produce requests to
// the producer ids it was sent under.
func pidsPerValue(t *testing.T, reqs []*stratav1.ProduceRequest) map[string]map[int64]bool {
	t.Helper()
	out := map[string]map[int64]bool{}
	for _, req := range reqs {
		hs, err := segment.SplitBatches(req.GetBatches())
		if err != nil {
			t.Fatal(err)
		}
		pos := 0
		for _, h := range hs {
			recs, err := segment.DecodeRecords(req.GetBatches()[pos : pos+h.Size()])
			if err != nil {
				t.Fatal(err)
			}
			pos += h.Size()
			for _, r := range recs {
				if out[string(r.Value)] == nil {
					out[string(r.Value)] = map[int64]bool{}
				}
				out[string(r.Value)][h.ProducerID] = true
			}
		}
	}
	return out
}

// TestProducerUnknownOutcome: every acknowledgement is lost and every
// retry fails in transit, until the delivery timeout. The records must be
// reported with ErrUnknownOutcome (not as plainly failed, not retriable),
// stored at most once, and no record may be sent under a second producer
// id — the failure that used to store values twice. The fake serves the
// requests in flight concurrently, so a later request may reach it first
// and be refused as out of order; a record whose only answers were such
// refusals was definitely not stored, and may be reported as plainly
// timed out (and retriable: resending it is safe) — but then it must not
// be stored. So may a record whose deadline passed before it was first
// sent, which happens when a busy machine delays the sender past the
// 300 ms delivery timeout.
func TestProducerUnknownOutcome(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("first attempt applied=%v", applied), func(t *testing.T) {
			f, c := setup(t, 1)
			var mu sync.Mutex
			seen := map[string]bool{}
			f.ProduceHook = func(req *stratav1.ProduceRequest) error {
				mu.Lock()
				defer mu.Unlock()
				k := string(req.GetBatches())
				if !applied || seen[k] {
					return status.Error(codes.Unavailable, "connection reset by peer")
				}
				seen[k] = true
				return nil
			}
			f.AckHook = func(*stratav1.ProduceRequest) error {
				return apierr.Status(apierr.Errorf(apierr.ErrTimeout, "acknowledgement lost"))
			}
			p := newProducer(t, c, Linger(0), MaxInflight(5), DeliveryTimeout(300*time.Millisecond))
			recs, errs := produceN(t, p, 40)
			stored := f.Records(t, "t", 0)
			count := map[string]int{}
			for _, r := range stored {
				if count[string(r.Value)]++; count[string(r.Value)] > 1 {
					t.Fatalf("record %q stored twice", r.Value)
				}
			}
			unknown := 0
			for i, err := range errs {
				if !errors.Is(err, ErrDeliveryTimeout) {
					t.Fatalf("record %d: %v, want ErrDeliveryTimeout", i, err)
				}
				switch {
				case errors.Is(err, ErrUnknownOutcome):
					if IsRetriable(err) {
						t.Fatalf("record %d: %v is retriable: resending a record that may be stored stores it twice", i, err)
					}
					unknown++
				case !IsRetriable(err):
					t.Fatalf("record %d: %v is neither ErrUnknownOutcome nor retriable", i, err)
				case count[string(recs[i].Value)] > 0:
					t.Fatalf("record %d was reported as not stored (%v), and it is stored", i, err)
				}
			}
			if unknown == 0 {
				t.Fatal("no record was reported with ErrUnknownOutcome")
			}
			if applied != (len(stored) > 0) {
				t.Fatalf("%d records stored", len(stored))
			}
			for v, pids := range pidsPerValue(t, f.ProduceRequests()) {
				if len(pids) > 1 {
					t.Fatalf("record %q was sent under %d producer ids", v, len(pids))
				}
			}
		})
	}
}

// TestProducerRefusedIsNotUnknown: a request the server refused outright
// fails with the server's error, not ErrUnknownOutcome.
func TestProducerRefusedIsNotUnknown(t *testing.T) {
	f, c := setup(t, 1)
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		return apierr.Status(apierr.Errorf(apierr.ErrPermissionDenied, "no"))
	}
	p := newProducer(t, c, Linger(0))
	err := p.ProduceSync(context.Background(), &Record{Topic: "t", Value: []byte("x")})
	if !errors.Is(err, apierr.ErrPermissionDenied) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v, want PERMISSION_DENIED without ErrUnknownOutcome", err)
	}
}

// TestProducerWaitsForProxy: the only proxy is down for a second — far
// longer than the old attempt limit lasted with fast "connection refused"
// answers. Records produced meanwhile are sent as soon as it is back
// (within the reconnect backoff), each written exactly once, in order,
// under one producer id.
func TestProducerWaitsForProxy(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 1)
	l := f.Serve(t, "127.0.0.1:0")
	c, err := New(l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newProducer(t, c, Linger(0))
	recs, errs := produceN(t, p, 10)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	const n = 100
	var acked atomic.Int64
	var firstAck atomic.Int64 // unix nanos
	done := make(chan error, n)
	for i := range n {
		r := (&Record{Topic: "t", Value: fmt.Appendf(nil, "%d", 10+i)}).SetPartition(0)
		recs = append(recs, r)
		p.Produce(context.Background(), r, func(_ *Record, err error) {
			if err == nil && acked.Add(1) == 1 {
				firstAck.Store(time.Now().UnixNano())
			}
			done <- err
		})
	}
	time.Sleep(time.Second) // the outage
	if acked.Load() != 0 {
		t.Fatal("acknowledged while the proxy was down")
	}
	back := time.Now()
	f.Serve(t, l.Addr)
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("records not acknowledged after the proxy came back")
		}
	}
	delay := time.Unix(0, firstAck.Load()).Sub(back)
	t.Logf("first acknowledgement %v after the proxy was back", delay)
	if delay > 2*time.Second {
		t.Fatalf("first acknowledgement %v after the proxy was back, want well under the reconnect backoff cap", delay)
	}
	checkStored(t, f.Records(t, "t", 0), recs, seq(0, 10+n))
	pids := map[int64]bool{}
	for _, req := range f.ProduceRequests() {
		pid, _ := seqOf(req)
		pids[pid] = true
	}
	if len(pids) != 1 {
		t.Fatalf("%d producer ids, want 1", len(pids))
	}
}

// produceRounds produces rounds of 8 records, one round at a time, until
// done says stop or rounds run out; it fails t on any error.
func produceRounds(t *testing.T, p *Producer, prefix string, rounds int, done func() bool) int {
	t.Helper()
	n := 0
	for i := 0; i < rounds && !done(); i++ {
		recs := make([]*Record, 8)
		for j := range recs {
			recs[j] = &Record{Topic: "t", Value: fmt.Appendf(nil, "%s%d-%d", prefix, i, j)}
		}
		if err := p.ProduceSync(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
		n += len(recs)
	}
	return n
}

// checkOnce checks that the fake holds n records over its 4 partitions of
// "t", none twice.
func checkOnce(t *testing.T, f *clienttest.FakeProxy, n int) {
	t.Helper()
	seen := map[string]bool{}
	for part := range int32(4) {
		for _, r := range f.Records(t, "t", part) {
			if seen[string(r.Value)] {
				t.Fatalf("record %q stored twice", r.Value)
			}
			seen[string(r.Value)] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("stored %d records, want %d", len(seen), n)
	}
}

// TestClientSeveralProxies: a client of two proxies ("a,b") spreads
// produce requests over both, and goes on through one when the other is
// killed.
func TestClientSeveralProxies(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 4)
	a, b := f.Serve(t, "127.0.0.1:0"), f.Serve(t, "127.0.0.1:0")
	c, err := New(a.Addr + ", " + b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newProducer(t, c, Linger(0))
	n := produceRounds(t, p, "a", 500, func() bool { return a.Produces.Load() > 5 && b.Produces.Load() > 5 })
	if a.Produces.Load() == 0 || b.Produces.Load() == 0 {
		t.Fatalf("produce requests: %d to a, %d to b; want both used", a.Produces.Load(), b.Produces.Load())
	}
	a.Stop()
	before := b.Produces.Load()
	n += produceRounds(t, p, "b", 20, func() bool { return false })
	if b.Produces.Load() == before {
		t.Fatal("no request went to the proxy left")
	}
	checkOnce(t, f, n)
}

// TestClientDNSProxies: a name that resolves to two addresses (served by
// a DNS server of the test, named in the gRPC target) is two proxies.
func TestClientDNSProxies(t *testing.T) {
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 4)
	a := f.Serve(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(a.Addr)
	b := f.Serve(t, "127.0.0.2:"+port)
	dns := startDNS(t, "proxies.strata.test.", [4]byte{127, 0, 0, 1}, [4]byte{127, 0, 0, 2})
	c, err := New("dns://" + dns + "/proxies.strata.test:" + port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newProducer(t, c, Linger(0))
	n := produceRounds(t, p, "a", 500, func() bool { return a.Produces.Load() > 5 && b.Produces.Load() > 5 })
	if a.Produces.Load() == 0 || b.Produces.Load() == 0 {
		t.Fatalf("produce requests: %d to %s, %d to %s; want both used", a.Produces.Load(), a.Addr, b.Produces.Load(), b.Addr)
	}
	checkOnce(t, f, n)
}

// startDNS serves A records of name on a UDP port of 127.0.0.1 until t
// ends; other questions get empty answers. It returns the address.
func startDNS(t *testing.T, name string, ips ...[4]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if msg, err := dnsAnswer(buf[:n], name, ips); err == nil {
				_, _ = pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// dnsAnswer answers one DNS query: ips for an A question of name, nothing
// for any other question.
func dnsAnswer(query []byte, name string, ips [][4]byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA && strings.EqualFold(q.Name.String(), name) {
		for _, ip := range ips {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
			if err := b.AResource(rh, dnsmessage.AResource{A: ip}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

// TestProducerMergesQueuedBatches: while a request is held (an outage),
// thousands of records queue as batches of one record each (Linger 0).
// They must go out merged, one record batch per request — a proxy
// refuses a produce of more than 4,096 batches — written once, in order.
func TestProducerMergesQueuedBatches(t *testing.T) {
	f, c := setup(t, 1)
	release := make(chan struct{})
	var once sync.Once
	f.ProduceHook = func(*stratav1.ProduceRequest) error {
		once.Do(func() { <-release })
		return nil
	}
	p := newProducer(t, c, Linger(0), MaxInflight(1))
	const n = 6000
	recs := make([]*Record, n)
	done := make(chan error, n)
	for i := range recs {
		recs[i] = (&Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}).SetPartition(0)
		p.Produce(context.Background(), recs[i], func(_ *Record, err error) { done <- err })
	}
	close(release)
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i, batches := range requestBatches(t, f.ProduceRequests()) {
		if len(batches) != 1 {
			t.Fatalf("request %d has %d batches, want 1", i, len(batches))
		}
	}
	checkStored(t, f.Records(t, "t", 0), recs, seq(0, n))
}

// TestClientSeveralProxiesTLS: each proxy of a list is verified against
// its own name ("localhost:…" by DNS name, "127.0.0.1:…" by IP address),
// not against the list.
func TestClientSeveralProxiesTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WriteIssued(dir, "proxy", "proxy", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := rpc.LoadTLS(rpc.TLSConfig{CertFile: files.Cert, KeyFile: files.Key})
	if err != nil {
		t.Fatal(err)
	}
	cliTLS, err := rpc.LoadTLS(rpc.TLSConfig{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	f := clienttest.Start(t)
	f.AddTopic(t, "t", 4)
	a := f.Serve(t, "127.0.0.1:0", rpc.WithServerTLS(srvTLS))
	b := f.Serve(t, "127.0.0.1:0", rpc.WithServerTLS(srvTLS))
	_, portA, _ := net.SplitHostPort(a.Addr)
	c, err := New("localhost:"+portA+","+b.Addr, TLS(cliTLS))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := newProducer(t, c, Linger(0))
	n := produceRounds(t, p, "tls", 500, func() bool { return a.Produces.Load() > 5 && b.Produces.Load() > 5 })
	if a.Produces.Load() == 0 || b.Produces.Load() == 0 {
		t.Fatalf("produce requests over TLS: %d to a, %d to b; want both used", a.Produces.Load(), b.Produces.Load())
	}
	checkOnce(t, f, n)
}

// TestProducerNeverConnected: with no proxy reachable at all, nothing is
// sent, so records fail with ErrDeliveryTimeout — known not written — and
// not with ErrUnknownOutcome.
func TestProducerNeverConnected(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	// Several attempts within the delivery timeout.
	c, err := New(addr, RequestTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := c.NewProducer(DeliveryTimeout(400*time.Millisecond), Linger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	// The partition count is known without a proxy when the record names
	// its partition, so seed the topic cache.
	p.topicsMu.Lock()
	p.topics["t"] = &topicState{ready: closedChan(), n: 1}
	p.topicsMu.Unlock()
	err = p.ProduceSync(context.Background(), (&Record{Topic: "t", Value: []byte("x")}).SetPartition(0))
	if !errors.Is(err, ErrDeliveryTimeout) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("got %v, want ErrDeliveryTimeout without ErrUnknownOutcome", err)
	}
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}
