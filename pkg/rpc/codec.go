package rpc

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Every server and connection made here moves message bytes through
// dirtyPool and protoCodec instead of gRPC's defaults. The defaults zero
// every pooled buffer they hand out (gRPC's read buffers, the contiguous
// copy of a received message, a marshalled message), although each is
// overwritten entirely before it is read; at 1 MiB produce requests that
// zeroing cost the proxy about as much CPU as copying the bytes. The
// codec is gRPC's protobuf codec with that one difference: same wire
// format, same name.

// pooledClasses are the buffer sizes dirtyPool keeps, as powers of two:
// 256 bytes to 64 MiB (MaxMessageBytes). Smaller and larger requests are
// allocated.
const (
	minPoolShift = 8
	maxPoolShift = 26
)

// dirtyPool is a mem.BufferPool that does not zero what it hands out:
// buffers of power-of-two capacity in one sync.Pool per size.
type dirtyPool struct {
	classes [maxPoolShift - minPoolShift + 1]sync.Pool
}

var bufferPool = &dirtyPool{}

// class returns the index of the smallest class that holds n bytes, or
// -1 when n is larger than the largest.
func (*dirtyPool) class(n int) int {
	shift := minPoolShift
	if n > 1<<minPoolShift {
		shift = bits.Len(uint(n - 1))
	}
	if shift > maxPoolShift {
		return -1
	}
	return shift - minPoolShift
}

// Get returns a buffer of length n whose contents are undefined.
func (p *dirtyPool) Get(n int) *[]byte {
	c := p.class(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(c+minPoolShift))
	return &b
}

// Put takes back a buffer that Get returned; others are dropped.
func (p *dirtyPool) Put(b *[]byte) {
	n := cap(*b)
	c := p.class(n)
	if c < 0 || n != 1<<(c+minPoolShift) {
		return
	}
	*b = (*b)[:0]
	p.classes[c].Put(b)
}

// protoCodec is gRPC's protobuf codec on dirtyPool.
type protoCodec struct{}

var _ encoding.CodecV2 = protoCodec{}

// Name is "proto", the content-subtype of gRPC's own protobuf codec.
func (protoCodec) Name() string { return "proto" }

func (protoCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("rpc: cannot marshal %T: not a protobuf message", v)
	}
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true} // the Size call above computed it
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b := bufferPool.Get(size)
	out, err := opts.MarshalAppend((*b)[:0], m)
	if err != nil {
		bufferPool.Put(b)
		return nil, err
	}
	*b = out
	return mem.BufferSlice{mem.NewBuffer(b, bufferPool)}, nil
}

func (protoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("rpc: cannot unmarshal into %T: not a protobuf message", v)
	}
	if len(data) == 1 { // already contiguous: no copy
		return proto.Unmarshal(data[0].ReadOnlyData(), m)
	}
	buf := data.MaterializeToBuffer(bufferPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// codecServerOptions and codecDialOptions put every server and connection
// on protoCodec and dirtyPool.
func codecServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(protoCodec{}), experimental.BufferPool(bufferPool)}
}

func codecDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(protoCodec{})), experimental.WithBufferPool(bufferPool)}
}
