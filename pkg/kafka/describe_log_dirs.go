package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeLogDirs v1–4 answers with one log directory, the object store
// (logDir), holding every partition asked for (all of every topic for a
// null list) with its size: the bytes of its segment entries, read from
// etcd. UI tools show topic sizes from it. Total and usable bytes are -1,
// unknown, as an object store has no fixed capacity. It needs describe
// on the cluster, as Kafka's DESCRIBE on CLUSTER.
func init() { register(kmsg.DescribeLogDirs, 1, 4, (*Server).handleDescribeLogDirs) }

// logDir names Strata's one log directory: segment objects in object
// storage, indexed in etcd.
const logDir = "object-storage"

// logDirReads bounds the etcd reads one request has in flight.
const logDirReads = 8

func (s *Server) handleDescribeLogDirs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if code, _ := s.authorize(ctx, r, meta.OpDescribe, auth.Cluster()); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir, dir.TotalBytes, dir.UsableBytes = logDir, -1, -1
	topics, err := s.logDirTopics(ctx, s.logDirTargets(req))
	if err != nil {
		dir.ErrorCode = kerr.KafkaStorageError.Code
	}
	dir.Topics = topics
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// logDirTarget is a topic and the partitions asked for.
type logDirTarget struct {
	topic meta.Topic
	parts []int32
}

// logDirTargets returns the partitions a request asks for, of the topics
// this proxy knows: every partition of every topic for a null list.
func (s *Server) logDirTargets(req *kmsg.DescribeLogDirsRequest) []logDirTarget {
	var out []logDirTarget
	if req.Topics == nil {
		for _, t := range s.core.View.Topics() {
			tg := logDirTarget{topic: t}
			for p := range t.Partitions {
				tg.parts = append(tg.parts, p)
			}
			out = append(out, tg)
		}
		return out
	}
	for _, rt := range req.Topics {
		t, ok := s.core.View.Topic(rt.Topic)
		if !ok {
			continue
		}
		tg := logDirTarget{topic: t}
		for _, p := range rt.Partitions {
			if p >= 0 && p < t.Partitions {
				tg.parts = append(tg.parts, p)
			}
		}
		out = append(out, tg)
	}
	return out
}

// logDirTopics reads the size of every target partition, logDirReads at
// a time.
func (s *Server) logDirTopics(ctx context.Context, targets []logDirTarget) ([]kmsg.DescribeLogDirsResponseDirTopic, error) {
	out := make([]kmsg.DescribeLogDirsResponseDirTopic, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(logDirReads)
	for i, tg := range targets {
		out[i] = kmsg.NewDescribeLogDirsResponseDirTopic()
		out[i].Topic = tg.topic.Name
		out[i].Partitions = make([]kmsg.DescribeLogDirsResponseDirTopicPartition, len(tg.parts))
		for j, p := range tg.parts {
			g.Go(func() error {
				l, err := s.core.Meta.ReadLayout(gctx, tg.topic.ID, p)
				if err != nil {
					return err
				}
				dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
				dp.Partition, dp.Size = p, l.Bytes()
				out[i].Partitions[j] = dp
				return nil
			})
		}
	}
	return out, g.Wait()
}
