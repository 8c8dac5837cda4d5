package coordinator

import (
	"context"
	"errors"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// logStartRetries bounds DeleteRecords' retries of one partition when a
// lifecycle change (retention, compaction) lands between its read and its
// write (meta.ErrConflict).
const logStartRetries = 5

// DeleteRecords moves partitions' log starts forward, as Kafka's
// DeleteRecords does: records below a new log start are no longer read,
// and the entries wholly below it are deleted with the move (their
// objects go to garbage collection). Each partition succeeds or fails on
// its own; the call fails only when the topic is unknown or the request
// is malformed (no partitions, a partition twice).
func (s *Server) DeleteRecords(ctx context.Context, req *stratav1.DeleteRecordsRequest) (*stratav1.DeleteRecordsResponse, error) {
	var resp *stratav1.DeleteRecordsResponse
	err := s.admin("DeleteRecords", func() error {
		t, err := s.cfg.Meta.GetTopic(ctx, req.GetTopic()) // ErrTopicNotFound is UNKNOWN_TOPIC
		if err != nil {
			return err
		}
		if err := checkDeleteRecords(req, t); err != nil {
			return err
		}
		resp = &stratav1.DeleteRecordsResponse{}
		for _, p := range req.GetPartitions() {
			start, err := s.moveLogStart(ctx, t, p.GetPartition(), p.GetOffset())
			resp.Results = append(resp.Results, &stratav1.DeleteRecordsResult{
				Partition: p.GetPartition(), LogStartOffset: start, Error: apierr.ToPart(err),
			})
			if err == nil {
				s.log.Info("deleted records", "by", auth.NameOf(ctx), "topic", t.Name, "partition", p.GetPartition(), "log_start", start)
			}
		}
		return nil
	})
	return resp, err
}

// checkDeleteRecords refuses a request without partitions, with more than
// a topic may have, or with one twice.
func checkDeleteRecords(req *stratav1.DeleteRecordsRequest, t meta.Topic) error {
	ps := req.GetPartitions()
	if len(ps) == 0 || len(ps) > meta.MaxPartitions {
		return apierr.Errorf(apierr.ErrInvalidRequest, "DeleteRecords names %d partitions of topic %q; it needs 1 to %d", len(ps), t.Name, meta.MaxPartitions)
	}
	seen := make(map[int32]bool, len(ps))
	for _, p := range ps {
		if seen[p.GetPartition()] {
			return apierr.Errorf(apierr.ErrInvalidRequest, "DeleteRecords names partition %d of topic %q twice", p.GetPartition(), t.Name)
		}
		seen[p.GetPartition()] = true
	}
	return nil
}

// moveLogStart moves one partition's log start to offset (-1: the high
// watermark) and returns the log start it has afterwards.
func (s *Server) moveLogStart(ctx context.Context, t meta.Topic, partition int32, offset int64) (int64, error) {
	if partition < 0 || partition >= t.Partitions {
		return 0, apierr.Errorf(apierr.ErrPartitionRange, "partition %d of topic %q with %d partitions", partition, t.Name, t.Partitions)
	}
	var (
		start int64
		err   error
	)
	for range logStartRetries {
		if start, err = s.cfg.Meta.SetLogStart(ctx, t.ID, partition, offset); !errors.Is(err, meta.ErrConflict) {
			break
		}
	}
	if errors.Is(err, meta.ErrConflict) {
		return 0, apierr.Errorf(apierr.ErrTimeout, "partition %d of topic %q kept changing: %v", partition, t.Name, err)
	}
	return start, err
}
