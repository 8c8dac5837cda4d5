package client

import "sync/atomic"

// murmur2 is the 32-bit MurmurHash2 that Kafka's default partitioner uses
// (org.apache.kafka.common.utils.Utils.murmur2), so that a key lands on the
// same partition number as with a Kafka Java client.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// keyPartition returns the partition of a key among n partitions, as
// Kafka's default partitioner: toPositive(murmur2(key)) % n.
func keyPartition(key []byte, n int32) int32 {
	return (murmur2(key) & 0x7fffffff) % n
}

// roundRobin spreads records without a key over a topic's partitions in
// turn.
type roundRobin struct{ next atomic.Uint32 }

func (rr *roundRobin) partition(n int32) int32 {
	return int32((rr.next.Add(1) - 1) % uint32(n))
}
