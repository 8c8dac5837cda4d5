package client

import (
	"crypto/rand"
	"encoding/binary"
	"math"

	"github.com/strata-mq/strata/pkg/segment"
)

// Idempotence turns the idempotent producer on or off. Default on.
//
// An idempotent producer stamps every batch with its producer id and, per
// partition, the sequence number of the batch's first record. The broker
// that owns the partition remembers each producer's last committed request
// in the partition's metadata, so a retry of a request that was committed
// although its acknowledgement was lost (a timeout, a broker killed after
// its commit, a failover) is answered with the original offsets instead of
// being written twice — also by a new owner after a failover.
//
// Producer ids are random 63-bit numbers: no round trip to allocate one,
// and with the 32 most recent producers remembered per partition a
// collision between two live producers on one partition has a probability
// around 2^-58. Sequences are int32 per partition; a partition that
// receives 2^31 records from one producer switches to a new random id.
func Idempotence(on bool) ProducerOpt {
	return producerOpt(func(c *producerConfig) { c.noIdempotence = !on })
}

// newProducerID returns a random non-negative 63-bit producer id.
func newProducerID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return int64(binary.BigEndian.Uint64(b[:]) >> 1)
}

// batchOptions returns the options of the next batch of n records to b's
// partition. The sequence advances only when the batch was built
// (advanceSeq), so a batch that failed to build leaves no gap inside a
// request. Called only by the partition's sender goroutine.
func (p *Producer) batchOptions(b *partBuf, n int) segment.BatchOptions {
	opts := segment.BatchOptions{Codec: p.cfg.codec}
	if p.cfg.noIdempotence {
		return opts
	}
	if int64(b.nextSeq)+int64(n) > math.MaxInt32 {
		b.pid, b.nextSeq = newProducerID(), 0
	}
	opts.Idempotent, opts.ProducerID, opts.BaseSequence = true, b.pid, b.nextSeq
	return opts
}

// advanceSeq moves b's sequence past a built batch of n records.
func (p *Producer) advanceSeq(b *partBuf, n int) {
	if !p.cfg.noIdempotence {
		b.nextSeq += int32(n)
	}
}
