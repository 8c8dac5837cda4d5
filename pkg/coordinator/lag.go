package coordinator

import (
	"context"
	"strconv"
	"time"

	"github.com/strata-mq/strata/pkg/meta"
)

// DefaultLagInterval is how often the leader recomputes the consumer-lag
// metric: about a Prometheus scrape interval, for two etcd range reads
// plus one per group.
const DefaultLagInterval = 10 * time.Second

// runLag keeps the lag metric current while leading; the returned channel
// closes when it has stopped and removed its series (a standby exports no
// lag, so there is one source per cluster).
func (s *Server) runLag(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		series := map[[3]string]bool{}
		t := time.NewTicker(s.cfg.LagInterval)
		defer t.Stop()
		for {
			if next, err := s.updateLag(ctx, series); err == nil {
				series = next
			} else if ctx.Err() == nil {
				s.log.Warn("consumer lag metric: update failed", "err", err)
			}
			select {
			case <-ctx.Done():
				s.metrics.groupLag.Reset()
				return
			case <-t.C:
			}
		}
	}()
	return done
}

// updateLag sets the lag of every committed group partition and deletes
// the series of the previous round that are gone; it returns this round's
// series. It reads the state and log start of the committed partitions
// only: a cluster of many partitions and few groups, or none, would
// otherwise read every partition every round.
func (s *Server) updateLag(ctx context.Context, prev map[[3]string]bool) (map[[3]string]bool, error) {
	groups, err := s.cfg.Meta.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	offs := make(map[string]map[meta.GroupPartition]meta.CommittedOffset, len(groups))
	var ids []meta.PartitionID
	seen := map[meta.PartitionID]bool{}
	for _, g := range groups {
		o, err := s.committed(ctx, g)
		if err != nil {
			return nil, err
		}
		offs[g] = o
		for gp := range o {
			if !seen[gp] {
				seen[gp] = true
				ids = append(ids, gp)
			}
		}
	}
	parts, err := s.cfg.Meta.GetPartitions(ctx, ids)
	if err != nil {
		return nil, err
	}
	states := make(map[meta.GroupPartition]meta.PartitionState, len(parts))
	for _, p := range parts {
		states[meta.GroupPartition{TopicID: p.TopicID, Partition: p.Partition}] = p
	}
	next := map[[3]string]bool{}
	for g, o := range offs {
		for gp, c := range o {
			t, ok := s.view.TopicByID(gp.TopicID)
			if !ok || gp.Partition >= t.Partitions {
				continue
			}
			ps := states[gp]
			l := [3]string{g, t.Name, strconv.Itoa(int(gp.Partition))}
			s.metrics.groupLag.WithLabelValues(l[:]...).Set(float64(max(ps.NextOffset-max(c.Offset, ps.LogStart), 0)))
			next[l] = true
		}
	}
	for l := range prev {
		if !next[l] {
			s.metrics.groupLag.DeleteLabelValues(l[:]...)
		}
	}
	return next, nil
}
