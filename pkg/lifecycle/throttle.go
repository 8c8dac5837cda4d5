package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/strata-mq/strata/pkg/objstore"
)

// Compaction's throttle. The LocalExecutor reads and writes at most
// CompactBytesPerSec each, so that a store sharing its cores with the
// brokers keeps serving their small PUTs, which acknowledge produces. But
// a throttle below the rate at which small entries arrive lets them pile
// up in etcd for as long as the load lasts. A pass merges at most
// CompactObjectBytes of each partition, so passes do not grow with the
// backlog; they leave the rest of it to the next pass (CompactStats.Behind).
// So the Manager raises the throttle of its own executor while compaction
// is behind: after compactBehindPasses passes in a row that left work
// behind, it doubles the throttle for the next pass, and again after
// each further one, up to compactMaxBoost × CompactBytesPerSec; a pass
// that leaves nothing behind halves it again, down to CompactBytesPerSec.

const (
	// compactBehindPasses is how many passes in a row must leave work
	// behind before the throttle rises: a burst that one or two passes
	// absorb (as 15 s at 20k records/s of 1 KiB does) is merged at the
	// configured rate, a load that outruns it for about two minutes
	// (passes of 30–40 s at the default) is not.
	compactBehindPasses = 3
	// compactMaxBoost bounds the raised throttle: 256 MiB/s by default.
	compactMaxBoost = 8
)

// catchUp sets the throttle of the Manager's own executor for the next
// compaction pass from what the last one, st, left behind (see above). It
// does nothing for an executor given in Config, or without a limit.
func (m *Manager) catchUp(st CompactStats) {
	if m.local == nil || m.cfg.CompactBytesPerSec <= 0 {
		return
	}
	boost := m.boost
	if st.Behind == 0 {
		m.behindPasses = 0
		boost = max(boost/2, 1)
	} else if m.behindPasses++; m.behindPasses >= compactBehindPasses {
		boost = min(2*boost, compactMaxBoost)
	}
	if boost == m.boost {
		return
	}
	rate := boost * m.cfg.CompactBytesPerSec
	if boost > m.boost {
		m.log.Info("compaction is behind: raising its throttle", "partitions_behind", st.Behind, "passes", m.behindPasses, "bytes_per_sec", rate)
	} else {
		m.log.Info("compaction caught up: lowering its throttle", "bytes_per_sec", rate)
	}
	m.boost = boost
	m.local.setRate(rate)
	m.metrics.compactRate.Set(float64(rate))
}

// limiter paces reads or writes to a byte rate.
type limiter struct {
	mu   sync.Mutex
	rate int64     // guarded by mu: bytes per second; <= 0 is no limit
	next time.Time // guarded by mu: when the next read may start
}

func newLimiter(rate int64) *limiter { return &limiter{rate: rate} }

// setRate changes the rate from the next wait on.
func (l *limiter) setRate(rate int64) {
	l.mu.Lock()
	l.rate = rate
	l.mu.Unlock()
}

// pace returns wait as an objstore.PaceFunc, or nil for no limit.
func (l *limiter) pace() objstore.PaceFunc {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return nil
	}
	return l.wait
}

// wait blocks until n more bytes may be read or written.
func (l *limiter) wait(ctx context.Context, n int64) error {
	l.mu.Lock()
	if l.rate <= 0 {
		l.mu.Unlock()
		return ctx.Err()
	}
	now := time.Now()
	at := l.next
	if at.Before(now) {
		at = now
	}
	l.next = at.Add(time.Duration(float64(n) / float64(l.rate) * float64(time.Second)))
	l.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}
