package kafka_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/segment"
)

// raw is a bare TCP connection to the Kafka listener, for tests that must
// control every byte: pipelining, malformed frames, old versions.
type raw struct {
	t    testing.TB
	conn net.Conn
	fmt  *kmsg.RequestFormatter
	corr int32
}

func (c *cluster) raw() *raw {
	c.t.Helper()
	conn, err := net.Dial("tcp", c.kafka.Addr())
	if err != nil {
		c.t.Fatal(err)
	}
	return c.rawOn(conn)
}

// rawOn wraps an open connection (TLS, say).
func (c *cluster) rawOn(conn net.Conn) *raw {
	c.t.Helper()
	c.t.Cleanup(func() { conn.Close() })
	return &raw{t: c.t, conn: conn, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-test"))}
}

// send writes req at its set version and returns its correlation id.
func (r *raw) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	if _, err := r.conn.Write(r.fmt.AppendRequest(nil, req, r.corr)); err != nil {
		r.t.Fatal(err)
	}
	return r.corr
}

// write writes bytes as they are.
func (r *raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// recv reads one response frame into resp (whose version must be set) and
// returns its correlation id.
func (r *raw) recv(resp kmsg.Response) int32 {
	r.t.Helper()
	body, err := r.frame()
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	rd := kbin.Reader{Src: body}
	corr := rd.Int32()
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		kmsg.SkipTags(&rd)
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		r.t.Fatalf("decode %T: %v", resp, err)
	}
	return corr
}

// frame reads one size-prefixed frame, with a deadline.
func (r *raw) frame() ([]byte, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.conn, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(r.conn, b)
	return b, err
}

// roundTrip sends req and reads its response.
func (r *raw) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	corr := r.send(req)
	resp := req.ResponseKind()
	if got := r.recv(resp); got != corr {
		r.t.Fatalf("response correlation id %d, want %d", got, corr)
	}
	return resp
}

// expectClosed asserts that the proxy closes the connection without
// answering.
func (r *raw) expectClosed() {
	r.t.Helper()
	b, err := r.frame()
	if err == nil {
		r.t.Fatalf("connection answered %d bytes; want it closed", len(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("connection still open after 30s; want it closed")
	}
}

// batch encodes n records as one record batch.
func batch(t *testing.T, n int, opts segment.BatchOptions) []byte {
	t.Helper()
	recs := make([]segment.Record, n)
	for i := range recs {
		recs[i] = segment.Record{Timestamp: int64(1_700_000_000_000 + i), Key: []byte("k"), Value: []byte("value")}
	}
	b, err := segment.EncodeBatch(recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceReq is a produce of records to topic/partition at version v.
func produceReq(v int16, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = v, acks, 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// listOffset returns a partition's offset for a ListOffsets timestamp.
func (r *raw) listOffset(topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	r.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := r.roundTrip(req).(*kmsg.ListOffsetsResponse)
	return resp.Topics[0].Partitions[0]
}

// waitHW waits until ListOffsets LATEST answers want. The proxy answers
// from its view of etcd, which follows a commit within milliseconds; a
// value past want fails at once.
func (r *raw) waitHW(topic string, partition int32, want int64) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := r.listOffset(topic, partition, -1)
		switch {
		case o.ErrorCode != 0:
			r.t.Fatalf("list offsets %s/%d: error %d", topic, partition, o.ErrorCode)
		case o.Offset == want:
			return
		case o.Offset > want || time.Now().After(deadline):
			r.t.Fatalf("high watermark of %s/%d is %d, want %d", topic, partition, o.Offset, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
