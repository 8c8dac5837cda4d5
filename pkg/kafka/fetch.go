package kafka

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
	"github.com/strata-mq/strata/pkg/proxy"
)

// Fetch v4–17 is served from object storage through the proxy's block
// cache (proxy.Fetcher), returning record batches exactly as stored. It
// honours MaxWaitMillis and MinBytes (waiting for commits to any of the
// requested partitions), PartitionMaxBytes and MaxBytes (cut at whole
// batches, except that the first non-empty partition always gets at least
// one whole batch, so a batch larger than the limits still makes
// progress), and answers empty record sets as empty bytes, never null.
// Fetch sessions (KIP-227) are declined: the answer's session id is 0, so
// clients keep sending full fetch requests; a full request (session epoch
// 0 or -1) is served whatever session id it names, as Kafka closes that
// session and answers it in full. read_committed reads stop at
// the last stable offset, and list the aborted transactions among the
// batches returned, which the client drops (docs/transactions.md). From
// v13 topics are named by topic id.
func init() { register(kmsg.Fetch, 4, 17, (*Server).handleFetch) }

// fetchPart is one partition of a fetch request.
type fetchPart struct {
	topic   string
	t       meta.Topic
	req     kmsg.FetchRequestTopicPartition
	out     *kmsg.FetchResponseTopicPartition
	settled bool // answered with an error, or with data
}

func (s *Server) handleFetch(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	switch {
	case req.SessionEpoch == 0 || req.SessionEpoch == -1:
		// A full fetch, as in Kafka: a session id with it names a
		// session to close (Strata keeps none), and epoch -1 asks for
		// no new one. kafka-go's Client sends id -1, epoch -1.
	case req.SessionID != 0:
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	default:
		resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
		return resp, nil
	}
	if req.ReplicaID >= 0 || req.ReplicaState.ID >= 0 {
		// Only consumers fetch from a proxy; there are no followers.
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil
	}
	parts := s.fetchParts(ctx, r, req, resp)
	wait := time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond
	if lim := s.core.MaxFetchWait; lim > 0 {
		wait = min(wait, lim) // the proxy's cap on long-polls, as for gRPC
	}
	deadline := time.Now().Add(wait)
	for {
		changed := s.core.View.Changed()
		n, errs := s.readParts(ctx, parts, req.MaxBytes, req.IsolationLevel == readCommitted)
		if n >= int(req.MinBytes) || errs || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		if !s.waitData(ctx, changed, parts, deadline, req.IsolationLevel == readCommitted) {
			break
		}
	}
	total := cutToBudget(parts, req.MaxBytes)
	if err := s.core.Guard.Throttle(ctx, r.principal(), auth.KindFetch, total); err != nil {
		s.log.Debug("kafka: fetch throttle cut short", "err", err)
	}
	return resp, nil
}

// fetchParts builds the response skeleton and settles the partitions that
// fail before any read: unauthorized, unknown, or fenced by leader epoch.
func (s *Server) fetchParts(ctx context.Context, r *request, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) []*fetchPart {
	var parts []*fetchPart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := &resp.Topics[i]
		*ot = kmsg.NewFetchResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		t, code := s.fetchTopic(ctx, r, req.Version, rt)
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			op := &ot.Partitions[j]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition, op.HighWatermark, op.LastStableOffset, op.LogStartOffset = rp.Partition, -1, -1, -1
			op.RecordBatches = []byte{}
			p := &fetchPart{topic: t.Name, t: t, req: rp, out: op}
			parts = append(parts, p)
			switch {
			case code != 0:
				p.settle(code)
			case rp.Partition < 0 || rp.Partition >= t.Partitions:
				p.settle(kerr.UnknownTopicOrPartition.Code)
			default:
				st, _ := s.core.View.Partition(t.ID, rp.Partition)
				p.settle(epochCheck(rp.CurrentLeaderEpoch, st))
			}
		}
	}
	return parts
}

// fetchTopic resolves a fetched topic — by name, or from v13 by topic id
// (a topic deleted and created again has a new id, so a consumer of the
// old one gets UNKNOWN_TOPIC_ID rather than the new one's data) — and
// authorizes consuming it. A non-zero code settles its partitions.
func (s *Server) fetchTopic(ctx context.Context, r *request, version int16, rt kmsg.FetchRequestTopic) (meta.Topic, int16) {
	name := rt.Topic
	if version >= 13 {
		t, ok := s.topicByUUID(rt.TopicID)
		if !ok {
			return meta.Topic{}, kerr.UnknownTopicID.Code
		}
		name = t.Name
	}
	if code, err := s.authorize(ctx, r, meta.OpConsume, auth.Topic(name)); err != nil {
		return meta.Topic{}, code
	}
	t, err := s.lookupTopic(ctx, name)
	if err != nil {
		return meta.Topic{}, errCode(err)
	}
	if version >= 13 && topicUUID(t.ID) != rt.TopicID {
		return meta.Topic{}, kerr.UnknownTopicID.Code
	}
	return t, 0
}

// settle answers a partition with an error code; 0 leaves it open.
func (p *fetchPart) settle(code int16) {
	if code != 0 {
		p.out.ErrorCode, p.settled = code, true
	}
}

// epochCheck compares a client's idea of a partition's leader epoch with
// the partition's epoch (-1: the client does not know one): older is
// FENCED_LEADER_EPOCH, newer (this proxy's view is behind) is
// UNKNOWN_LEADER_EPOCH; both make the client refresh its metadata.
func epochCheck(clientEpoch int32, st meta.PartitionState) int16 {
	ours := leaderEpoch(st)
	switch {
	case clientEpoch < 0 || clientEpoch == ours:
		return 0
	case clientEpoch < ours:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// readParts reads every open partition once without waiting and returns
// the bytes the open partitions now hold and whether any partition
// failed.
func (s *Server) readParts(ctx context.Context, parts []*fetchPart, maxBytes int32, readCommitted bool) (int, bool) {
	var wg sync.WaitGroup
	for _, p := range parts {
		if p.settled {
			continue
		}
		budget := p.req.PartitionMaxBytes
		if maxBytes > 0 {
			budget = min(budget, maxBytes)
		}
		wg.Go(func() {
			res, err := s.core.Fetcher.Fetch(ctx, proxy.FetchRequest{
				Topic: p.topic, Partition: p.req.Partition, Offset: p.req.FetchOffset, MaxBytes: max(budget, 1),
				ReadCommitted: readCommitted,
			})
			if err != nil {
				p.settle(errCode(err))
				return
			}
			p.out.HighWatermark, p.out.LastStableOffset, p.out.LogStartOffset = res.HighWatermark, res.LastStable, res.LogStart
			if len(res.Batches) > 0 {
				p.out.RecordBatches, p.settled = res.Batches, true
				p.out.AbortedTransactions = abortedTxns(res.Aborted)
			}
		})
	}
	wg.Wait()
	n, errs := 0, false
	for _, p := range parts {
		n += len(p.out.RecordBatches)
		errs = errs || p.out.ErrorCode != 0
	}
	return n, errs
}

// readCommitted is Fetch's and ListOffsets' IsolationLevel for
// read_committed.
const readCommitted = 1

// abortedTxns is Fetch's list of aborted transactions.
func abortedTxns(ab []meta.AbortedTxn) []kmsg.FetchResponseTopicPartitionAbortedTransaction {
	if len(ab) == 0 {
		return nil
	}
	out := make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, len(ab))
	for i, a := range ab {
		out[i] = kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		out[i].ProducerID, out[i].FirstOffset = a.ProducerID, a.First
	}
	return out
}

// waitData waits until an open partition's read bound (the high
// watermark, or for read_committed the last stable offset) passes its
// fetch offset (true), or the deadline passes, ctx ends or the proxy shuts down
// (false). changed is the view's Changed channel taken before the last
// read.
func (s *Server) waitData(ctx context.Context, changed <-chan struct{}, parts []*fetchPart, deadline time.Time, readCommitted bool) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	s.metrics.fetchWaiting.Inc()
	defer s.metrics.fetchWaiting.Dec()
	for {
		for _, p := range parts {
			if p.settled {
				continue
			}
			if st, ok := s.core.View.Partition(p.t.ID, p.req.Partition); !ok || proxy.ReadBound(st, readCommitted) > p.req.FetchOffset {
				return true
			}
		}
		select {
		case <-changed:
			changed = s.core.View.Changed()
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-s.core.Done:
			return false
		}
	}
}

// cutToBudget trims the partitions' record batches, in request order, to
// the response's MaxBytes at whole batches — but never the first
// non-empty partition below one batch — and returns the bytes kept.
func cutToBudget(parts []*fetchPart, maxBytes int32) int {
	budget := math.MaxInt
	if maxBytes > 0 {
		budget = int(maxBytes)
	}
	total, first := 0, true
	for _, p := range parts {
		b := p.out.RecordBatches
		if len(b) == 0 {
			continue
		}
		keep := wholeBatches(b, budget-total, first)
		p.out.RecordBatches = b[:keep]
		total += keep
		first = first && keep == 0
	}
	return total
}

// wholeBatches returns the length of the longest prefix of b made of whole
// record batches within limit bytes; with atLeastOne, the first batch
// counts even past the limit. The batches come from the Fetcher, which
// validated them.
func wholeBatches(b []byte, limit int, atLeastOne bool) int {
	const lengthEnd = 12 // base offset (8) and batch length (4)
	n := 0
	for n+lengthEnd <= len(b) {
		size := lengthEnd + int(binary.BigEndian.Uint32(b[n+8:]))
		if n+size > len(b) || (n+size > limit && !(atLeastOne && n == 0)) {
			break
		}
		n += size
	}
	return n
}
