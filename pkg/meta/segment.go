package meta

import (
	"context"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// SegmentEntry indexes one chunk of a partition's data: a contiguous run of
// offsets stored at a byte range of a segment object.
type SegmentEntry struct {
	V int `json:"v"`
	// ObjectKey is the segment object's key in the object store.
	ObjectKey string `json:"object"`
	// ObjectSize is the whole object's size in bytes.
	ObjectSize int64 `json:"object_size"`
	// Pos and Len are the chunk's byte range within the object.
	Pos int64 `json:"pos"`
	Len int64 `json:"len"`
	// FirstOffset and LastOffset are the first and last offsets in the
	// chunk, both inclusive.
	FirstOffset int64 `json:"first"`
	LastOffset  int64 `json:"last"`
	// MinTimestamp and MaxTimestamp bound the records' timestamps (Unix ms).
	MinTimestamp int64 `json:"min_ts"`
	MaxTimestamp int64 `json:"max_ts"`
	// CreatedMs is when the entry was committed (Unix ms); retention by
	// time falls back on it.
	CreatedMs int64 `json:"created_ms"`

	// TopicID and Partition name the partition (from the key).
	TopicID   string `json:"-"`
	Partition int32  `json:"-"`
}

// Records returns how many offsets the entry covers.
func (e SegmentEntry) Records() int64 { return e.LastOffset - e.FirstOffset + 1 }

// End returns the object position just past the entry's chunk bytes.
func (e SegmentEntry) End() int64 { return e.Pos + e.Len }

// EntriesBytes returns the sum of the entries' chunk lengths.
func EntriesBytes(es []SegmentEntry) int64 {
	var n int64
	for _, e := range es {
		n += e.Len
	}
	return n
}

// Validate reports whether the entry is well formed.
func (e SegmentEntry) Validate() error {
	switch {
	case e.TopicID == "":
		return fmt.Errorf("%w: no topic id", ErrInvalidEntry)
	case e.Partition < 0:
		return fmt.Errorf("%w: partition %d", ErrInvalidEntry, e.Partition)
	case e.ObjectKey == "":
		return fmt.Errorf("%w: no object key", ErrInvalidEntry)
	case e.FirstOffset < 0 || e.LastOffset < e.FirstOffset:
		return fmt.Errorf("%w: offsets %d..%d", ErrInvalidEntry, e.FirstOffset, e.LastOffset)
	case e.Pos < 0 || e.Len <= 0 || e.End() > e.ObjectSize:
		return fmt.Errorf("%w: byte range %d+%d of a %d-byte object", ErrInvalidEntry, e.Pos, e.Len, e.ObjectSize)
	case e.MinTimestamp > e.MaxTimestamp:
		return fmt.Errorf("%w: timestamps %d > %d", ErrInvalidEntry, e.MinTimestamp, e.MaxTimestamp)
	}
	return nil
}

func (s *Store) decodeSegment(topicID string, partition int32, key, value []byte) (SegmentEntry, error) {
	e := SegmentEntry{}
	if err := decode(string(key), value, &e); err != nil {
		return SegmentEntry{}, err
	}
	e.TopicID, e.Partition = topicID, partition
	return e, nil
}

// FindSegment returns the entry whose offsets include offset, or ErrNotFound
// when no committed entry does (the offset is past the high watermark, or
// retention removed it).
func (s *Store) FindSegment(ctx context.Context, topicID string, partition int32, offset int64) (SegmentEntry, error) {
	if offset < 0 {
		return SegmentEntry{}, fmt.Errorf("%w: negative offset %d", ErrNotFound, offset)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	// The entry with the greatest first offset <= offset.
	from, to := s.keys.segments(topicID, partition), s.keys.segment(topicID, partition, offset)+"\x00"
	resp, err := s.cli.Get(ctx, from, clientv3.WithRange(to),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return SegmentEntry{}, fmt.Errorf("meta: find segment %s/%d@%d: %w", topicID, partition, offset, err)
	}
	if len(resp.Kvs) == 1 {
		e, err := s.decodeSegment(topicID, partition, resp.Kvs[0].Key, resp.Kvs[0].Value)
		if err != nil {
			return SegmentEntry{}, err
		}
		if e.LastOffset >= offset {
			return e, nil
		}
	}
	return SegmentEntry{}, fmt.Errorf("%w: no segment of %s/%d holds offset %d", ErrNotFound, topicID, partition, offset)
}

// Segments yields a partition's entries in offset order, starting with the
// one that holds fromOffset (or the first after it), reading etcd a page at
// a time.
func (s *Store) Segments(ctx context.Context, topicID string, partition int32, fromOffset int64) iter.Seq2[SegmentEntry, error] {
	const page = 256
	return func(yield func(SegmentEntry, error) bool) {
		start := max(fromOffset, 0)
		if e, err := s.FindSegment(ctx, topicID, partition, start); err == nil {
			start = e.FirstOffset
		}
		for {
			es, more, err := s.segmentPage(ctx, topicID, partition, start, page)
			for _, e := range es {
				if !yield(e, nil) {
					return
				}
				start = e.FirstOffset + 1
			}
			if err != nil {
				yield(SegmentEntry{}, err)
				return
			}
			if !more {
				return
			}
		}
	}
}

// SegmentsStartingAt returns up to limit entries (limit > 0) whose first
// offset is at or after first, in offset order, in one etcd read. A reader
// that knows where the previous entry ended asks for the next ones with
// it, without FindSegment's extra read.
func (s *Store) SegmentsStartingAt(ctx context.Context, topicID string, partition int32, first int64, limit int) ([]SegmentEntry, error) {
	es, _, err := s.segmentPage(ctx, topicID, partition, first, limit)
	return es, err
}

// segmentPage reads up to limit entries whose first offset is at or after
// first, and reports whether etcd holds more. On an entry that does not
// decode it returns the entries before it and the error.
func (s *Store) segmentPage(ctx context.Context, topicID string, partition int32, first int64, limit int) (_ []SegmentEntry, more bool, _ error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	end := clientv3.GetPrefixRangeEnd(s.keys.segments(topicID, partition))
	resp, err := s.cli.Get(ctx, s.keys.segment(topicID, partition, max(first, 0)), clientv3.WithRange(end), clientv3.WithLimit(int64(max(limit, 1))))
	if err != nil {
		return nil, false, fmt.Errorf("meta: list segments %s/%d@%d: %w", topicID, partition, first, err)
	}
	out := make([]SegmentEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := s.decodeSegment(topicID, partition, kv.Key, kv.Value)
		if err != nil {
			return out, false, err
		}
		out = append(out, e)
	}
	return out, resp.More, nil
}

// ListSegments collects up to limit entries from Segments (all if limit <= 0).
// When an entry starts at fromOffset — a reader asking where the previous
// entry ended, as tail readers do — one etcd read answers (limit > 0).
func (s *Store) ListSegments(ctx context.Context, topicID string, partition int32, fromOffset int64, limit int) ([]SegmentEntry, error) {
	if limit > 0 {
		es, err := s.SegmentsStartingAt(ctx, topicID, partition, fromOffset, limit)
		if err != nil || len(es) > 0 && es[0].FirstOffset == fromOffset {
			return es, err
		}
	}
	var out []SegmentEntry
	for e, err := range s.Segments(ctx, topicID, partition, fromOffset) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

// FindSegmentByTime returns the first entry that may hold a record with a
// timestamp at or after ts (its MaxTimestamp >= ts), or ErrNotFound.
func (s *Store) FindSegmentByTime(ctx context.Context, topicID string, partition int32, ts int64) (SegmentEntry, error) {
	for e, err := range s.Segments(ctx, topicID, partition, 0) {
		if err != nil {
			return SegmentEntry{}, err
		}
		if e.MaxTimestamp >= ts {
			return e, nil
		}
	}
	return SegmentEntry{}, fmt.Errorf("%w: no segment of %s/%d reaches time %d", ErrNotFound, topicID, partition, ts)
}
