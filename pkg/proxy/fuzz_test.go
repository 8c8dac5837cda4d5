package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/internal/testenv"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/rpc"
	"github.com/strata-mq/strata/pkg/segment"
)

// The fuzzers drive the proxy's public request handlers — through the
// gRPC server, so that the guard (tokens and ACLs are on) and the limits
// run too — with malformed and extreme requests. A crash, a hang past the
// deadline, or an Internal/Unknown status (a panic or an unclassified
// error) fails them. Run each for a minute with:
//
//	go test ./pkg/proxy -run '^$' -fuzz '^FuzzProduce$' -fuzztime 1m -parallel 1

// fuzzEnv is one proxy with a topic "t" of 2 partitions owned by a real
// (test) broker, reached as the super user.
type fuzzEnv struct {
	conn *grpc.ClientConn
	api  stratav1.StrataClient
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	f.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms, err := meta.New(meta.Config{Endpoints: etcd.Endpoints(), Prefix: testenv.Prefix(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ms.Close() })
	store, err := objstore.NewFS(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	tokens := filepath.Join(f.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(auth.TokenLine("root", "tok-root")+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	srv, err := New(Config{
		ListenAddr: "127.0.0.1:0", Meta: ms, Store: store, Registry: prometheus.NewRegistry(),
		ProduceTimeout: 200 * time.Millisecond, AdminTimeout: 100 * time.Millisecond, MaxFetchWait: 20 * time.Millisecond, ShutdownTimeout: time.Second,
		Auth:   auth.Config{TokenFile: tokens, ACLs: true, SuperUsers: []string{"root"}},
		Limits: Limits{MaxHeadersPerRecord: 64},
		Logger: testLogger(),
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	<-srv.Ready()
	top, err := ms.CreateTopic(ctx, meta.Topic{Name: "t", Partitions: 2, RetentionMs: -1, RetentionBytes: -1})
	if err != nil {
		f.Fatal(err)
	}
	b := &testBroker{id: "b1", meta: ms, store: store}
	bs := rpc.NewServer(testLogger())
	stratav1.RegisterBrokerServer(bs, b)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	b.addr = lis.Addr().String()
	go bs.Serve(lis)
	f.Cleanup(bs.Stop)
	reg, err := ms.RegisterBroker(ctx, meta.BrokerInfo{ID: "b1", Addr: b.addr}, 10*time.Second)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { reg.Close(context.Background()) })
	for p := range int32(2) {
		st, err := ms.GetPartition(ctx, top.ID, p)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := ms.AssignPartition(ctx, st, "b1"); err != nil {
			f.Fatal(err)
		}
	}
	conn, err := rpc.Dial(srv.Addr(), rpc.WithBearerToken("tok-root"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	return &fuzzEnv{conn: conn, api: stratav1.NewStrataClient(conn)}
}

// check fails on statuses that mean a bug rather than bad input, and
// makes sure the server still answers.
func (e *fuzzEnv) check(t *testing.T, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown:
		t.Fatalf("bad input caused %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("server unhealthy after the request: %v", err)
	}
}

func fuzzCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 300*time.Millisecond)
}

func seedBatches(f *testing.F) [][]byte {
	one, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Key: []byte("k"), Value: []byte("v"),
		Headers: []segment.Header{{Key: "h", Value: []byte("x")}}}}, segment.BatchOptions{})
	if err != nil {
		f.Fatal(err)
	}
	z, err := segment.EncodeBatch([]segment.Record{{Timestamp: 1, Value: []byte("zzzzzzzzzzzz")}}, segment.BatchOptions{Codec: segment.CodecZstd})
	if err != nil {
		f.Fatal(err)
	}
	return [][]byte{one, z, append(append([]byte(nil), one...), z...), one[:len(one)-3], {}, []byte("garbage")}
}

func FuzzProduce(f *testing.F) {
	e := newFuzzEnv(f)
	for i, b := range seedBatches(f) {
		f.Add("t", int32(i%3), b)
	}
	f.Add("", int32(-1), []byte{0xff})
	f.Add("../../etc", int32(1<<30), []byte{})
	f.Fuzz(func(t *testing.T, topic string, partition int32, batches []byte) {
		if !utf8.ValidString(topic) {
			return // proto3 strings are UTF-8: the client cannot send it
		}
		ctx, cancel := fuzzCtx()
		defer cancel()
		_, err := e.api.Produce(ctx, &stratav1.ProduceRequest{Topic: topic, Partition: partition, Batches: batches})
		e.check(t, err)
	})
}

func FuzzFetch(f *testing.F) {
	e := newFuzzEnv(f)
	// Put some data in so that fetches find segments.
	for _, b := range seedBatches(f)[:3] {
		ctx, cancel := fuzzCtx()
		if _, err := e.api.Produce(ctx, &stratav1.ProduceRequest{Topic: "t", Partition: 0, Batches: b}); err != nil {
			f.Fatal(err)
		}
		cancel()
	}
	f.Add("t", int32(0), int64(0), int32(1<<20), int32(0), int32(0), int64(-1))
	f.Add("t", int32(1), int64(-5), int32(-1), int32(-1), int32(-7), int64(-2))
	f.Add("t", int32(0), int64(1<<62), int32(1<<30), int32(1<<30), int32(1<<30), int64(1<<62))
	f.Add("nope", int32(0), int64(2), int32(1), int32(5), int32(0), int64(0))
	f.Fuzz(func(t *testing.T, topic string, partition int32, offset int64, maxBytes, maxWait, minBytes int32, ts int64) {
		if !utf8.ValidString(topic) {
			return // proto3 strings are UTF-8: the client cannot send it
		}
		ctx, cancel := fuzzCtx()
		defer cancel()
		_, err := e.api.Fetch(ctx, &stratav1.FetchRequest{Topic: topic, Partition: partition, Offset: offset, MaxBytes: maxBytes, MaxWaitMs: maxWait, MinBytes: minBytes})
		e.check(t, err)
		_, err = e.api.ListOffsets(ctx, &stratav1.ListOffsetsRequest{Topic: topic, Partition: partition, TimestampMs: ts})
		e.check(t, err)
	})
}

// fuzzMethods are the public API's calls that FuzzAnyRequest drives with
// requests decoded from arbitrary bytes.
var fuzzMethods = []struct {
	name      string
	req, resp func() proto.Message
}{
	{"Produce", func() proto.Message { return &stratav1.ProduceRequest{} }, func() proto.Message { return &stratav1.ProduceResponse{} }},
	{"Fetch", func() proto.Message { return &stratav1.FetchRequest{} }, func() proto.Message { return &stratav1.FetchResponse{} }},
	{"ListOffsets", func() proto.Message { return &stratav1.ListOffsetsRequest{} }, func() proto.Message { return &stratav1.ListOffsetsResponse{} }},
	{"CreateTopic", func() proto.Message { return &stratav1.CreateTopicRequest{} }, func() proto.Message { return &stratav1.CreateTopicResponse{} }},
	{"DescribeTopic", func() proto.Message { return &stratav1.DescribeTopicRequest{} }, func() proto.Message { return &stratav1.DescribeTopicResponse{} }},
	{"GroupHeartbeat", func() proto.Message { return &stratav1.GroupHeartbeatRequest{} }, func() proto.Message { return &stratav1.GroupHeartbeatResponse{} }},
	{"CommitOffsets", func() proto.Message { return &stratav1.CommitOffsetsRequest{} }, func() proto.Message { return &stratav1.CommitOffsetsResponse{} }},
	{"AddAcl", func() proto.Message { return &stratav1.AddAclRequest{} }, func() proto.Message { return &stratav1.AddAclResponse{} }},
	{"RemoveAcl", func() proto.Message { return &stratav1.RemoveAclRequest{} }, func() proto.Message { return &stratav1.RemoveAclResponse{} }},
	{"ListAcls", func() proto.Message { return &stratav1.ListAclsRequest{} }, func() proto.Message { return &stratav1.ListAclsResponse{} }},
}

func FuzzAnyRequest(f *testing.F) {
	e := newFuzzEnv(f)
	for i, m := range fuzzMethods {
		var seed proto.Message
		switch m.name {
		case "Produce":
			seed = &stratav1.ProduceRequest{Topic: "t", Batches: seedBatches(f)[0]}
		case "Fetch":
			seed = &stratav1.FetchRequest{Topic: "t", MaxBytes: 100}
		case "AddAcl", "RemoveAcl":
			seed = &stratav1.AddAclRequest{Acl: &stratav1.Acl{Principal: "p", ResourceType: "topic", ResourceName: "t*", Operation: "produce"}}
		default:
			seed = m.req()
		}
		b, err := proto.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := fuzzMethods[int(which)%len(fuzzMethods)]
		req := m.req()
		if err := proto.Unmarshal(data, req); err != nil {
			return // not a message; gRPC would refuse it before any handler
		}
		ctx, cancel := fuzzCtx()
		defer cancel()
		err := e.conn.Invoke(ctx, "/strata.v1.Strata/"+m.name, req, m.resp())
		e.check(t, err)
	})
}

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
