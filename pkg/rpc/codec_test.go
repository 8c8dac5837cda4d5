package rpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/wrapperspb"
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
