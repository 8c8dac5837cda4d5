package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/segment"
)

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp in a partition's readable log — the first such record
// when several share it — or offset and timestamp -1 when the log is
// empty. It answers Kafka's ListOffsets MAX_TIMESTAMP (KIP-734). The
// segment entries' MaxTimestamp say which chunk holds the record, so it
// reads one chunk. st is the partition's state read by ReadPartition or
// ReadPartitions.
func (f *Fetcher) MaxTimestamp(ctx context.Context, topic string, st meta.PartitionState) (offset, ts int64, err error) {
	p, hw, logStart := st.Partition, st.NextOffset, st.LogStart
	var best meta.SegmentEntry
	found := false
	for e, err := range f.meta.Segments(ctx, st.TopicID, p, logStart) {
		if err != nil {
			return -1, -1, apierr.Errorf(apierr.ErrStorageUnavailable, "list segments: %v", err)
		}
		if e.FirstOffset >= hw {
			break
		}
		if e.LastOffset >= logStart && (!found || e.MaxTimestamp > best.MaxTimestamp) {
			best, found = e, true
		}
	}
	if !found {
		return -1, -1, nil
	}
	chunk, hs, err := f.readChunk(ctx, best, f.cacheClass(best, time.Now()))
	if err != nil {
		return -1, -1, err
	}
	offset, ts = -1, -1
	at := 0
	for _, h := range hs {
		b := chunk[at : at+h.Size()]
		at += h.Size()
		if h.MaxTimestamp <= ts || h.LastOffset() < logStart || h.BaseOffset >= hw {
			continue
		}
		recs, err := segment.DecodeRecords(b)
		if err != nil {
			return -1, -1, fmt.Errorf("%w: batch at offset %d of %s/%d: %v", ErrCorruptData, h.BaseOffset, topic, p, err)
		}
		for _, r := range recs {
			if r.Offset >= logStart && r.Offset < hw && r.Timestamp > ts {
				offset, ts = r.Offset, r.Timestamp
			}
		}
	}
	return offset, ts, nil
}
