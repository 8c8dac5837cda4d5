package client

import (
	"time"

	"github.com/strata-mq/strata/pkg/segment"
)

// Record is one message.
type Record struct {
	// Topic is the record's topic; required when producing.
	Topic string
	// Partition is the record's partition. When producing, a value above
	// 0 is honoured; 0 (the zero value) and negative values let the
	// partitioner choose (see Producer) — producing to partition 0 needs
	// SetPartition(0). After a successful produce it holds the partition
	// the record was written to.
	Partition int32
	// Offset is set on delivery (producer) and on consumed records.
	Offset int64
	// Key is optional; records with the same key go to the same partition.
	Key []byte
	// Value is the payload. A nil Value is kept apart from an empty one.
	Value []byte
	// Headers are optional application headers, in order.
	Headers []Header
	// Timestamp is the record's time, kept with millisecond precision.
	// When producing, zero means the time of Produce.
	Timestamp time.Time

	// explicit is true when Partition was chosen by the application.
	explicit bool
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// SetPartition makes the producer write r to partition p instead of
// letting the partitioner choose, and returns r.
func (r *Record) SetPartition(p int32) *Record {
	r.Partition, r.explicit = p, true
	return r
}

// partitionChosen reports whether the application chose the record's
// partition: with SetPartition, or by setting Partition above zero.
func (r *Record) partitionChosen() bool { return r.explicit || r.Partition > 0 }

// size estimates the bytes r takes in an uncompressed batch: key, value,
// headers and the per-record varint overhead (at most 26 bytes). It is
// what MaxBatchBytes and MaxBufferedBytes count.
func (r *Record) size() int {
	n := 26 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

func toSegment(r *Record) segment.Record {
	s := segment.Record{Timestamp: r.Timestamp.UnixMilli(), Key: r.Key, Value: r.Value}
	if len(r.Headers) > 0 {
		s.Headers = make([]segment.Header, len(r.Headers))
		for i, h := range r.Headers {
			s.Headers[i] = segment.Header{Key: h.Key, Value: h.Value}
		}
	}
	return s
}

func fromSegment(topic string, partition int32, s *segment.Record) *Record {
	r := &Record{
		Topic:     topic,
		Partition: partition,
		Offset:    s.Offset,
		Key:       s.Key,
		Value:     s.Value,
		Timestamp: time.UnixMilli(s.Timestamp),
	}
	if len(s.Headers) > 0 {
		r.Headers = make([]Header, len(s.Headers))
		for i, h := range s.Headers {
			r.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return r
}
