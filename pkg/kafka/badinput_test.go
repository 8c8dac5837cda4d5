package kafka_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/objstore"
	"github.com/strata-mq/strata/pkg/segment"
)

// header is a request header v1 (key, version, correlation id, client id
// "x") without its size prefix.
func header(key, version int16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	return append(binary.BigEndian.AppendUint16(b, 1), 'x')
}

// sized prefixes a frame with its size.
func sized(frame []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
}

// TestBadFrames sends malformed frames — truncated, lying about their
// length, unknown API keys and versions, absurd array counts — and checks
// that each closes its connection, while the proxy keeps serving others.
func TestBadFrames(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated frame", append(binary.BigEndian.AppendUint32(nil, 100), header(int16(kmsg.Metadata), 1)...)},
		{"length of 2 GiB", append(binary.BigEndian.AppendUint32(nil, 0x7fffffff), header(int16(kmsg.Metadata), 1)...)},
		{"negative length", append(binary.BigEndian.AppendUint32(nil, 0xfffffff0), header(int16(kmsg.Metadata), 1)...)},
		{"shorter than a header", sized([]byte{0, 3, 0})},
		{"unknown api key", sized(header(999, 0))},
		{"unsupported version", sized(header(int16(kmsg.Metadata), 13))},
		{"below the served versions", sized(header(int16(kmsg.Fetch), 3))},
		{"absurd array count", sized(binary.BigEndian.AppendUint32(header(int16(kmsg.Metadata), 1), 0x7fffffff))},
		{"array count past the frame", sized(append(binary.BigEndian.AppendUint32(header(int16(kmsg.Metadata), 1), 3), 0, 1, 'a'))},
		{"string length past the frame", sized(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(header(int16(kmsg.Metadata), 1), 1), 0x7fff))},
		{"negative api key", sized([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.raw()
			r.write(tc.b)
			if tc.name == "truncated frame" {
				_ = r.conn.(*net.TCPConn).CloseWrite()
			}
			r.expectClosed()
		})
	}
	av := kmsg.NewPtrApiVersionsRequest()
	if resp := c.raw().roundTrip(av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("after the bad frames, ApiVersions: error %d", resp.ErrorCode)
	}
}

// TestCorruptBatches produces record batches that are damaged in each way
// a broken or hostile client could damage them, and checks that each is
// refused with CORRUPT_MESSAGE (or, for a transactional batch outside any
// transaction and a client's control batch, the transactions' errors) and
// that not a byte reaches object storage.
func TestCorruptBatches(t *testing.T) {
	store, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, clusterOpts{store: store})
	c.createTopic("corrupt", 1)
	r := c.raw()
	good := func() []byte { return batch(t, 3, segment.BatchOptions{Codec: segment.CodecZstd}) }
	tests := []struct {
		name   string
		damage func([]byte) []byte
		want   int16
	}{
		{"bad crc", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, kerr.CorruptMessage.Code},
		{"wrong magic", func(b []byte) []byte { b[16] = 1; return b }, kerr.CorruptMessage.Code},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, kerr.CorruptMessage.Code},
		{"length past the end", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 1<<30); return b }, kerr.MessageTooLarge.Code},
		{"garbage after a batch", func(b []byte) []byte { return append(b, 1, 2, 3) }, kerr.CorruptMessage.Code},
		{"empty", func([]byte) []byte { return []byte{} }, kerr.CorruptMessage.Code},
		{"transactional, its producer id no transactional id's", func([]byte) []byte {
			b := batch(t, 1, segment.BatchOptions{Idempotent: true, ProducerID: 7})
			attrs := binary.BigEndian.Uint16(b[21:]) | uint16(segment.AttrTransactional)
			binary.BigEndian.PutUint16(b[21:], attrs)
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
			return b
		}, kerr.InvalidProducerIDMapping.Code},
		{"control batch", func([]byte) []byte { return segment.ControlBatch(7, 0, true, 0) }, kerr.InvalidRequest.Code},
	}
	for _, tc := range tests {
		resp := r.roundTrip(produceReq(9, -1, "corrupt", 0, tc.damage(good()))).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != tc.want || p.BaseOffset != -1 {
			t.Errorf("%s: error %d (%v) base offset %d; want %d", tc.name, p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, tc.want)
		}
	}
	if o := r.listOffset("corrupt", 0, -1); o.Offset != 0 {
		t.Fatalf("high watermark %d after only refused produces, want 0", o.Offset)
	}
	for obj, err := range store.List(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("object %s (%d bytes) stored although every produce was refused", obj.Key, obj.Size)
	}
}
