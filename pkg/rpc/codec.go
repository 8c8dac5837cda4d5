package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// Every server and connection made here moves message bytes through
// dirtyPool and protoCodec instead of gRPC's defaults. The defaults zero
// every pooled buffer they hand out (gRPC's read buffers, the contiguous
// copy of a received message, a marshalled message), although each is
// overwritten entirely before it is read; at 1 MiB produce requests that
// zeroing cost the proxy about as much CPU as copying the bytes. The
// codec is gRPC's protobuf codec with that difference and one more: a
// ProduceRequest's batches are decoded without a second copy
// (decodeProduce) and sent without copying them into the message
// (encodeProduce). Same wire format, same name.

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
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("rpc: cannot marshal %T: not a protobuf message", v)
	}
	if pr, ok := m.(*stratav1.ProduceRequest); ok && len(pr.ProtoReflect().GetUnknown()) == 0 {
		return encodeProduce(pr), nil
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
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("rpc: cannot unmarshal into %T: not a protobuf message", v)
	}
	if pr, ok := m.(*stratav1.ProduceRequest); ok {
		return decodeProduce(data, pr)
	}
	if len(data) == 1 { // already contiguous: no copy
		return proto.Unmarshal(data[0].ReadOnlyData(), m)
	}
	buf := data.MaterializeToBuffer(bufferPool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// messageOf returns v as a protobuf message, adapting messages generated
// for the older API as gRPC's codec does; nil if v is neither.
func messageOf(v any) proto.Message {
	switch m := v.(type) {
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	case protoadapt.MessageV2:
		return m
	}
	return nil
}

// codecServerOptions and codecDialOptions put every server and connection
// on protoCodec and dirtyPool.
func codecServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(protoCodec{}), experimental.BufferPool(bufferPool)}
}

func codecDialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(protoCodec{})), experimental.WithBufferPool(bufferPool)}
}

// errInvalidUTF8 is decodeProduce's answer to a topic that is not UTF-8,
// which proto.Unmarshal refuses too.
var errInvalidUTF8 = errors.New("rpc: ProduceRequest.topic is not valid UTF-8")

// decodeProduce decodes a ProduceRequest whose batches alias one
// contiguous copy of the message, made without zeroing it first
// (bytes.Join): the batches are copied once. Materializing the message
// and then proto.Unmarshal copies them twice, and a proxy and a broker
// each receive every produced byte. A field it does not know (the message
// gained one) sends the message through proto.Unmarshal instead.
func decodeProduce(data mem.BufferSlice, m *stratav1.ProduceRequest) error {
	parts := make([][]byte, len(data))
	for i, b := range data {
		parts[i] = b.ReadOnlyData()
	}
	msg := bytes.Join(parts, nil) // gRPC frees data's buffers after Unmarshal
	m.Reset()
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return errInvalidUTF8
			}
			m.Topic, b = string(v), b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.Partition, b = int32(v), b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.Batches, b = v[:len(v):len(v)], b[n:]
		default:
			m.Reset()
			return proto.Unmarshal(msg, m)
		}
	}
	return nil
}

// encodeProduce encodes a ProduceRequest as proto.Marshal does, field by
// field in number order, but as two buffers: the fields before the
// batches, then the batches themselves, which gRPC then writes from the
// caller's memory instead of a copy. The caller must not change the
// batches while the call runs (a retry sends the same bytes anyway).
func encodeProduce(m *stratav1.ProduceRequest) mem.BufferSlice {
	head := make([]byte, 0, 32+len(m.GetTopic()))
	if t := m.GetTopic(); t != "" {
		head = protowire.AppendTag(head, 1, protowire.BytesType)
		head = protowire.AppendString(head, t)
	}
	if p := m.GetPartition(); p != 0 {
		head = protowire.AppendTag(head, 2, protowire.VarintType)
		head = protowire.AppendVarint(head, uint64(int64(p))) // int32: negative values take 10 bytes
	}
	b := m.GetBatches()
	if len(b) == 0 {
		return mem.BufferSlice{mem.SliceBuffer(head)}
	}
	head = protowire.AppendTag(head, 3, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(b)))
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(b)}
}
