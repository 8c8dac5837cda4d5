package rpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

func TestDirtyPoolClasses(t *testing.T) {
	p := &dirtyPool{}
	for _, tc := range []struct{ n, cap int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {16 << 10, 16 << 10},
		{1<<20 + 1, 2 << 20}, {MaxMessageBytes, MaxMessageBytes}, {MaxMessageBytes + 1, MaxMessageBytes + 1},
	} {
		b := p.Get(tc.n)
		if len(*b) != tc.n || cap(*b) != tc.cap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tc.n, len(*b), cap(*b), tc.n, tc.cap)
		}
		p.Put(b)
	}
	// A buffer of another capacity is not taken: Get never returns a
	// buffer smaller than its class.
	odd := make([]byte, 300)
	p.Put(&odd)
	if b := p.Get(500); cap(*b) != 512 {
		t.Fatalf("Get(500) after Put of a 300-byte buffer: cap %d", cap(*b))
	}
}

// TestProtoCodecRoundTrip marshals messages below and above the pooling
// threshold and unmarshals them from one buffer and from many, as gRPC
// hands over a message read in several frames, into dirty buffers.
func TestProtoCodecRoundTrip(t *testing.T) {
	var c protoCodec
	for _, n := range []int{10, 1 << 20} {
		want := bytes.Repeat([]byte("strata"), n/6)
		dirty := bufferPool.Get(len(want) + 64) // leave garbage in the pool
		for i := range *dirty {
			(*dirty)[i] = 0xAA
		}
		bufferPool.Put(dirty)
		data, err := c.Marshal(wrapperspb.Bytes(want))
		if err != nil {
			t.Fatal(err)
		}
		flat := data.Materialize()
		data.Free()
		var frames mem.BufferSlice
		for i := 0; i < len(flat); i += 16 << 10 {
			frames = append(frames, mem.SliceBuffer(flat[i:min(i+16<<10, len(flat))]))
		}
		for name, in := range map[string]mem.BufferSlice{"one buffer": {mem.SliceBuffer(flat)}, "frames": frames} {
			var got wrapperspb.BytesValue
			if err := c.Unmarshal(in, &got); err != nil {
				t.Fatalf("%d bytes, %s: %v", n, name, err)
			}
			if !bytes.Equal(got.GetValue(), want) {
				t.Fatalf("%d bytes, %s: value differs after the round trip", n, name)
			}
		}
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Fatal("Marshal of a string: no error")
	}
}

// TestDecodeProduce checks that decodeProduce decodes what proto.Unmarshal
// decodes, and refuses what it refuses, whether the message arrives in one
// buffer or in frames.
func TestDecodeProduce(t *testing.T) {
	full, err := proto.Marshal(&stratav1.ProduceRequest{Topic: "orders", Partition: 7, Batches: bytes.Repeat([]byte{1, 2, 3}, 40000)})
	if err != nil {
		t.Fatal(err)
	}
	var extra []byte
	extra = protowire.AppendTag(extra, 9, protowire.VarintType) // a field decodeProduce does not know
	extra = protowire.AppendVarint(extra, 5)
	var badUTF8 []byte
	badUTF8 = protowire.AppendTag(badUTF8, 1, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, []byte{0xff, 0xfe})
	var wrongType []byte
	wrongType = protowire.AppendTag(wrongType, 2, protowire.BytesType) // partition as bytes: an unknown field to proto
	wrongType = protowire.AppendBytes(wrongType, []byte("x"))
	for name, msg := range map[string][]byte{
		"full":            full,
		"empty":           {},
		"unknown field":   append(bytes.Clone(full), extra...),
		"repeated field":  append(bytes.Clone(full), full...), // the last value wins
		"invalid utf-8":   badUTF8,
		"wrong wire type": append(bytes.Clone(full), wrongType...),
		"truncated":       full[:len(full)-10],
		"truncated tag":   {0x80},
		"negative varint": {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		var want stratav1.ProduceRequest
		wantErr := proto.Unmarshal(msg, &want)
		var frames mem.BufferSlice
		for i := 0; i < len(msg); i += 1000 {
			frames = append(frames, mem.SliceBuffer(msg[i:min(i+1000, len(msg))]))
		}
		for how, in := range map[string]mem.BufferSlice{"one buffer": {mem.SliceBuffer(msg)}, "frames": frames} {
			got := &stratav1.ProduceRequest{Topic: "stale", Batches: []byte("stale")}
			err := protoCodec{}.Unmarshal(in, got)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("%s, %s: error %v, proto.Unmarshal's %v", name, how, err, wantErr)
			}
			if err == nil && !proto.Equal(got, &want) {
				t.Fatalf("%s, %s: decoded %v, proto.Unmarshal %v", name, how, got, &want)
			}
		}
	}
}

// TestDecodeProduceFields fails when ProduceRequest gains a field: teach
// decodeProduce the field (until then such messages take the slower
// proto.Unmarshal path).
func TestDecodeProduceFields(t *testing.T) {
	fields := (&stratav1.ProduceRequest{}).ProtoReflect().Descriptor().Fields()
	if fields.Len() != 3 {
		t.Fatalf("ProduceRequest has %d fields; decodeProduce knows 3", fields.Len())
	}
	for i, name := range []string{"topic", "partition", "batches"} {
		if f := fields.ByNumber(protowire.Number(i + 1)); f == nil || string(f.Name()) != name {
			t.Fatalf("ProduceRequest field %d is %v, decodeProduce expects %s", i+1, f, name)
		}
	}
}

// TestEncodeProduce checks that encodeProduce writes the bytes
// proto.Marshal writes, and that the batches go out of the caller's memory.
func TestEncodeProduce(t *testing.T) {
	batches := bytes.Repeat([]byte{9, 8, 7}, 50000)
	for _, m := range []*stratav1.ProduceRequest{
		{},
		{Topic: "orders"},
		{Partition: 3},
		{Partition: -1},
		{Batches: []byte{1}},
		{Topic: "orders", Partition: 2147483647, Batches: batches},
	} {
		want, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		data, err := protoCodec{}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("%v: encoded %x, proto.Marshal %x", m, got, want)
		}
		if len(m.GetBatches()) > 0 && &data[len(data)-1].ReadOnlyData()[0] != &m.GetBatches()[0] {
			t.Fatalf("%v: the batches were copied", m)
		}
	}
}
