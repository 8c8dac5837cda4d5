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
// series.
func (s *Server) updateLag(ctx context.Context, prev map[[3]string]bool) (map[[3]string]bool, error) {
	parts, _, err := s.cfg.Meta.ListPartitions(ctx)
	if err != nil {
		return nil, err
	}
	states := make(map[meta.GroupPartition]meta.PartitionState, len(parts))
	for _, p := range parts {
		states[meta.GroupPartition{TopicID: p.TopicID, Partition: p.Partition}] = p
	}
	groups, err := s.cfg.Meta.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	next := map[[3]string]bool{}
	for _, g := range groups {
		offs, err := s.committed(ctx, g)
		if err != nil {
			return nil, err
		}
		for gp, o := range offs {
			t, ok := s.view.TopicByID(gp.TopicID)
			ps, known := states[gp]
			if !ok || !known {
				continue
			}
			l := [3]string{g, t.Name, strconv.Itoa(int(gp.Partition))}
			s.metrics.groupLag.WithLabelValues(l[:]...).Set(float64(max(ps.NextOffset-max(o.Offset, ps.LogStart), 0)))
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
