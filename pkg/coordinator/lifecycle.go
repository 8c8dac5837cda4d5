package coordinator

import (
	"context"
	"fmt"

	"github.com/strata-mq/strata/pkg/lifecycle"
	"github.com/strata-mq/strata/pkg/meta"
)

// The storage lifecycle (retention, compaction, garbage collection; see
// pkg/lifecycle and docs/lifecycle.md) is scheduled by the leader: it is
// the cluster's only singleton. Compaction tasks run in this process too,
// through lifecycle's LocalExecutor (one task at a time, reads throttled);
// Config.Lifecycle.Executor is the seam for running them on brokers.

// lifecycleConfig is Config.Lifecycle with the shared dependencies filled
// in.
func (c Config) lifecycleConfig() lifecycle.Config {
	lc := c.Lifecycle
	lc.Meta, lc.Store = c.Meta, c.Store
	if lc.Logger == nil {
		lc.Logger = c.Logger
	}
	if lc.Registry == nil && c.Registry != nil {
		lc.Registry = c.Registry
	}
	return lc
}

// validateLifecycle checks Config.Lifecycle when a Store enables it.
func (c Config) validateLifecycle() error {
	if c.Store == nil {
		return nil
	}
	if err := c.lifecycleConfig().Validate(); err != nil {
		return fmt.Errorf("coordinator: config: %w", err)
	}
	return nil
}

// newLifecycle returns the lifecycle manager, or nil without a Store. Its
// passes take the partitions' next offsets from view.
func newLifecycle(c Config, view *meta.View) (*lifecycle.Manager, error) {
	if c.Store == nil {
		return nil, nil
	}
	lc := c.lifecycleConfig()
	lc.View = view
	return lifecycle.New(lc)
}

// runLifecycle runs the lifecycle loop until ctx (the leadership) ends and
// closes the returned channel when it has stopped.
func (s *Server) runLifecycle(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if s.lifecycle == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		s.lifecycle.Run(ctx)
	}()
	return done
}
